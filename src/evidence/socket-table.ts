// The kernel's own view of a host's TCP sockets, read through `ss` (sock_diag), the way the seeds quote `netstat`.
import { setTimeout as sleep } from "node:timers/promises";
import { type ExecOptions, type ExecResult, run } from "../proc/exec.js";
import { WaitTimeoutError } from "../sys/errors.js";

/** TCP states under the names netstat and the RFCs use, so scenarios never spell ss's own ('ESTAB', 'FIN-WAIT-1'). */
export type TcpStateName =
  | "ESTABLISHED"
  | "SYN_SENT"
  | "SYN_RECV"
  | "FIN_WAIT1"
  | "FIN_WAIT2"
  | "TIME_WAIT"
  | "CLOSE"
  | "CLOSE_WAIT"
  | "LAST_ACK"
  | "LISTEN"
  | "CLOSING";

/**
 * One end of a socket. `address` is what ss printed, minus IPv6 brackets: '*' stays '*' (ss's dual-stack
 * wildcard), while '0.0.0.0' and '::' stay as they are, because the three are different bindings. A '*'
 * port becomes 0.
 */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
  /** The device after '%', for sockets bound with SO_BINDTODEVICE. */
  readonly iface?: string;
}

/** A socket's pending kernel timer; `name` is open-ended because newer kernels may add timers. */
export interface SocketTimer {
  readonly name: "on" | "keepalive" | "timewait" | "persist" | "off" | (string & {});
  /** Time left; NaN when ss printed something this parser cannot read (see `raw`). */
  readonly expiresMs: number;
  /** Retransmissions so far, or keepalive probes sent for a keepalive timer. */
  readonly retrans: number;
  /** The text inside `timer:(...)`. */
  readonly raw: string;
}

/** One detail from `-i`/`-e`: numbers when ss printed a plain number, flags as true, groups like bbr:(...) as records. */
export type InfoValue = number | string | true | Readonly<Record<string, number | string>>;

/** One TCP socket as the kernel reported it. */
export interface SocketRow {
  /** Which lab host's table this row came from. */
  readonly host: string;
  /** The normalized state; an unrecognized ss state is kept as printed. */
  readonly state: TcpStateName | (string & {});
  readonly recvQ: number;
  readonly sendQ: number;
  readonly local: Endpoint;
  readonly peer: Endpoint;
  readonly timer?: SocketTimer;
  /** The socket's inode; 0 when no file holds it. */
  readonly inode?: number;
  /**
   * No process owns it any more: closed by its owner and finished by the kernel alone. ss prints ino:0 for
   * these, but also for children still waiting in a listener's accept queue; those keep a shutdown marker
   * other than '---' and are not orphans.
   */
  readonly orphan: boolean;
  /** The kernel's socket cookie, as ss printed it (hex). */
  readonly sk?: string;
  readonly uid?: number;
  readonly cgroup?: string;
  /** ss's shutdown marker: '<->' open both ways, '<--' our FIN sent, '-->' peer's FIN received, '---' both. */
  readonly shutdown?: string;
  /** skmem:(...) from -m: r, rb, t, tb, f, w, o, bl, d. */
  readonly skmem?: Readonly<Record<string, number>>;
  /** Every other detail token: rto, rtt ('0.024/0.012'), cwnd, retrans ('1/3'), unacked, lost, bytes_acked, ... */
  readonly info: Readonly<Record<string, InfoValue>>;
  /** The socket's lines as ss printed them, less trailing padding. */
  readonly raw: string;
}

/** Options for reading a table. */
export interface SocketTableOptions {
  /** The host label stamped on each row. */
  readonly host?: string;
  /** Kill ss after this long. */
  readonly timeoutMs?: number;
  /** The command runner; injectable so a unit test can feed canned output. */
  readonly exec?: (argv: readonly string[], options: ExecOptions) => Promise<ExecResult>;
}

