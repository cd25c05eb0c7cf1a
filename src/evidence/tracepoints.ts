// What the kernel's TCP stack did, read from its own tracepoints in a private tracefs instance:
// state changes, resets sent and received, retransmissions and socket destruction, each with a
// CLOCK_MONOTONIC timestamp comparable to process.hrtime.bigint().
import {
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmdirSync,
  writeFileSync,
} from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { BlockList, isIP } from "node:net";
import { POLLIN } from "../sys/constants.js";
import { poll } from "../sys/poll.js";

/** The tracepoints recorded, by the name the trace file prints, with their tracefs subsystem. */
export const TRACE_EVENTS = {
  inet_sock_set_state: "sock",
  tcp_send_reset: "tcp",
  tcp_receive_reset: "tcp",
  tcp_retransmit_skb: "tcp",
  tcp_destroy_sock: "tcp",
} as const;

/** One of the recorded tracepoints. */
export type TraceEventName = keyof typeof TRACE_EVENTS;

/** The trace file prints microseconds rounded to the nearest (kernel ns2usecs), so atNs is off by at most this. */
export const TIMESTAMP_ERROR_NS = 500n;

/** Where tracefs may be mounted, in the order the kernel documentation prefers. */
export const TRACEFS_ROOTS = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] as const;

/** One tracepoint hit, as the kernel reported it. */
export interface TraceEvent {
  /** CLOCK_MONOTONIC in ns (microsecond resolution, see TIMESTAMP_ERROR_NS). */
  readonly atNs: bigint;
  readonly event: TraceEventName;
  /** From `family=` or, for tcp_send_reset, from the printed address; undefined when the kernel gave neither. */
  readonly family: "IPv4" | "IPv6" | undefined;
  /** The local end of the socket the event happened on. */
  readonly saddr: string;
  readonly sport: number;
  /** The remote end. */
  readonly daddr: string;
  readonly dport: number;
  /** The struct sock address, to follow one socket across events; undefined for a reset sent without a socket. */
  readonly skaddr: string | undefined;
  /** inet_sock_set_state only: 'ESTABLISHED', 'FIN_WAIT1', 'NEW_SYN_RECV', ... */
  readonly oldstate: string | undefined;
  readonly newstate: string | undefined;
  /** tcp_send_reset and tcp_retransmit_skb: the socket's state when it happened. */
  readonly state: string | undefined;
  /** tcp_send_reset: the kernel's sk_rst_reason, e.g. 'NO_SOCKET', 'TCP_ABORT_ON_LINGER'. */
  readonly reason: string | undefined;
  /** Every key=value the line carried, verbatim (sock_cookie, err, skbaddr, ...). */
  readonly fields: Readonly<Record<string, string>>;
  /** The task that was running on the CPU (often not the socket's owner: softirq work lands anywhere). */
  readonly task: string;
  readonly pid: number;
  readonly cpu: number;
  /** The line as the trace file printed it. */
  readonly raw: string;
}

/** What startTrace records. */
export interface TraceOptions {
  /** Keep events whose local or remote port is one of these (also filtered in the kernel where the format allows). */
  readonly ports?: readonly number[];
  /** Keep events whose local or remote address is one of these. */
  readonly addresses?: readonly string[];
  /** Ring buffer per CPU, in KiB (default 1024): the oldest events are overwritten beyond it. */
  readonly bufferKb?: number;
}

/** Whether this process can record tracepoints, and if not, why. */
export interface TracefsStatus {
  readonly available: boolean;
  readonly reason?: string;
  readonly root?: string;
}

/** A parsed trace file: the events, how many the kernel overwrote, and lines that were not understood. */
export interface ParsedTrace {
  readonly events: TraceEvent[];
  readonly lost: number;
  readonly unparsed: string[];
}

const INSTANCE_PREFIX = "sockprobe-";
const INSTANCE_NAME = /^sockprobe-(\d+)-(\d+)$/;
const DEFAULT_BUFFER_KB = 1024;

