// The lab's end of an agent: HostSockets whose every call crosses a JSON-lines stream to a host
// the lab cannot reach in-process (a VM, a Vagrant box, or a namespace run as a separate process).
// Calls are recorded here, on the lab's clock, so remote hosts share the truss-like listing.
import type { ChildProcess } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import {
  type CodecHooks,
  decodeError,
  decodeValue,
  encodeError,
  encodeValue,
  type HelloInfo,
  lineSplitter,
  PROTOCOL_VERSION,
  type Request,
  type RunResult,
  type SignalRef,
  type SocketRef,
  type Wire,
  type WireError,
} from "../agent/protocol.js";
import type { TraceEvent } from "../evidence/tracepoints.js";
import { spawnIn } from "../proc/exec.js";
import { POLL_EVENTS } from "../sys/constants.js";
import { errnoName, SysError, WaitTimeoutError } from "../sys/errors.js";
import type { PollResult } from "../sys/poll.js";
import type { Transcript } from "../sys/transcript.js";
import { type HostSocket, SOCKET_METHODS, type SocketMethod } from "./host.js";

/** How long `spawn` waits for the agent's hello: a cold tsx start takes about a second. */
export const AGENT_HELLO_TIMEOUT_MS = 10_000;
/** How long `close` waits for the agent to exit on its own before SIGKILL. */
export const AGENT_CLOSE_TIMEOUT_MS = 5_000;

/** How a client is made. */
export interface AgentClientOptions {
  /** The host the agent runs on, for errors and the transcript. */
  readonly host: string;
  /** Where socket calls are recorded, on this clock. */
  readonly transcript?: Transcript;
  /** The agent's process, when this side started it: its exit code and signal then explain a death. */
  readonly process?: ChildProcess;
  /**
   * The agent's CLOCK_MONOTONIC ns on ours, for an agent on another kernel (a VM): a poll's `doneNs`
   * is the agent's reading, and the lab compares it with its own clock.
   */
  readonly toLocalNs?: (remoteNs: number) => number;
}

/** The agent is gone: every call pending then, and every call after, fails with this. */
export class AgentExitedError extends Error {
  constructor(
    readonly host: string,
    readonly code: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly lastStderr: string,
    how?: string,
  ) {
    const status = how ?? (signal ? `signal ${signal}` : code === null ? "its output ended" : `code ${code}`);
    super(`agent on host ${host} exited (${status})${lastStderr ? `: ${lastStderr}` : ""}`);
  }
}
Object.defineProperty(AgentExitedError.prototype, "name", { value: "AgentExitedError" });

interface Pending {
  readonly resolve: (value: Wire) => void;
  readonly reject: (error: Error) => void;
}

// The agent's entry point: under tsx (tests, tsx-run tools) the .ts source with tsx's loader, from dist/ the .js.
function agentEntry(): { execArgv: string[]; path: string } {
  if (import.meta.url.endsWith(".ts")) {
    let loader = "tsx";
    try {
      loader = import.meta.resolve("tsx"); // absolute, so the agent needs no particular working directory
    } catch {}
    return { execArgv: [`--import=${loader}`], path: fileURLToPath(new URL("../agent/main.ts", import.meta.url)) };
  }
  return { execArgv: [], path: fileURLToPath(new URL("../agent/main.js", import.meta.url)) };
}

/** The command line that runs the agent for `host`: what a VM's init starts on its job port. */
export function agentCommand(host: string): string[] {
  const entry = agentEntry();
  return [process.execPath, ...entry.execArgv, entry.path, "--host", host];
}

// How each call appears in the transcript: the syscall name Socket records, its arguments after the
// fd, and its result rendered as Socket renders it.
interface Rendering {
  readonly call: string;
  readonly args: (a: readonly unknown[]) => string[];
  readonly result: (v: unknown) => string;
}

const none = () => [];
const zero = () => "0";
const text = (v: unknown) => String(v);
const byteCount = (v: unknown) => String(Buffer.isBuffer(v) ? v.length : v);
const dataLength = (d: unknown) =>
  String(typeof d === "string" ? Buffer.byteLength(d) : Buffer.isBuffer(d) ? d.length : d);
const sockFd = (v: unknown) => String((v as HostSocket).fd);
const addr = (address: unknown, port: unknown) =>
  String(address).includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