/** How long and how often waitForSocket polls. */
export interface WaitForSocketOptions extends SocketTableOptions {
  readonly timeoutMs: number;
  /** Pause between polls (default 50 ms). */
  readonly intervalMs?: number;
  /** Names the wait in the error; defaults to the predicate's source text. */
  readonly what?: string;
}

// -O puts each socket on one line; the parser still joins continuation lines, for output captured without it.
const SS_ARGV = ["ss", "-tanoiemHO"] as const;

// A Map, so a stray token such as 'constructor' cannot resolve through Object.prototype.
const STATES: ReadonlyMap<string, TcpStateName> = new Map([
  ["ESTAB", "ESTABLISHED"],
  ["SYN-SENT", "SYN_SENT"],
  ["SYN-RECV", "SYN_RECV"],
  ["FIN-WAIT-1", "FIN_WAIT1"],
  ["FIN-WAIT-2", "FIN_WAIT2"],
  ["TIME-WAIT", "TIME_WAIT"],
  ["UNCONN", "CLOSE"],
  ["CLOSE-WAIT", "CLOSE_WAIT"],
  ["LAST-ACK", "LAST_ACK"],
  ["LISTEN", "LISTEN"],
  ["CLOSING", "CLOSING"],
]);

// ss prints these as "key value" rather than "key:value".
const SPACED_KEYS = new Set(["send", "pacing_rate", "delivery_rate"]);

const UNIT_MS: Readonly<Record<string, number>> = { min: 60_000, sec: 1000, ms: 1 };

/**
 * Milliseconds from an ss duration ('200ms', '1min2sec', '59sec', '1.5sec'); NaN when unreadable.
 * ss 6.1 prints 1452 ms as '1.452ms' (seconds, a dot, then zero-padded milliseconds), so a three-digit
 * fraction before 'ms' is read that way. An empty text is ss's rendering of an expired timer: 0.
 */
export function parseSsDuration(text: string): number {
  const s = text.trim();
  if (s === "") return 0;
  const part = /(\d+)(?:\.(\d+))?(min|sec|ms)/y;
  let total = 0;
  let at = 0;
  while (at < s.length) {
    part.lastIndex = at;
    const m = part.exec(s);
    if (!m) return Number.NaN;
    const [, whole = "0", frac, unit = "ms"] = m;
    if (unit === "ms" && frac?.length === 3) total += Number(whole) * 1000 + Number(frac);
    else total += Number(`${whole}.${frac ?? "0"}`) * (UNIT_MS[unit] ?? Number.NaN);
    at = part.lastIndex;
  }
  return Math.round(total * 1000) / 1000;
}

function parseEndpoint(text: string): Endpoint {
  const colon = text.lastIndexOf(":");
  if (colon < 0) return { address: text, port: Number.NaN };
  let host = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  const port = portText === "*" ? 0 : /^\d+$/.test(portText) ? Number(portText) : Number.NaN;
  let iface: string | undefined;
  const pct = host.lastIndexOf("%");
  if (pct >= 0) {
    iface = host.slice(pct + 1);
    host = host.slice(0, pct);
  }
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  return iface === undefined ? { address: host, port } : { address: host, port, iface };
}

function scalar(text: string): number | string {
  return /^-?\d+(?:\.\d+)?$/.test(text) ? Number(text) : text;
}

function intOrNaN(text: string | undefined): number {
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : Number.NaN;
}

// The inside of key:(...): either "k:v,k:v" (bbr) or "r0,rb131072" (skmem); anything else stays text.
function parseGroup(inner: string): Record<string, number | string> | undefined {
  const out: Record<string, number | string> = {};
  for (const item of inner.split(",")) {
    const kv = /^([A-Za-z_]+):(.*)$/.exec(item) ?? /^([A-Za-z_]+)(\d+)$/.exec(item);
    if (!kv) return undefined;
    out[kv[1] as string] = scalar(kv[2] as string);
  }
  return out;
}