let instanceCounter = 0;
// Instances this process created and has not removed: the exit hook removes them if a run ends early.
const openInstances = new Set<string>();
// trace_pipe descriptors by instance: an open pipe keeps rmdir from removing its instance.
const pipeFds = new Map<string, number>();
const MARKER = /tracing_mark_write: sockprobe-sync-(\S+)/;
let exitHookInstalled = false;

function eventDir(instance: string, event: TraceEventName): string {
  return `${instance}/events/${TRACE_EVENTS[event]}/${event}`;
}

function errCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String(e);
}

// uid 0 in a user namespace other than the initial one cannot create tracefs instances.
function userNamespaceNote(): string | undefined {
  try {
    const first = (readFileSync("/proc/self/uid_map", "utf8").trim().split("\n")[0] ?? "").trim().split(/\s+/);
    const [inside, outside, count] = first;
    if (inside === "0" && outside === "0" && count === "4294967295") return undefined;
    return `this process is uid 0 inside a user namespace (uid_map "${first.join(" ")}"), and tracefs needs root in the initial one`;
  } catch {
    return undefined;
  }
}

function locateTracefs(): { root: string } | { reason: string } {
  const euid = process.geteuid?.() ?? -1;
  if (euid !== 0) return { reason: `tracing needs root, and this process runs as uid ${euid}` };
  const userns = userNamespaceNote();
  if (userns) return { reason: userns };
  for (const root of TRACEFS_ROOTS) {
    if (existsSync(`${root}/instances`) && existsSync(`${root}/events`)) return { root };
  }
  return {
    reason: `tracefs is not mounted at ${TRACEFS_ROOTS.join(" or ")} (mount -t tracefs nodev /sys/kernel/tracing)`,
  };
}

function missingEvents(dir: string): string[] {
  return (Object.keys(TRACE_EVENTS) as TraceEventName[])
    .filter((e) => !existsSync(`${eventDir(dir, e)}/format`))
    .map((e) => `${TRACE_EVENTS[e]}/${e}`);
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous; a kill -9 skips this, which is what sweepStaleInstances is for.
  process.on("exit", () => {
    for (const fd of pipeFds.values()) {
      try {
        closeSync(fd);
      } catch {}
    }
    for (const dir of openInstances) removeInstanceSync(dir);
  });
}

function newInstanceName(): string {
  instanceCounter += 1;
  return `${INSTANCE_PREFIX}${process.pid}-${instanceCounter}`;
}

function createInstance(root: string): string {
  installExitHook();
  const dir = `${root}/instances/${newInstanceName()}`;
  mkdirSync(dir);
  openInstances.add(dir);
  return dir;
}

// Tracing off and events disabled before rmdir, so nothing is writing into a buffer being freed.
function removeInstanceSync(dir: string): boolean {
  const quiet = (f: () => void) => {
    try {
      f();
    } catch {}
  };
  quiet(() => writeFileSync(`${dir}/tracing_on`, "0"));
  for (const e of Object.keys(TRACE_EVENTS) as TraceEventName[]) {
    quiet(() => writeFileSync(`${eventDir(dir, e)}/enable`, "0"));
  }
  try {
    rmdirSync(dir);
  } catch (e) {
    if (errCode(e) !== "ENOENT") return false;
  }
  openInstances.delete(dir);
  return true;
}

/** Whether tracepoints can be recorded here; probes by creating (and removing) a real instance. */
export function tracefsStatus(): TracefsStatus {
  const where = locateTracefs();
  if ("reason" in where) return { available: false, reason: where.reason };
  const { root } = where;
  const absent = missingEvents(root);
  if (absent.length > 0)
    return { available: false, root, reason: `this kernel has no tracepoint ${absent.join(", ")}` };
  let dir: string;
  try {
    dir = createInstance(root);
  } catch (e) {
    return {
      available: false,
      root,
      reason: `cannot create a tracing instance in ${root}/instances (${errCode(e)})`,
    };
  }
  removeInstanceSync(dir);
  return { available: true, root };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errCode(e) === "EPERM";
  }
}