const addrResult = (v: unknown) => {
  const a = v as { address: string; port: number };
  return addr(a.address, a.port);
};
const FLAG_NAMES = ["MSG_PEEK", "MSG_DONTWAIT", "MSG_WAITALL", "MSG_MORE"];
const flagText = (f: unknown) => {
  if (Array.isArray(f)) return f.filter((n) => FLAG_NAMES.includes(n)).join("|") || "0";
  return String(f ?? 0);
};
const eventText = (mask: unknown) =>
  POLL_EVENTS.filter(([, bit]) => (Number(mask) & bit) !== 0)
    .map(([n]) => n)
    .join("|") || "0";
const pollText = (v: unknown) => {
  const r = v as PollResult;
  return `${r.ready} [${(r.outcomes[0]?.names ?? []).join("|")}]`;
};
const read: Rendering = { call: "read", args: ([len]) => [String(len ?? 65536)], result: byteCount };
const recv: Rendering = {
  call: "recv",
  args: ([len, flags]) => [String(len ?? 65536), flagText(flags)],
  result: byteCount,
};
const accept: Rendering = { call: "accept", args: none, result: sockFd };
const connect: Rendering = { call: "connect", args: ([a, p]) => [addr(a, p)], result: zero };
const ioctl = (name: string): Rendering => ({ call: "ioctl", args: () => [name], result: text });

const RENDER: Readonly<Record<SocketMethod, Rendering>> = {
  bind: { call: "bind", args: ([a, p]) => [addr(a, p ?? 0)], result: zero },
  listen: { call: "listen", args: ([b]) => [String(b ?? 128)], result: zero },
  accept,
  acceptAsync: accept,
  connect,
  connectAsync: connect,
  localAddress: { call: "getsockname", args: none, result: addrResult },
  remoteAddress: { call: "getpeername", args: none, result: addrResult },
  recv,
  read,
  readAsync: read,
  recvAsync: recv,
  send: { call: "send", args: ([d, flags]) => [dataLength(d), flagText(flags)], result: text },
  write: { call: "write", args: ([d]) => [dataLength(d)], result: text },
  shutdown: { call: "shutdown", args: ([how]) => [String(how)], result: zero },
  setOption: {
    call: "setsockopt",
    args: ([n, v]) => [String(n), String(typeof v === "boolean" ? Number(v) : v)],
    result: zero,
  },
  getOption: { call: "getsockopt", args: ([n]) => [String(n)], result: text },
  setLinger: { call: "setsockopt", args: ([on, l]) => ["SO_LINGER", `{${Number(on)}, ${l}}`], result: zero },
  getLinger: {
    call: "getsockopt",
    args: () => ["SO_LINGER"],
    result: (v) => {
      const l = v as { onoff: number; linger: number };
      return `{${l.onoff}, ${l.linger}}`;
    },
  },
  takeError: { call: "getsockopt", args: () => ["SO_ERROR"], result: (v) => (v ? errnoName(v as number) : "0") },
  tcpInfo: {
    call: "getsockopt",
    args: () => ["TCP_INFO"],
    result: (v) => {
      const info = v as { stateName: string; size: number };
      return `{state=${info.stateName}, ${info.size} bytes}`;
    },
  },
  inq: ioctl("SIOCINQ"),
  outq: ioctl("SIOCOUTQ"),
  outqNotSent: ioctl("SIOCOUTQNSD"),
  poll: { call: "poll", args: ([ev, timeout]) => [eventText(ev), String(timeout)], result: pollText },
  pollNow: { call: "poll", args: ([ev]) => [eventText(ev), "0"], result: pollText },
  setNonBlocking: { call: "fcntl", args: ([on]) => [on ? "O_NONBLOCK" : "~O_NONBLOCK"], result: zero },
  close: { call: "close", args: none, result: zero },
  closeAsync: { call: "close", args: none, result: zero },
};