function parseTimer(inner: string): SocketTimer {
  const [name = "", expires = "", retrans] = inner.split(",");
  return { name, expiresMs: parseSsDuration(expires), retrans: intOrNaN(retrans), raw: inner };
}

// Whitespace splits tokens except inside parentheses, so bbr:(...) and timer:(...) stay whole.
function tokenize(text: string): string[] {
  const tokens: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of text) {
    if (ch === "(") depth++;
    else if (ch === ")") depth = Math.max(0, depth - 1);
    if (depth === 0 && /\s/.test(ch)) {
      if (cur) tokens.push(cur);
      cur = "";
    } else cur += ch;
  }
  if (cur) tokens.push(cur);
  return tokens;
}

function parseSocket(raw: string, host: string): SocketRow {
  const tokens = tokenize(raw);
  if (tokens[0] === "tcp" || tokens[0] === "mptcp") tokens.shift();
  const [stateText = "", recvQ, sendQ, local = "", peer = "", ...details] = tokens;
  const row: {
    -readonly [K in keyof SocketRow]: SocketRow[K];
  } = {
    host,
    state: STATES.get(stateText) ?? stateText,
    recvQ: intOrNaN(recvQ),
    sendQ: intOrNaN(sendQ),
    local: parseEndpoint(local),
    peer: parseEndpoint(peer),
    orphan: false,
    info: {},
    raw,
  };
  const info: Record<string, InfoValue> = {};
  for (let i = 0; i < details.length; i++) {
    const tok = details[i] as string;
    const group = /^([A-Za-z_][\w-]*):\((.*)\)$/.exec(tok);
    const kv = /^([A-Za-z_][\w-]*):(.*)$/.exec(tok);
    if (group) {
      const [, key = "", inner = ""] = group;
      if (key === "timer") row.timer = parseTimer(inner);
      else {
        const rec = parseGroup(inner);
        if (key === "skmem" && rec) row.skmem = rec as Record<string, number>;
        else info[key] = rec ?? inner;
      }
    } else if (kv) {
      const [, key = "", value = ""] = kv;
      if (key === "ino") row.inode = intOrNaN(value);
      else if (key === "sk") row.sk = value;
      else if (key === "uid") row.uid = intOrNaN(value);
      else if (key === "cgroup") row.cgroup = value;
      else info[key] = scalar(value);
    } else if (/^[<-]-[>-]$/.test(tok)) {
      row.shutdown = tok;
    } else if (SPACED_KEYS.has(tok) && i + 1 < details.length) {
      info[tok] = scalar(details[++i] as string);
    } else {
      info[tok] = true;
    }
  }
  row.info = info;
  // ino:0 alone over-counts: a child still in the accept queue has no file yet but is open ('<->', '-->'),
  // and a SYN_RECV request sock was never owned. An owner's close() always leaves '---', and the kernel's
  // timewait socks (TIME_WAIT, orphaned FIN_WAIT2) print no marker at all.
  row.orphan =
    row.inode === 0 &&
    row.state !== "LISTEN" &&
    row.state !== "SYN_RECV" &&
    (row.shutdown === undefined || row.shutdown === "---");
  return row;
}

/** Parses ss's TCP listing (one line per socket with -O, or with indented continuation lines without it). */
export function parseSocketTable(stdout: string, host = "local"): SocketRow[] {
  const blocks: string[] = [];
  for (const line of stdout.split("\n")) {
    if (line.trim() === "") {
      // ss prints an empty continuation line for sockets without details; keep it with its socket.
      if (blocks.length > 0 && line !== "") blocks[blocks.length - 1] += `\n${line}`;
      continue;
    }
    if (/^\s/.test(line) && blocks.length > 0) blocks[blocks.length - 1] += `\n${line}`;
    else if (/^(State|Netid)\s+Recv-Q/.test(line)) continue;
    else blocks.push(line);
  }
  return blocks.map((b) => parseSocket(b.replace(/[ \t]+$/gm, "").trimEnd(), host));
}