/** Removes sockprobe instances left by processes that died without cleaning up (kill -9); returns their names. */
export function sweepStaleInstances(): string[] {
  const where = locateTracefs();
  if ("reason" in where) return [];
  const base = `${where.root}/instances`;
  const removed: string[] = [];
  for (const name of readdirSync(base)) {
    const m = INSTANCE_NAME.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || pidAlive(pid)) continue;
    if (removeInstanceSync(`${base}/${name}`)) removed.push(name);
  }
  return removed;
}

// Scalar fields of an event, from its format file: only these can be used in a kernel filter.
function scalarFields(format: string): Set<string> {
  const names = new Set<string>();
  for (const m of format.matchAll(/field:([^;]*);/g)) {
    const decl = (m[1] ?? "").trim();
    if (decl.includes("[")) continue;
    const name = decl.split(/[\s*]+/).pop();
    if (name) names.add(name);
  }
  return names;
}

function kernelFilter(fields: Set<string>, ports: readonly number[]): string | undefined {
  const parts: string[] = [];
  if (fields.has("family")) parts.push("(family == 2 || family == 10)");
  if (fields.has("protocol")) parts.push("protocol == 6");
  if (ports.length > 0 && fields.has("sport") && fields.has("dport"))
    parts.push(`(${ports.map((p) => `sport == ${p} || dport == ${p}`).join(" || ")})`);
  return parts.length > 0 ? parts.join(" && ") : undefined;
}

function usage(ok: boolean, text: string): void {
  if (!ok) throw new TypeError(text);
}

/** A running recording in a private tracefs instance; stop() returns what it saw. */
export class Trace {
  /** The instance directory. */
  readonly instance: string;
  /** The kernel-side filter installed per event (undefined: none, the event is filtered in TypeScript only). */
  readonly kernelFilters: Readonly<Partial<Record<TraceEventName, string>>>;
  #ports: readonly number[];
  #addresses: BlockList | undefined;
  #result: Promise<TraceEvent[]> | undefined;
  /** Events the ring buffer overwrote before stop (raise bufferKb if this is not 0). */
  lost = 0;
  /** Lines of the trace file that were not understood: kept, never guessed at. */
  unparsed: string[] = [];

  constructor(
    instance: string,
    kernelFilters: Partial<Record<TraceEventName, string>>,
    ports: readonly number[],
    addresses: readonly string[],
  ) {
    this.instance = instance;
    this.kernelFilters = kernelFilters;
    this.#ports = ports;
    if (addresses.length > 0) {
      const list = new BlockList();
      for (const a of addresses) list.addAddress(a, isIP(a) === 6 ? "ipv6" : "ipv4");
      this.#addresses = list;
    }
  }

  /** True once stop() was called: the instance is gone, or going. */
  get stopped(): boolean {
    return this.#result !== undefined;
  }

  /** The events so far, without stopping: for bounded waits on something the kernel must do. */
  async snapshot(): Promise<TraceEvent[]> {
    usage(!this.stopped, "Trace.snapshot(): the trace is already stopped");
    const parsed = await this.#read();
    return parsed.events.filter((e) => this.#keep(e));
  }

  /** Turns tracing off, reads everything, removes the instance. Calling it again returns the same events. */
  stop(): Promise<TraceEvent[]> {
    this.#result ??= this.#stop();
    return this.#result;
  }

  async #stop(): Promise<TraceEvent[]> {
    try {
      await writeFile(`${this.instance}/tracing_on`, "0");
      const parsed = await this.#read();
      this.lost = parsed.lost;
      this.unparsed = parsed.unparsed;
      return parsed.events.filter((e) => this.#keep(e));
    } finally {
      if (!removeInstanceSync(this.instance))
        process.emitWarning(`sockprobe: could not remove tracing instance ${this.instance}`);
    }
  }

  // The trace file is read twice: in the events' own format (full addresses, IPv6 included), then
  // with the `fields` option, which is the only way to get skaddr for events whose format omits it.
  async #read(): Promise<ParsedTrace> {
    const text = await readFile(`${this.instance}/trace`, "utf8");
    let fieldsText: string | undefined;
    try {
      await writeFile(`${this.instance}/options/fields`, "1");
      try {
        fieldsText = await readFile(`${this.instance}/trace`, "utf8");
      } finally {
        await writeFile(`${this.instance}/options/fields`, "0");
      }
    } catch {
      // Kernels before the `fields` option: skaddr stays where the format prints it.
    }
    return parseTrace(text, fieldsText);
  }