function bounded<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  p.catch(() => {}); // it may still reject after the bound: that is not an unhandled rejection
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(onTimeout()), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A lab's connection to one agent: sockets on its host as HostSockets, each call one request. */
export class AgentClient {
  /** The host the agent serves. */
  readonly host: string;
  /** Where this client records socket calls, if anywhere. */
  readonly transcript: Transcript | undefined;
  /** Settles once the agent is gone (its process exited, or its output ended), however it went. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly #input: Readable;
  readonly #output: Writable;
  readonly #child: ChildProcess | undefined;
  readonly #pending = new Map<number, Pending>();
  readonly #proxies = new Map<number, HostSocket>();
  readonly #refs = new WeakMap<object, SocketRef>();
  #nextId = 1;
  #nextSignal = 1;
  #helloPid: number | undefined;
  #dead: AgentExitedError | undefined;
  #closing: Promise<void> | undefined;
  #stderr = "";
  readonly #onData: (chunk: Buffer | string) => void;
  readonly #toLocalNs: ((remoteNs: number) => number) | undefined;
  #resolveExited: (v: { code: number | null; signal: NodeJS.Signals | null }) => void = () => {};

  /** Talks to an agent over any stream pair: `input` carries its answers, `output` our requests. */
  constructor(input: Readable, output: Writable, options: AgentClientOptions) {
    this.host = options.host;
    this.transcript = options.transcript;
    this.#input = input;
    this.#output = output;
    this.#child = options.process;
    this.#toLocalNs = options.toLocalNs;
    this.exited = new Promise((resolve) => {
      this.#resolveExited = resolve;
    });
    const lines = lineSplitter((line) => this.#onLine(line));
    this.#onData = (chunk: Buffer | string) => lines.write(chunk);
    input.on("data", this.#onData);
    // EPIPE after the agent died says nothing its exit will not say better.
    output.on("error", () => {});
    const child = this.#child;
    if (child) {
      child.stderr?.setEncoding("utf8").on("data", (d: string) => {
        this.#stderr = (this.#stderr + d).slice(-8192);
      });
      // 'close' comes after the exit and after stdout and stderr are drained: every answer is in by then.
      child.on("close", (code, signal) => this.#died(code, signal));
      child.on("error", (e) => this.#died(null, null, `could not start: ${e.message}`));
    } else {
      input.on("end", () => this.#died(null, null));
      input.on("close", () => this.#died(null, null));
      input.on("error", (e) => this.#died(null, null, `its output failed: ${e.message}`));
    }
  }

  /** Starts an agent inside `netns` (ours when undefined) and waits, bounded, for its hello. */
  static async spawn(netns: string | undefined, host: string, transcript?: Transcript): Promise<AgentClient> {
    const child = spawnIn(agentCommand(host), netns);
    const client = new AgentClient(child.stdout as Readable, child.stdin as Writable, {
      host,
      process: child,
      ...(transcript ? { transcript } : {}),
    });
    try {
      const info = await bounded(
        client.hello(),
        AGENT_HELLO_TIMEOUT_MS,
        () => new Error(`it did not answer hello within ${AGENT_HELLO_TIMEOUT_MS} ms`),
      );
      if (info.protocol !== PROTOCOL_VERSION) {
        throw new Error(`it speaks protocol ${info.protocol}, this lab speaks ${PROTOCOL_VERSION}`);
      }
      return client;
    } catch (e) {
      child.kill("SIGKILL");
      await bounded(client.exited, 2000, () => new Error("unreachable")).catch(() => {});
      const said = client.stderr.trim();
      throw new Error(
        `agent on host ${host} did not start: ${(e as Error).message}${said ? `\n--- its stderr ---\n${said}` : ""}`,
        { cause: e },
      );
    }
  }

  /** Kills a spawned agent at once (a power off): the kernel closes its sockets as for any exit. */
  kill(): void {
    this.#child?.kill("SIGKILL");
  }

  /** The agent's process id: the child's when spawned here, else what hello reported. */
  get pid(): number | undefined {
    return this.#child?.pid ?? this.#helloPid;
  }

  /** The agent's standard error so far (the last 8 KiB): where it logs. */
  get stderr(): string {
    return this.#stderr;
  }

  /** Who the agent is and which protocol, kernel and Node it runs. */
  async hello(): Promise<HelloInfo> {
    const info = (await this.#request({ op: "hello" })) as unknown as HelloInfo;
    this.#helloPid ??= info.pid;
    return info;
  }

  /** A new TCP socket in the agent's namespace. */
  async socket(options: { family?: "IPv4" | "IPv6" } = {}): Promise<HostSocket> {
    const family = options.family ?? "IPv4";
    const t0 = this.transcript?.nowUs() ?? 0;
    const args = [family === "IPv6" ? "AF_INET6" : "AF_INET", "SOCK_STREAM", "IPPROTO_TCP"];
    try {
      const sock = decodeValue(await this.#request({ op: "socket", family }), this.#hooks()) as HostSocket;
      this.#record(t0, "socket", args, String(sock.fd));
      return sock;
    } catch (e) {
      this.#recordError(t0, "socket", args, e);
      throw e;
    }
  }

  /** Runs a program on the agent's host; its exit and output, whatever the exit. */
  async run(argv: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
    return (await this.#request({ op: "run", argv, ...options })) as unknown as RunResult;
  }

  /** A file of the agent's host, as text; a missing one rejects with ENOENT. */
  async readFile(path: string): Promise<string> {
    return (await this.#request({ op: "readFile", path })) as string;
  }

  /** Writes a file of the agent's host (a sysctl); the kernel's refusal rejects with its errno. */
  async writeFile(path: string, data: string): Promise<void> {
    await this.#request({ op: "writeFile", path, data });
  }

  /** A directory's entries on the agent's host. */
  async readdir(path: string): Promise<string[]> {
    return (await this.#request({ op: "readdir", path })) as string[];
  }

  /** The agent host's CLOCK_MONOTONIC, in ns. */
  async clock(): Promise<bigint> {
    return BigInt((await this.#request({ op: "clock" })) as string);
  }

  /** Arms, reads or stops the host kernel's TCP tracepoints; events with atNs on the host's monotonic clock. */
  async trace(action: "start" | "snapshot" | "stop"): Promise<TraceEvent[]> {
    const v = await this.#request({ op: "trace", action });
    if (!Array.isArray(v)) return [];
    return (v as unknown as Array<TraceEvent & { atNs: string }>).map((e) => ({ ...e, atNs: BigInt(e.atNs) }));
  }

  /**
   * Stops listening without touching the agent: its host was reset or powered off under it. Every
   * pending call, and every call after, fails with `why`.
   */
  abandon(why: string): void {
    this.#input.off("data", this.#onData);
    this.#died(null, null, why);
  }

  /** Closes every socket the agent holds, and says how many were open. */
  async closeAll(): Promise<number> {
    return (await this.#request({ op: "closeAll" })) as number;
  }

  /**
   * Any method on a socket by name, unchecked here: the agent decides what it allows. For methods a
   * newer agent offers, and for proving that the agent refuses the rest.
   */
  call(sock: HostSocket, method: string, args: readonly unknown[] = []): Promise<unknown> {
    const ref = this.#refs.get(sock);
    if (!ref) return Promise.reject(new TypeError(`that socket does not belong to the agent on host ${this.host}`));
    return this.#callSocket(ref, method, args);
  }

  /** Ends the agent's input so it closes its sockets and exits; SIGKILL if it has not within the bound. */
  close(timeoutMs = AGENT_CLOSE_TIMEOUT_MS): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#dead) return;
      this.#output.end();
      try {
        await bounded(this.exited, timeoutMs, () => new Error("timeout"));
      } catch {
        if (this.#child) {
          this.#child.kill("SIGKILL");
          await bounded(this.exited, 2000, () => new Error("timeout")).catch(() => {});
        }
        this.#died(null, null, `did not exit within ${timeoutMs} ms of close(), killed`);
      }
    })();
    return this.#closing;
  }

  #hooks(signals?: { cleanup: (() => void)[] }): CodecHooks {
    return {
      socketRef: (v) => this.#refs.get(v),
      socketOf: (ref) => this.#proxy(ref),
      signalRef: (signal): SignalRef => {
        if (!signals) throw new TypeError("an AbortSignal only crosses as a call's argument");
        const n = this.#nextSignal++;
        if (signal.aborted) return { $signal: n, aborted: true };
        const onAbort = () => {
          const reason = signal.reason === undefined ? {} : { reason: encodeValue(String(signal.reason)) };
          this.#request({ op: "abort", signal: n, ...reason }).catch(() => {});
        };
        signal.addEventListener("abort", onAbort, { once: true });
        signals.cleanup.push(() => signal.removeEventListener("abort", onAbort));
        return { $signal: n };
      },
    };
  }

  #proxy(ref: SocketRef): HostSocket {
    const known = this.#proxies.get(ref.$sock);
    if (known) return known;
    const sock: Record<string, unknown> = { host: ref.host, fd: ref.fd, family: ref.family };
    for (const method of SOCKET_METHODS) {
      sock[method] = (...args: unknown[]) => this.#callSocket(ref, method, args);
    }
    Object.freeze(sock);
    this.#proxies.set(ref.$sock, sock as unknown as HostSocket);
    this.#refs.set(sock, ref);
    return sock as unknown as HostSocket;
  }

  async #callSocket(ref: SocketRef, method: string, args: readonly unknown[]): Promise<unknown> {
    // The scenario's own line is where a remote failure should point, not this client's read loop.
    const site = new Error();
    const t0 = this.transcript?.nowUs() ?? 0;
    const render = (RENDER as Readonly<Record<string, Rendering>>)[method];
    const signals = { cleanup: [] as (() => void)[] };
    try {
      const hooks = this.#hooks(signals);
      const wireArgs = args.map((a) => encodeValue(a, hooks));
      const value = this.#localTimes(
        decodeValue(await this.#request({ op: "call", sock: ref.$sock, method, args: wireArgs }), hooks),
      );
      if (render) this.#record(t0, render.call, [String(ref.fd), ...render.args(args)], render.result(value));
      return value;
    } catch (e) {
      if (render) this.#recordError(t0, render.call, [String(ref.fd), ...render.args(args)], e);
      if (e instanceof Error && !(e instanceof AgentExitedError) && site.stack) {
        const frames = site.stack.slice(site.stack.indexOf("\n"));
        e.stack = `${e.name}: ${e.message}\n    at agent on host ${this.host}${frames}`;
      }
      throw e;
    } finally {
      for (const c of signals.cleanup) c();
    }
  }

  // A poll's doneNs onto this process's clock, where the agent's is another kernel's.
  #localTimes(value: unknown): unknown {
    const to = this.#toLocalNs;
    const v = value as { doneNs?: unknown } | null;
    if (!to || v === null || typeof v !== "object" || typeof v.doneNs !== "number") return value;
    return { ...v, doneNs: to(v.doneNs) };
  }

  #record(atUs: number, call: string, args: string[], result: string): void {
    const t = this.transcript;
    if (t) t.record({ atUs, host: this.host, call, args, result, durationUs: t.nowUs() - atUs });
  }

  // Only what the kernel said is recorded, as Socket does: a usage error never reached a syscall.
  #recordError(atUs: number, call: string, args: string[], e: unknown): void {
    const t = this.transcript;
    if (!t) return;
    const durationUs = t.nowUs() - atUs;
    if (e instanceof SysError)
      t.record({ atUs, host: this.host, call, args, error: e.code, errno: e.errno, durationUs });
    else if (e instanceof WaitTimeoutError) t.record({ atUs, host: this.host, call, args, error: e.code, durationUs });
  }

  #request(body: DistributiveOmit<Request, "id">): Promise<Wire> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#nextId++;
    return new Promise<Wire>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#output.write(`${JSON.stringify({ id, ...body })}\n`);
    });
  }

  #onLine(line: string): void {
    if (line.trim() === "") return;
    let msg: { id?: unknown; ok?: unknown; value?: Wire; error?: WireError };
    try {
      msg = JSON.parse(line);
    } catch {
      this.#fault(`wrote a line that is not JSON: ${line.slice(0, 120)}`);
      return;
    }
    if (msg === null || typeof msg !== "object") {
      this.#fault(`wrote a line that is not an answer: ${line.slice(0, 120)}`);
      return;
    }
    if (msg.id === null && msg.ok === false) {
      // We never send a line the agent cannot read, so any pending request may be the one it lost.
      this.#fault(`could not read a request: ${msg.error?.message ?? "no reason given"}`);
      return;
    }
    const pending = typeof msg.id === "number" ? this.#pending.get(msg.id) : undefined;
    if (!pending) return; // an abort's answer after its call was settled, or a stray: nothing waits for it
    this.#pending.delete(msg.id as number);
    if (msg.ok === true) pending.resolve(msg.value ?? null);
    else pending.reject(decodeError(msg.error ?? encodeError(new Error("the agent failed without saying why"))));
  }

  #fault(what: string): void {
    const err = new Error(`agent on host ${this.host} ${what}`);
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }

  #died(code: number | null, signal: NodeJS.Signals | null, how?: string): void {
    if (this.#dead) return;
    const lines = this.#stderr.split("\n").filter((l) => l.trim() !== "");
    const closedByUs = this.#closing !== undefined && how === undefined && !signal && code === 0;
    this.#dead = new AgentExitedError(
      this.host,
      code,
      signal,
      lines.at(-1)?.trim() ?? "",
      closedByUs ? "code 0, closed by the lab" : how,
    );
    for (const p of this.#pending.values()) p.reject(this.#dead);
    this.#pending.clear();
    this.#input.on("error", () => {});
    this.#resolveExited({ code, signal });
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