/** Every TCP socket in a namespace (ours when netns is undefined), in every state, as the kernel reports it. */
export async function socketTable(netns: string | undefined, opts: SocketTableOptions = {}): Promise<SocketRow[]> {
  const exec = opts.exec ?? run;
  const r = await exec(SS_ARGV, { netns, timeoutMs: opts.timeoutMs ?? 10_000 });
  return parseSocketTable(r.stdout, opts.host ?? "local");
}

function showEndpoint(e: Endpoint): string {
  const address = e.address.includes(":") ? `[${e.address}]` : e.address;
  return `${address}${e.iface ? `%${e.iface}` : ""}:${e.port === 0 ? "*" : e.port}`;
}

function showTimer(t: SocketTimer | undefined): string {
  if (!t) return "off";
  const secs = Number.isNaN(t.expiresMs) ? t.raw : (t.expiresMs / 1000).toFixed(2);
  return `${t.name} (${secs}/${t.retrans})`;
}

/** A netstat-style listing, for evidence files and failure messages that a reader can scan. */
export function formatSocketTable(rows: readonly SocketRow[]): string {
  const header = ["Local Address", "Remote Address", "Send-Q", "Recv-Q", "State", "Timer"];
  const body = rows.map((r) => [
    showEndpoint(r.local),
    showEndpoint(r.peer),
    String(r.sendQ),
    String(r.recvQ),
    r.orphan ? `${r.state} (orphan)` : r.state,
    showTimer(r.timer),
  ]);
  const all = [header, ...body];
  const widths = header.map((_, c) => Math.max(...all.map((cells) => (cells[c] as string).length)));
  const numeric = new Set([2, 3]);
  return all
    .map((cells) =>
      cells
        .map((cell, c) => (numeric.has(c) ? cell.padStart(widths[c] ?? 0) : cell.padEnd(widths[c] ?? 0)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** A socket that never appeared: carries the table last seen, so the failure shows what the kernel had instead. */
export class SocketWaitTimeoutError extends WaitTimeoutError {
  declare readonly lastTable: readonly SocketRow[];
  constructor(what: string, timeoutMs: number, lastTable: readonly SocketRow[], polls: number) {
    super(what, timeoutMs);
    const table = lastTable.length > 0 ? formatSocketTable(lastTable) : "(no TCP sockets)";
    this.message = `no socket matched ${what} within ${timeoutMs} ms (${polls} poll${polls === 1 ? "" : "s"} of ss); last table:\n${table}`;
    Object.defineProperty(this, "lastTable", { value: lastTable, enumerable: false });
  }
}
Object.defineProperty(SocketWaitTimeoutError.prototype, "name", { value: "SocketWaitTimeoutError" });

/** Polls the table until a row matches: the kernel moves sockets between states on its own clock, never on ours. */
export async function waitForSocket(
  netns: string | undefined,
  predicate: (r: SocketRow) => boolean,
  opts: WaitForSocketOptions,
): Promise<SocketRow> {
  const { timeoutMs, intervalMs = 50 } = opts;
  const what = opts.what ?? predicate.toString().replace(/\s+/g, " ");
  const deadline = Date.now() + timeoutMs;
  let last: SocketRow[] = [];
  let polls = 0;
  for (;;) {
    // ss may outlive the deadline by up to a second: killing it would end the wait with a CommandError
    // instead of the table-bearing timeout below.
    const left = deadline - Date.now();
    last = await socketTable(netns, { ...opts, timeoutMs: Math.max(left, 1000) });
    polls++;
    const hit = last.find(predicate);
    if (hit) return hit;
    const rest = deadline - Date.now();
    if (rest <= 0) throw new SocketWaitTimeoutError(what, timeoutMs, last, polls);
    await sleep(Math.min(intervalMs, rest));
  }
}