  #keep(e: TraceEvent): boolean {
    if (this.#ports.length > 0 && !this.#ports.includes(e.sport) && !this.#ports.includes(e.dport)) return false;
    if (this.#addresses) {
      const list = this.#addresses;
      const hit = (a: string) => {
        const v = isIP(a);
        return v !== 0 && list.check(a, v === 6 ? "ipv6" : "ipv4");
      };
      if (!hit(e.saddr) && !hit(e.daddr)) return false;
    }
    return true;
  }
}

// Creates and arms a private instance with the five TCP tracepoints, sweeping dead runs' instances
// first: the common start of a Trace and of a TraceStream.
async function armInstance(
  opts: TraceOptions,
): Promise<{ dir: string; filters: Partial<Record<TraceEventName, string>> }> {
  const ports = opts.ports ?? [];
  const addresses = opts.addresses ?? [];
  const bufferKb = opts.bufferKb ?? DEFAULT_BUFFER_KB;
  usage(
    ports.every((p) => Number.isInteger(p) && p >= 0 && p <= 65535),
    "startTrace({ ports }): ports must be integers 0..65535",
  );
  usage(
    addresses.every((a) => typeof a === "string" && isIP(a) !== 0),
    "startTrace({ addresses }): addresses must be IP literals",
  );
  usage(Number.isInteger(bufferKb) && bufferKb > 0, "startTrace({ bufferKb }): bufferKb must be a positive integer");

  const where = locateTracefs();
  if ("reason" in where) throw new Error(`cannot trace: ${where.reason}`);
  sweepStaleInstances();
  let dir: string;
  try {
    dir = createInstance(where.root);
  } catch (cause) {
    throw new Error(`cannot create a tracing instance in ${where.root}/instances (${errCode(cause)})`, { cause });
  }
  try {
    const absent = missingEvents(dir);
    if (absent.length > 0) throw new Error(`cannot trace: this kernel has no tracepoint ${absent.join(", ")}`);
    await writeFile(`${dir}/tracing_on`, "0");
    try {
      await writeFile(`${dir}/trace_clock`, "mono");
    } catch (cause) {
      throw new Error(`cannot trace: trace_clock 'mono' refused (${errCode(cause)})`, { cause });
    }
    await writeFile(`${dir}/buffer_size_kb`, String(bufferKb));
    try {
      // Real pointers in the events' own format, so they match the ones the `fields` option prints.
      await writeFile(`${dir}/options/hash-ptr`, "0");
    } catch {}
    const filters: Partial<Record<TraceEventName, string>> = {};
    for (const e of Object.keys(TRACE_EVENTS) as TraceEventName[]) {
      const format = await readFile(`${eventDir(dir, e)}/format`, "utf8");
      const filter = kernelFilter(scalarFields(format), ports);
      if (filter !== undefined) {
        try {
          await writeFile(`${eventDir(dir, e)}/filter`, filter);
          filters[e] = filter;
        } catch {
          // The TypeScript filter below still applies; the buffer just fills faster.
        }
      }
      await writeFile(`${eventDir(dir, e)}/enable`, "1");
    }
    await writeFile(`${dir}/tracing_on`, "1");
    return { dir, filters };
  } catch (e) {
    removeInstanceSync(dir);
    throw e;
  }
}

/** Starts a trace in a private instance; the kernel keeps every event in its ring buffer until stop(). */
export async function startTrace(opts: TraceOptions = {}): Promise<Trace> {
  const { dir, filters } = await armInstance(opts);
  return new Trace(dir, filters, [...(opts.ports ?? [])], [...(opts.addresses ?? [])]);
}

/** Starts a trace that is read as it goes (trace_pipe): for long runs shared by many labs. */
export async function startTraceStream(opts: TraceOptions = {}): Promise<TraceStream> {
  const { dir } = await armInstance(opts);
  try {
    return new TraceStream(dir);
  } catch (e) {
    removeInstanceSync(dir);
    throw e;
  }
}

/**
 * A trace consumed from trace_pipe as it is written, so the buffer never fills and a snapshot costs
 * only what is new. A snapshot writes a marker into the instance and reads until the marker comes
 * back: every event recorded before the call is then in hand. The pipe is opened non-blocking and
 * read in this process (no thread held, no child to outlive us).
 */
export class TraceStream {
  readonly instance: string;
  readonly #fd: number;
  readonly #events: TraceEvent[] = [];
  readonly #markers = new Set<string>();
  readonly #timer: NodeJS.Timeout;
  readonly #buf = Buffer.allocUnsafe(1 << 16);
  #partial = "";
  #count = 0;
  #stopped = false;
  /** Lines not understood: kept, never guessed at. */
  readonly unparsed: string[] = [];

  constructor(instance: string) {
    this.instance = instance;
    this.#fd = openSync(`${instance}/trace_pipe`, constants.O_RDONLY | constants.O_NONBLOCK);
    pipeFds.set(instance, this.#fd);
    // Drained now and then even when nobody asks, so a busy machine cannot overrun the buffer.
    this.#timer = setInterval(() => this.#drain(), 100);
    this.#timer.unref();
  }

  #drain(): void {
    if (this.#stopped) return;
    for (;;) {
      let n: number;
      try {
        n = readSync(this.#fd, this.#buf, 0, this.#buf.length, null);
      } catch (e) {
        if (errCode(e) === "EAGAIN") return;
        throw e;
      }
      if (n === 0) return;
      const lines = (this.#partial + this.#buf.toString("utf8", 0, n)).split("\n");
      this.#partial = lines.pop() ?? "";
      for (const line of lines) {
        const mark = MARKER.exec(line);
        if (mark) {
          this.#markers.add(mark[1] as string);
          continue;
        }
        const parsed = parseTrace(line);
        this.#events.push(...parsed.events);
        this.unparsed.push(...parsed.unparsed);
      }
    }
  }

  /** Every event recorded before this call. */
  async snapshot(): Promise<TraceEvent[]> {
    if (this.#stopped) return [...this.#events];
    this.#count += 1;
    const marker = `${process.pid}-${this.#count}`;
    await writeFile(`${this.instance}/trace_marker`, `sockprobe-sync-${marker}`);
    const deadline = Date.now() + 2000;
    for (;;) {
      this.#drain();
      if (this.#markers.delete(marker) || Date.now() > deadline) return [...this.#events];
      await poll([{ fd: this.#fd, events: POLLIN }], 20);
    }
  }

  /** Reads what is left, closes the pipe and removes the instance; once, however often it is called. */
  stop(): Promise<TraceEvent[]> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  #stopping: Promise<TraceEvent[]> | undefined;

  async #stop(): Promise<TraceEvent[]> {
    const events = await this.snapshot();
    this.#stopped = true;
    clearInterval(this.#timer);
    closeSync(this.#fd);
    pipeFds.delete(this.instance);
    if (!removeInstanceSync(this.instance))
      process.emitWarning(`sockprobe: could not remove tracing instance ${this.instance}`);
    return events;
  }
}

// "  node-5250    [001] ..s2.   343.419776: inet_sock_set_state: family=AF_INET ..."
// The task name may hold spaces and dashes; record-tgid adds "(  tgid)"; irq-info adds the flags column.
const LINE =
  /^\s*(?<task>.*)-(?<pid>\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[(?<cpu>\d+)\]\s+(?:(?<flags>\S{4,5})\s+)?(?<sec>\d+)\.(?<frac>\d+):\s+(?<event>\w+):\s?(?<body>.*)$/;
const KEY_VALUE = /(?:^|\s)([A-Za-z_]\w*)=(\S*)/g;
const ENTRIES = /entries-in-buffer\/entries-written:\s*(\d+)\/(\d+)/;
const LOST_LINE = /\[LOST (\d+) EVENTS\]/;

interface Head {
  task: string;
  pid: number;
  cpu: number;
  atNs: bigint;
  event: string;
  body: string;
}

function parseHead(line: string): Head | undefined {
  const g = LINE.exec(line)?.groups;
  if (!g) return undefined;
  const frac = (g.frac ?? "").slice(0, 9).padEnd(9, "0");
  return {
    task: (g.task ?? "").trim(),
    pid: Number(g.pid),
    cpu: Number(g.cpu),
    atNs: BigInt(g.sec ?? "0") * 1_000_000_000n + BigInt(frac),
    event: g.event ?? "",
    body: g.body ?? "",
  };
}

function keyValues(body: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of body.matchAll(KEY_VALUE)) out[m[1] as string] = m[2] as string;
  return out;
}

function stateName(s: string | undefined): string | undefined {
  return s === undefined ? undefined : s.replace(/^TCP_/, "");
}

// One spelling for a pointer whichever way it was printed ("ffff8881..." or "0xffff8881..."); null is no socket.
function pointer(text: string | undefined): string | undefined {
  if (text === undefined || !/^(0x)?[0-9a-f]+$/i.test(text)) return undefined;
  const v = BigInt(text.startsWith("0x") ? text : `0x${text}`);
  return v === 0n ? undefined : `0x${v.toString(16)}`;
}

// %pISpc: "127.0.0.1:8080" or "[::1]:8080".
function endpoint(text: string | undefined): { address: string; port: number; family: "IPv4" | "IPv6" | undefined } {
  const m = /^\[(.*)\]:(\d+)$/.exec(text ?? "") ?? /^([^:]*):(\d+)$/.exec(text ?? "");
  if (!m) return { address: text ?? "", port: 0, family: undefined };
  const address = m[1] ?? "";
  const v = isIP(address);
  return { address, port: Number(m[2]), family: v === 4 ? "IPv4" : v === 6 ? "IPv6" : undefined };
}

// "::ffff:198.18.0.1": an IPv4 address in an IPv6 field.
function isV4Mapped(text: string | undefined): boolean {
  return text !== undefined && /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(text);
}

function toEvent(head: Head, raw: string): TraceEvent | undefined {
  if (!(head.event in TRACE_EVENTS)) return undefined;
  const event = head.event as TraceEventName;
  const f = keyValues(head.body);
  let family: "IPv4" | "IPv6" | undefined;
  let saddr: string;
  let daddr: string;
  let sport: number;
  let dport: number;
  if (f.src !== undefined || f.dest !== undefined) {
    const src = endpoint(f.src);
    const dst = endpoint(f.dest);
    family = src.family ?? dst.family;
    [saddr, sport, daddr, dport] = [src.address, src.port, dst.address, dst.port];
  } else {
    family = f.family === "AF_INET" ? "IPv4" : f.family === "AF_INET6" ? "IPv6" : undefined;
    // Debian's 6.1 prints `family=` empty in these events (the kernel filter still sees 2 or 10):
    // an IPv4 socket's IPv6 fields then hold its addresses v4-mapped (TP_STORE_ADDRS), an IPv6 one's do not.
    if (family === undefined && f.saddrv6 !== undefined && f.saddr !== undefined)
      family = isV4Mapped(f.saddrv6) && isV4Mapped(f.daddrv6) ? "IPv4" : "IPv6";
    const v4 = family === "IPv4" || (family === undefined && f.saddrv6 === undefined);
    saddr = (v4 ? f.saddr : f.saddrv6) ?? "";
    daddr = (v4 ? f.daddr : f.daddrv6) ?? "";
    sport = Number(f.sport ?? 0);
    dport = Number(f.dport ?? 0);
  }
  return {
    atNs: head.atNs,
    event,
    family,
    saddr,
    sport,
    daddr,
    dport,
    skaddr: pointer(f.skaddr),
    oldstate: stateName(f.oldstate),
    newstate: stateName(f.newstate),
    state: stateName(f.state),
    reason: f.reason,
    fields: f,
    task: head.task,
    pid: head.pid,
    cpu: head.cpu,
    raw,
  };
}

// In `fields` output a scalar reads "sport=0x1f90 (8080)"; the decimal in parentheses is the value.
function fieldsNumber(body: string, key: string): number | undefined {
  const m = new RegExp(`(?:^|\\s)${key}=\\S+ \\((-?\\d+)\\)`).exec(body);
  return m ? Number(m[1]) : undefined;
}

// skaddr per line of the `fields` rendering, keyed so the same buffer entry is found in both renderings
// even if a snapshot's second read saw more events.
function fieldsSkaddrs(
  fieldsText: string,
): Map<string, { skaddr: string | undefined; sport?: number; dport?: number }> {
  const out = new Map<string, { skaddr: string | undefined; sport?: number; dport?: number }>();
  const seen = new Map<string, number>();
  for (const line of fieldsText.split("\n")) {
    if (line.startsWith("#")) continue;
    const head = parseHead(line);
    if (!head || !(head.event in TRACE_EVENTS)) continue;
    const base = `${head.cpu}|${head.atNs}|${head.event}`;
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    const sk = /(?:^|\s)skaddr=(\S+)/.exec(head.body)?.[1];
    const entry: { skaddr: string | undefined; sport?: number; dport?: number } = { skaddr: pointer(sk) };
    const sport = fieldsNumber(head.body, "sport");
    const dport = fieldsNumber(head.body, "dport");
    if (sport !== undefined) entry.sport = sport;
    if (dport !== undefined) entry.dport = dport;
    out.set(`${base}|${n}`, entry);
  }
  return out;
}

/**
 * Parses a tracefs `trace` file as this kernel prints these events, key=value in any order.
 * `fieldsText`, the same buffer read with options/fields=1, supplies skaddr where the format omits it.
 */
export function parseTrace(text: string, fieldsText?: string): ParsedTrace {
  const events: TraceEvent[] = [];
  const unparsed: string[] = [];
  let lost = 0;
  const skaddrs = fieldsText === undefined ? undefined : fieldsSkaddrs(fieldsText);
  const seen = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    if (line.startsWith("#")) {
      const m = ENTRIES.exec(line);
      if (m) lost += Number(m[2]) - Number(m[1]);
      continue;
    }
    if (LOST_LINE.test(line)) continue; // already counted by the header's entries-written
    const head = parseHead(line);
    const event = head && toEvent(head, line);
    if (!head || !event) {
      unparsed.push(line);
      continue;
    }
    const base = `${head.cpu}|${head.atNs}|${head.event}`;
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    const extra = skaddrs?.get(`${base}|${n}`);
    // Both renderings walk the same buffer; the ports must agree before one lends the other its skaddr.
    const agrees =
      extra !== undefined &&
      (extra.sport === undefined || extra.sport === event.sport) &&
      (extra.dport === undefined || extra.dport === event.dport);
    events.push(agrees ? { ...event, skaddr: extra.skaddr } : event);
  }
  return { events, lost, unparsed };
}

function hostPort(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/** One line per event, seconds relative to originNs: "+0.001234 198.18.0.1:40000 > 198.18.0.2:8080 ESTABLISHED -> FIN_WAIT1". */
export function formatTraceEvent(e: TraceEvent, originNs: bigint): string {
  const d = e.atNs - originNs;
  const abs = d < 0n ? -d : d;
  const t = `${d < 0n ? "-" : "+"}${abs / 1_000_000_000n}.${String((abs % 1_000_000_000n) / 1000n).padStart(6, "0")}`;
  const ends = `${hostPort(e.saddr, e.sport)} > ${hostPort(e.daddr, e.dport)}`;
  let what: string;
  switch (e.event) {
    case "inet_sock_set_state":
      what = `${e.oldstate ?? "?"} -> ${e.newstate ?? "?"}`;
      break;
    case "tcp_send_reset":
      what = `RST sent (${e.state ?? "?"}, ${e.reason ?? "?"})`;
      break;
    case "tcp_receive_reset":
      what = "RST received";
      break;
    case "tcp_retransmit_skb":
      what = `retransmit (${e.state ?? "?"}${e.fields.err && e.fields.err !== "0" ? `, err ${e.fields.err}` : ""})`;
      break;
    case "tcp_destroy_sock":
      what = "destroyed";
      break;
  }
  return `${t} ${ends} ${what}`;
}
