// The ladder (sequence) diagram of one scenario: a column per host, time flowing down on the lab's
// clock, each host's calls and TCP states on its column, the packets as arrows between columns and
// the faults across the picture. Idle stretches become scale breaks so a timer's seconds stay short.
import { type Packet, relativeSeq } from "../evidence/capture.js";
import type { FaultEvent } from "../lab/lab.js";
import type { ReportScenario } from "../runner/report.js";
import type { TranscriptEntry } from "../sys/transcript.js";
import { clip, escapeHtml as esc, humanUs } from "./escape.js";

/** A lab host as the report names it. */
export type LadderHost = ReportScenario["hosts"][number];

/** Gaps at least this long (µs) become a scale break with the skipped time written on it. */
export const BREAK_US = 20_000;
/** A receiver's copy within this long after the sender's is the same packet crossing the switch. */
export const MATCH_WINDOW_US = 1_000_000;
/** A receiver's copy may be stamped this much before the sender's (two tcpdumps, two CPUs). */
const CAPTURE_SKEW_US = 200;
/** Beyond this many drawable items, only the first and last halves are drawn. */
export const MAX_ITEMS = 800;
/** Labels longer than this are cut (the whole text stays in the tooltip). */
const MAX_LABEL_CHARS = 76;
/** Advance of one character of the 11 px monospace font, a little generous. */
const CHAR_W = 6.8;
const AXIS_W = 84;
const HEADER_H = 46;
const FOOTER_H = 34;
const MIN_WIRE = 190;
const MIN_OUTER = 60;
const ROW_PAD = 3;
/** Polling loops of up to this many different calls collapse into one row. */
const MAX_PERIOD = 8;
const BREAK_H = 22;

// ---------------------------------------------------------------- addresses

function expandIpv6(addr: string): string | undefined {
  let a = addr.toLowerCase();
  const pct = a.indexOf("%");
  if (pct >= 0) a = a.slice(0, pct);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const v4 = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (v4) {
    const [, head, b1, b2, b3, b4] = v4;
    const hi = ((Number(b1) << 8) | Number(b2)).toString(16);
    const lo = ((Number(b3) << 8) | Number(b4)).toString(16);
    a = `${head}${hi}:${lo}`;
  }
  const halves = a.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(":") : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  if (!groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return undefined;
  return groups.map((g) => Number.parseInt(g, 16).toString(16)).join(":");
}

/** The link-local IPv6 address a MAC address yields (modified EUI-64), in expanded form. */
export function eui64LinkLocal(mac: string): string | undefined {
  const b = mac.split(/[:-]/).map((x) => Number.parseInt(x, 16));
  if (b.length !== 6 || b.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) return undefined;
  const [b0, b1, b2, b3, b4, b5] = b as [number, number, number, number, number, number];
  const g = [((b0 ^ 0x02) << 8) | b1, (b2 << 8) | 0xff, (0xfe << 8) | b3, (b4 << 8) | b5];
  return ["fe80", "0", "0", "0", ...g.map((x) => x.toString(16))].join(":");
}

function addressKey(addr: string): string | undefined {
  if (addr.includes(":")) {
    const full = expandIpv6(addr);
    if (!full) return undefined;
    // IPv4-mapped addresses name the IPv4 host.
    const m = /^0:0:0:0:0:ffff:([0-9a-f]+):([0-9a-f]+)$/.exec(full);
    if (m) {
      const hi = Number.parseInt(m[1] as string, 16);
      const lo = Number.parseInt(m[2] as string, 16);
      return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
    }
    return full;
  }
  return /^\d+\.\d+\.\d+\.\d+$/.test(addr) ? addr : undefined;
}

/** Maps a packet or socket address to the lab host that owns it: IPv4, IPv6, its EUI-64 link-local, IPv4-mapped. */
export function hostResolver(hosts: readonly LadderHost[]): (addr: string | undefined) => string | undefined {
  const byKey = new Map<string, string>();
  for (const h of hosts) {
    for (const a of [h.ipv4, h.ipv6]) {
      const k = a ? addressKey(a) : undefined;
      if (k) byKey.set(k, h.name);
    }
    const ll = h.mac ? eui64LinkLocal(h.mac) : undefined;
    if (ll) byKey.set(ll, h.name);
  }
  return (addr) => {
    if (!addr) return undefined;
    const k = addressKey(addr);
    return k === undefined ? undefined : byKey.get(k);
  };
}

// ---------------------------------------------------------------- packets

/** One packet on the wire: sent by `from` when its port saw it, received by `to` when its port saw it. */
export interface WirePacket {
  /** The sender's copy (or the receiver's when the sender's was not captured), seq/ack relative. */
  readonly packet: Packet;
  readonly from: string | undefined;
  readonly to: string | undefined;
  /** When the sender's switch port saw it. */
  readonly sentUs: number | undefined;
  /** When the receiver's switch port saw it; undefined when it never got there. */
  readonly recvUs: number | undefined;
  /** Ports that saw a copy meant for neither end (a switch flooding an unknown destination). */
  readonly floodedTo: readonly string[];
}

/** IPv6 multicast and unspecified-source chatter (MLD reports, DAD) that says nothing about TCP. */
export function isNoise(p: Packet): boolean {
  if (p.family === "IPv6" && (p.dst?.toLowerCase().startsWith("ff") || p.src === "::")) return true;
  return p.kind === "other" && p.src === undefined;
}

function identity(p: Packet): string {
  return [
    p.kind,
    p.src,
    p.dst,
    p.sport,
    p.dport,
    p.seqAbs ?? p.seq,
    p.ackAbs ?? p.ack,
    p.flags,
    p.len,
    p.arpOp,
    p.hwSrc,
    p.icmpType,
    p.icmpCode,
    p.proto,
  ].join("|");
}

/**
 * Turns per-port captures into packets on the wire: a packet captured on the sender's and the
 * receiver's port is one packet, from the sender's time to the receiver's; IPv6 multicast noise is dropped.
 */
export function mergeCaptures(
  packets: readonly Packet[],
  resolve: (addr: string | undefined) => string | undefined,
): { wire: WirePacket[]; noise: number; unplaced: number } {
  const kept = packets.filter((p) => !isNoise(p));
  const sorted = relativeSeq([...kept].sort((a, b) => a.atUs - b.atUs));
  type Draft = { -readonly [K in keyof WirePacket]: WirePacket[K] } & { floodedTo: string[] };
  const sends = new Map<string, Draft[]>();
  const receives = new Map<string, Packet[]>();
  const strays = new Map<string, Packet[]>();
  const out: Draft[] = [];
  for (const p of sorted) {
    const from = resolve(p.src);
    const to = resolve(p.dst);
    const k = identity(p);
    if (from !== undefined && p.host === from) {
      const d: Draft = { packet: p, from, to, sentUs: p.atUs, recvUs: undefined, floodedTo: [] };
      out.push(d);
      sends.set(k, [...(sends.get(k) ?? []), d]);
    } else if (to !== undefined && p.host === to) {
      receives.set(k, [...(receives.get(k) ?? []), p]);
    } else {
      strays.set(k, [...(strays.get(k) ?? []), p]);
    }
  }
  // Per identity, both lists are in time order. A LAN delivers at once, so a receive belongs to the
  // latest send before it (a retransmission, not the copy lost a second earlier); sends passed over
  // never arrived.
  for (const [k, recvs] of receives) {
    const list = sends.get(k) ?? [];
    let i = 0;
    for (const r of recvs) {
      let j = -1;
      for (let n = i; n < list.length && (list[n]?.sentUs as number) <= r.atUs + CAPTURE_SKEW_US; n++) j = n;
      const s = j >= 0 ? list[j] : undefined;
      if (s && r.atUs - (s.sentUs as number) <= MATCH_WINDOW_US) {
        s.recvUs = Math.max(r.atUs, s.sentUs as number);
        i = j + 1;
      } else {
        out.push({
          packet: r,
          from: resolve(r.src),
          to: resolve(r.dst),
          sentUs: undefined,
          recvUs: r.atUs,
          floodedTo: [],
        });
      }
    }
  }
  let unplaced = 0;
  for (const [k, list] of strays) {
    for (const p of list) {
      const near = (sends.get(k) ?? []).find(
        (s) => Math.abs((s.sentUs as number) - p.atUs) <= MATCH_WINDOW_US && !s.floodedTo.includes(p.host),
      );
      if (near) near.floodedTo.push(p.host);
      else unplaced++;
    }
  }
  out.sort((a, b) => (a.sentUs ?? a.recvUs ?? 0) - (b.sentUs ?? b.recvUs ?? 0));
  return { wire: out, noise: packets.length - kept.length, unplaced };
}

/** The label a packet arrow carries: flags, relative seq (and end) and ack, length; ARP as who-has/is-at. */
export function packetLabel(p: Packet, withPorts = false): string {
  const ports = withPorts && p.sport !== undefined ? `${p.sport}→${p.dport} ` : "";
  switch (p.kind) {
    case "tcp": {
      const flags = p.flags ?? "?";
      const len = p.len ?? 0;
      const parts = [`[${flags}]`];
      if (p.seq !== undefined) parts.push(len > 0 ? `seq ${p.seq}:${(p.seq + len) >>> 0}` : `seq ${p.seq}`);
      if (p.ack !== undefined && flags.includes(".")) parts.push(`ack ${p.ack}`);
      if (len > 0) parts.push(`len ${len}`);
      return ports + parts.join(" ");
    }
    case "arp":
      if (p.arpOp === "request") return `ARP who-has ${p.dst ?? "?"}`;
      if (p.arpOp === "reply") return `ARP ${p.src ?? "?"} is-at ${p.hwSrc ?? "?"}`;
      return `ARP ${p.note ?? ""}`.trim();
    case "udp":
      return `${ports}UDP len ${p.len ?? "?"}`;
    case "icmp":
    case "icmp6":
      return `${p.kind.toUpperCase()} type ${p.icmpType ?? "?"} code ${p.icmpCode ?? "?"}`;
    default:
      return p.note ?? `proto ${p.proto ?? "?"}`;
  }
}

function packetClass(p: Packet): string {
  if (p.kind === "arp") return "arp";
  if (p.kind !== "tcp") return "other";
  const f = p.flags ?? "";
  if (f.includes("R")) return "rst";
  if (f.includes("S")) return "syn";
  if (f.includes("F")) return "fin";
  if ((p.len ?? 0) > 0) return "data";
  return "ack";
}

// ---------------------------------------------------------------- time

/** One point on the time axis and the room its label needs above and below it (px). */
export interface TimePoint {
  readonly atUs: number;
  readonly above: number;
  readonly below: number;
}

/** A scale break: `skippedUs` of idle time drawn as a fixed band centred on `y`. */
export interface ScaleBreak {
  readonly y: number;
  readonly fromUs: number;
  readonly toUs: number;
  readonly skippedUs: number;
}

/**
 * Places time points (sorted by time) down the page: always in order, each clear of its neighbour's
 * label, a little extra room for longer gaps, and a scale break for any gap of `breakUs` or more.
 */
export function compressTime(
  points: readonly TimePoint[],
  options: { top?: number; breakUs?: number } = {},
): { y: number[]; breaks: ScaleBreak[]; height: number } {
  const breakUs = options.breakUs ?? BREAK_US;
  const y: number[] = [];
  const breaks: ScaleBreak[] = [];
  let cur = options.top ?? 0;
  let prev: TimePoint | undefined;
  for (const p of points) {
    if (prev === undefined) {
      cur += p.above;
    } else {
      const dt = Math.max(0, p.atUs - prev.atUs);
      const clear = prev.below + p.above + ROW_PAD;
      if (dt >= breakUs) {
        breaks.push({ y: cur + prev.below + ROW_PAD + BREAK_H / 2, fromUs: prev.atUs, toUs: p.atUs, skippedUs: dt });
        cur += clear + BREAK_H + ROW_PAD;
      } else {
        // Up to 12 px more for a longer wait, logarithmic so that 10 µs and 10 ms both stay readable.
        cur += clear + (dt <= 20 ? 0 : Math.min(12, 3 * Math.log10(dt / 20)));
      }
    }
    y.push(cur);
    prev = p;
  }
  return { y, breaks, height: prev ? cur + prev.below : (options.top ?? 0) };
}

// ---------------------------------------------------------------- items

type Side = "left" | "right";

interface Anchor extends TimePoint {
  /** Shown on the time axis. */
  readonly stamp: boolean;
  /** Whose event it is and what, so a call is split only by what it did not cause itself. */
  readonly host?: string;
  readonly role?: "send" | "recv" | "state" | "call" | "fault";
  y: number;
}

interface LabelNeed {
  /** The gap the label lies in: -1 left of the first column, i right of column i. */
  readonly gap: number;
  readonly chars: number;
}

interface Geometry {
  readonly x: (host: string) => number;
  readonly col: (host: string) => number;
  readonly left: number;
  readonly right: number;
  readonly bottom: number;
}

interface Item {
  readonly kind: "call" | "packet" | "state" | "fault" | "reset";
  readonly startUs: number;
  readonly anchors: Anchor[];
  readonly labels: LabelNeed[];
  render(g: Geometry): string;
}

function anchor(
  atUs: number,
  above: number,
  below: number,
  stamp = true,
  host?: string,
  role?: Anchor["role"],
): Anchor {
  return { atUs, above, below, stamp, y: 0, ...(host !== undefined ? { host } : {}), ...(role ? { role } : {}) };
}

function callText(e: TranscriptEntry): { call: string; outcome: string; failed: boolean } {
  const call = `${e.call}(${e.args.join(", ")})`;
  if (e.error === undefined) return { call, outcome: `= ${e.result ?? ""}`, failed: false };
  return { call, outcome: e.errno ? `Err#${Math.abs(e.errno)} ${e.error}` : `Err ${e.error}`, failed: true };
}

function text(
  x: number,
  y: number,
  anchorSide: "start" | "end" | "middle",
  cls: string,
  content: string,
  title?: string,
): string {
  const shown = clip(content, MAX_LABEL_CHARS);
  const tip = title ?? (shown === content ? undefined : content);
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" text-anchor="${anchorSide}" class="${cls}">${tip ? `<title>${esc(tip)}</title>` : ""}${esc(shown)}</text>`;
}

function sideLabel(g: Geometry, host: string, side: Side, y: number, cls: string, content: string, title?: string) {
  const x = g.x(host);
  return side === "right" ? text(x + 9, y, "start", cls, content, title) : text(x - 9, y, "end", cls, content, title);
}

/** Everything the ladder is drawn from, as the report keeps it. */
export interface LadderInput {
  readonly name: string;
  readonly hosts: readonly LadderHost[];
  readonly transcript: readonly TranscriptEntry[];
  readonly packets: readonly Packet[];
  readonly states: ReadonlyArray<Record<string, unknown>>;
  readonly faults: readonly FaultEvent[];
}

/** How the ladder came out: the SVG and what it left out. */
export interface Ladder {
  readonly svg: string;
  readonly columns: readonly string[];
  readonly notes: readonly string[];
  readonly counts: {
    readonly packets: number;
    readonly calls: number;
    readonly states: number;
    readonly faults: number;
  };
}

const SOFT_ERRORS = new Set(["EINPROGRESS", "EAGAIN", "EWOULDBLOCK", "EALREADY"]);

const DOWN_FAULTS: Readonly<Record<string, string>> = {
  powerOff: "boot",
  shutdown: "boot",
  pause: "resume",
  unplug: "replug",
};

// The index of the first of the time-sorted `xs` later than `us` (binary search).
function firstAfter<T>(xs: readonly T[], atUs: (x: T) => number, us: number): number {
  let a = 0;
  let b = xs.length;
  while (a < b) {
    const m = (a + b) >> 1;
    if (atUs(xs[m] as T) <= us) a = m + 1;
    else b = m;
  }
  return a;
}

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/** Draws the ladder diagram of one scenario as an SVG element. */
export function renderLadder(input: LadderInput, options: { maxItems?: number } = {}): Ladder {
  const maxItems = options.maxItems ?? MAX_ITEMS;
  const resolve = hostResolver(input.hosts);
  const columns = input.hosts.map((h) => h.name);
  const addColumn = (name: string | undefined) => {
    if (name !== undefined && !columns.includes(name)) columns.push(name);
  };
  for (const e of input.transcript) addColumn(e.host);
  const notes: string[] = [];
  const lastCol = () => columns.length - 1;
  const ownSide = (host: string): Side => (columns.indexOf(host) === 0 && columns.length > 1 ? "left" : "right");
  const gapOf = (host: string, side: Side) => (side === "left" ? columns.indexOf(host) - 1 : columns.indexOf(host));
  const items: Item[] = [];

  // Packets first, so that an address no host owns gets a column before the widths are known.
  const { wire, noise, unplaced } = mergeCaptures(input.packets, resolve);
  const ELSEWHERE = "(elsewhere)";
  for (const w of wire) if (w.from === undefined || w.to === undefined) addColumn(ELSEWHERE);
  const tcpTuples = new Map<string, Set<string>>();
  for (const w of wire) {
    const p = w.packet;
    if (p.kind !== "tcp") continue;
    const pair = [w.from, w.to].sort().join("|");
    const tuple = [`${p.src}.${p.sport}`, `${p.dst}.${p.dport}`].sort().join("|");
    tcpTuples.set(pair, (tcpTuples.get(pair) ?? new Set()).add(tuple));
  }
  for (const w of wire) {
    const p = w.packet;
    const from = w.from ?? ELSEWHERE;
    const to = w.to ?? ELSEWHERE;
    if (from === to) continue;
    const cls = packetClass(p);
    const thin = cls === "arp" || p.kind === "icmp6";
    const pair = [w.from, w.to].sort().join("|");
    const label = packetLabel(p, (tcpTuples.get(pair)?.size ?? 0) > 1);
    const right = columns.indexOf(to) > columns.indexOf(from);
    const lost = w.recvUs === undefined;
    const unsent = w.sentUs === undefined;
    const tip = [
      `${p.src ?? "?"}${p.sport !== undefined ? `.${p.sport}` : ""} > ${p.dst ?? "?"}${p.dport !== undefined ? `.${p.dport}` : ""}`,
      label,
      p.options ? `options [${p.options}]` : "",
      p.win !== undefined ? `win ${p.win}` : "",
      w.sentUs !== undefined
        ? `sent +${(w.sentUs / 1e6).toFixed(6)} s (seen on ${from}'s port)`
        : `not seen on ${from}'s port`,
      w.recvUs !== undefined
        ? `received +${(w.recvUs / 1e6).toFixed(6)} s (seen on ${to}'s port)`
        : `never seen on ${to}'s port`,
      w.floodedTo.length ? `flooded to ${w.floodedTo.join(", ")}` : "",
    ]
      .filter(Boolean)
      .join("\n");
    const start = unsent
      ? anchor(w.recvUs as number, 13, 3, true, to, "recv")
      : anchor(w.sentUs as number, 13, lost ? 13 : 3, true, from, "send");
    const end = !lost && !unsent ? anchor(w.recvUs as number, 3, 3, false, to, "recv") : undefined;
    const labelSide: Side = right ? "right" : "left";
    const labelText = `${label}${lost ? `  ✕ not seen at ${to}` : ""}${unsent ? `  (not seen at ${from})` : ""}`;
    items.push({
      kind: "packet",
      startUs: start.atUs,
      anchors: end ? [start, end] : [start],
      labels: [{ gap: gapOf(from, labelSide), chars: Math.min(MAX_LABEL_CHARS, labelText.length) }],
      render(g) {
        const x1 = g.x(from);
        const x2full = g.x(to);
        const y1 = start.y;
        // A lost packet's short arrow and its cross stay within its own row.
        const y2 = end ? end.y : start.y + 6;
        // Never seen at the receiver: the arrow stops half way, with a cross.
        const x2 = lost ? x1 + (x2full - x1) * 0.55 : x2full;
        const dir = right ? 1 : -1;
        const tipX = lost ? x2 : x2 - dir * 1.5;
        const attrs = `class="packet ${cls}${thin ? " thin" : ""}${lost ? " lost" : ""}" data-kind="${esc(p.kind)}" data-flags="${esc(p.flags ?? "")}" data-from="${esc(from)}" data-to="${esc(to)}"`;
        const line = `<line x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${tipX.toFixed(1)}" y2="${y2.toFixed(1)}"${lost ? "" : ` marker-end="url(#arrow-${cls})"`}/>`;
        const cross = lost ? `<path class="cross" d="M${x2 - 4},${y2 - 4}l8,8m0,-8l-8,8"/>` : "";
        const lbl = sideLabel(g, from, labelSide, y1 - 3, `plabel ${cls}`, labelText, tip);
        return `<g ${attrs}><title>${esc(tip)}</title>${line}${cross}${lbl}</g>`;
      },
    });
  }
  if (noise > 0) notes.push(`${noise} IPv6 multicast packet${noise === 1 ? "" : "s"} (MLD, DAD) left out`);
  if (unplaced > 0) notes.push(`${unplaced} packet copies seen only on a port that was neither end, left out`);

  // TCP states and resets from the tracepoints.
  const states = input.states
    .map((s) => ({
      atUs: num(s.atUs),
      event: str(s.event),
      saddr: str(s.saddr),
      sport: num(s.sport) ?? 0,
      daddr: str(s.daddr),
      dport: num(s.dport) ?? 0,
      skaddr: str(s.skaddr),
      oldstate: str(s.oldstate),
      newstate: str(s.newstate),
      state: str(s.state),
      reason: str(s.reason),
    }))
    .filter((s): s is typeof s & { atUs: number } => s.atUs !== undefined);
  const portOf = new Map<string, number>();
  for (const s of states) if (s.skaddr && s.sport) portOf.set(s.skaddr, s.sport);
  const connected = new Map<string, Set<string>>();
  for (const s of states) {
    const host = resolve(s.saddr);
    if (!host || s.event !== "inet_sock_set_state" || !s.dport) continue;
    connected.set(host, (connected.get(host) ?? new Set()).add(s.skaddr ?? `${s.sport}|${s.daddr}|${s.dport}`));
  }
  let unowned = 0;
  const hasPackets = wire.length > 0;
  for (const s of states) {
    const host = resolve(s.saddr);
    if (!host) {
      if (s.event === "inet_sock_set_state") unowned++;
      continue;
    }
    addColumn(host);
    const side = ownSide(host);
    const sport = s.sport || (s.skaddr ? portOf.get(s.skaddr) : undefined);
    const peer = resolve(s.daddr) ?? s.daddr ?? "?";
    const tag =
      s.dport && (connected.get(host)?.size ?? 0) > 1 ? `  [${sport ? `:${sport}` : ""} ↔ ${peer}:${s.dport}]` : "";
    let content: string;
    let cls: string;
    let kind: Item["kind"] = "state";
    if (s.event === "inet_sock_set_state") {
      content = `${s.oldstate ?? "?"} → ${s.newstate ?? "?"}${tag}`;
      cls = "state";
    } else if (s.event === "tcp_send_reset") {
      content = `RST sent${s.reason ? ` (${s.reason})` : ""}${tag}`;
      cls = "reset";
      kind = "reset";
    } else if (s.event === "tcp_receive_reset") {
      content = `RST received${tag}`;
      cls = "reset";
      kind = "reset";
    } else if (s.event === "tcp_retransmit_skb" && !hasPackets) {
      content = `retransmit (${s.state ?? "?"})${tag}`;
      cls = "retrans";
    } else {
      continue;
    }
    const a = anchor(s.atUs, 10, 7, true, host, "state");
    const title = `${s.event} ${s.saddr}:${s.sport} → ${s.daddr}:${s.dport} at +${(s.atUs / 1e6).toFixed(6)} s`;
    items.push({
      kind,
      startUs: s.atUs,
      anchors: [a],
      labels: [{ gap: gapOf(host, side), chars: Math.min(MAX_LABEL_CHARS, content.length) + 2 }],
      render(g) {
        const x = g.x(host);
        const w = Math.min(MAX_LABEL_CHARS, content.length) * CHAR_W + 10;
        const rx = side === "right" ? x + 5 : x - 5 - w;
        const tx = side === "right" ? x + 10 : x - 10;
        return `<g class="${cls}" data-host="${esc(host)}" data-state="${esc(s.newstate ?? "")}"><title>${esc(title)}</title><rect x="${rx.toFixed(1)}" y="${(a.y - 8).toFixed(1)}" width="${w.toFixed(1)}" height="15" rx="7"/>${text(tx, a.y + 3.5, side === "right" ? "start" : "end", "slabel", content, title)}<circle cx="${x.toFixed(1)}" cy="${a.y.toFixed(1)}" r="2.5"/></g>`;
      },
    });
  }
  if (unowned > 0)
    notes.push(
      `${unowned} state change${unowned === 1 ? "" : "s"} of sockets bound to no host's address (a wildcard listener) left out`,
    );

  // Faults: a line across the whole picture; a host that is down gets its column hatched until it comes back.
  const faults = [...input.faults].sort((a, b) => a.atUs - b.atUs);
  for (const h of faults.flatMap((f) => f.hosts)) addColumn(h);
  for (const [i, f] of faults.entries()) {
    // A detail that names the hosts (a partition's "a | b") says it better than the list does.
    const named = f.detail !== undefined && f.hosts.every((h) => f.detail?.includes(h));
    const who = f.hosts.length && !named ? ` ${f.hosts.join(", ")}` : "";
    const content = `⚡ ${f.fault}${who}${f.detail ? (named ? ` ${f.detail}` : ` (${f.detail})`) : ""}`;
    const a = anchor(f.atUs, 14, 4, true, undefined, "fault");
    const endFault = DOWN_FAULTS[f.fault];
    const downs = endFault
      ? f.hosts.map((h) => ({
          host: h,
          until: faults.slice(i + 1).find((g) => g.fault === endFault && g.hosts.includes(h)),
        }))
      : [];
    const ends = downs.map((d) => (d.until ? anchor(d.until.atUs, 0, 0, false, d.host, "fault") : undefined));
    items.push({
      kind: "fault",
      startUs: f.atUs,
      anchors: [a],
      labels: [{ gap: -1, chars: 0 }],
      render(g) {
        const hatch = downs
          .map((d, j) => {
            const y2 = ends[j]?.y ?? g.bottom;
            return `<rect class="down" x="${(g.x(d.host) - 5).toFixed(1)}" y="${a.y.toFixed(1)}" width="10" height="${Math.max(0, y2 - a.y).toFixed(1)}"><title>${esc(d.host)} is ${esc(f.fault === "pause" ? "paused" : f.fault === "unplug" ? "unplugged" : "off")}</title></rect>`;
          })
          .join("");
        return `<g class="fault" data-fault="${esc(f.fault)}" data-hosts="${esc(f.hosts.join(" "))}">${hatch}<line x1="${AXIS_W - 4}" y1="${a.y.toFixed(1)}" x2="${g.right}" y2="${a.y.toFixed(1)}"/>${text(AXIS_W + 2, a.y - 4, "start", "flabel", content)}</g>`;
      },
    });
    // The end anchors only hold a place on the axis; they travel with the fault item.
    for (const e of ends) if (e) items[items.length - 1]?.anchors.push(e);
  }

  // Calls: on the caller's column. One during which something else happens (another host acts, a
  // packet arrives, a fault) is drawn from call to return; what the call itself caused does not count.
  const others = [
    ...items.flatMap((it) => it.anchors),
    ...input.transcript.map((e) => ({ atUs: e.atUs, host: e.host, role: "call" as const })),
  ].sort((a, b) => a.atUs - b.atUs);
  const interrupted = (host: string, lo: number, hi: number) => {
    // A call that blocks long enough for a scale break returns visibly later, whatever happened meanwhile.
    if (hi - lo >= BREAK_US) return true;
    for (let i = firstAfter(others, (o) => o.atUs, lo); i < others.length; i++) {
      const o = others[i] as { atUs: number; host?: string; role?: Anchor["role"] };
      if (o.atUs >= hi) return false;
      if (!(o.host === host && (o.role === "send" || o.role === "state"))) return true;
    }
    return false;
  };
  // A polling loop (the same call, arguments and answer, again and again with nothing else in
  // between) is one row that says how many times and until when.
  const nonCall = items.flatMap((it) => it.anchors.map((a) => a.atUs)).sort((a, b) => a - b);
  const anyBetween = (lo: number, hi: number) => {
    const a = firstAfter(nonCall, (us) => us, lo);
    return a < nonCall.length && (nonCall[a] as number) < hi;
  };
  const runKey = (e: TranscriptEntry) => JSON.stringify([e.host, e.call, e.args, e.result, e.error]);
  const calls = [...input.transcript].sort((a, b) => a.atUs - b.atUs);
  const short = calls.map((x) => !interrupted(x.host, x.atUs, x.atUs + Math.max(0, x.durationUs)));
  const keys = calls.map(runKey);
  // Group [b, b+k) repeats group [b-k, b), by one host, with nothing else happening meanwhile.
  const repeats = (b: number, k: number) => {
    for (let j = 0; j < k; j++) {
      if (keys[b + j] !== keys[b - k + j] || !short[b + j] || calls[b + j]?.host !== calls[b - k]?.host) return false;
    }
    return !anyBetween((calls[b - 1] as TranscriptEntry).atUs, (calls[b + k - 1] as TranscriptEntry).atUs);
  };
  const runs: Array<{ e: TranscriptEntry; repeat?: { k: number; times: number; lastUs: number } }> = [];
  const at = (n: number) => (calls[n] as TranscriptEntry).atUs;
  let aligned = false;
  for (let i = 0; i < calls.length; ) {
    let best: { k: number; m: number } | undefined;
    for (let k = 1; k <= MAX_PERIOD && i + 2 * k <= calls.length; k++) {
      if (!calls.slice(i, i + k).every((c, j) => c.host === calls[i]?.host && short[i + j])) break;
      let m = 1;
      while (i + (m + 1) * k <= calls.length && repeats(i + m * k, k)) m++;
      if (m > 1 && (!best || m * k > best.m * best.k)) best = { k, m };
    }
    if (best && !aligned) {
      // Start the group where the loop sleeps (the longest pause), so a group reads as one pass.
      let cut = i + best.k;
      for (let b = i + 1; b < i + best.k; b++) if (at(b) - at(b - 1) > at(cut) - at(cut - 1)) cut = b;
      const offset = (cut - i) % best.k;
      if (offset > 0) {
        for (let j = 0; j < offset; j++) runs.push({ e: calls[i + j] as TranscriptEntry });
        i += offset;
        aligned = true;
        continue;
      }
    }
    aligned = false;
    if (!best) {
      runs.push({ e: calls[i] as TranscriptEntry });
      i++;
      continue;
    }
    for (let j = 0; j < best.k; j++) runs.push({ e: calls[i + j] as TranscriptEntry });
    const lastUs = (calls[i + best.m * best.k - 1] as TranscriptEntry).atUs;
    runs.push({ e: calls[i + best.k] as TranscriptEntry, repeat: { k: best.k, times: best.m - 1, lastUs } });
    i += best.m * best.k;
  }
  for (const { e, repeat } of runs) {
    if (!repeat) continue;
    const host = e.host;
    const side = ownSide(host);
    const what = repeat.k === 1 ? "the call above" : `the ${repeat.k} calls above`;
    const content = `↻ ${what}, ${repeat.times} more time${repeat.times === 1 ? "" : "s"} until +${(repeat.lastUs / 1e6).toFixed(3)} s`;
    const a = anchor(e.atUs, 8, 5, true, host, "call");
    items.push({
      kind: "call",
      startUs: e.atUs,
      anchors: [a],
      labels: [{ gap: gapOf(host, side), chars: Math.min(MAX_LABEL_CHARS, content.length) }],
      render(g) {
        const x = g.x(host);
        return `<g class="call repeat" data-host="${esc(host)}" data-repeat="${repeat.times}"><circle cx="${x.toFixed(1)}" cy="${a.y.toFixed(1)}" r="2.5"/>${sideLabel(g, host, side, a.y + 3.5, "repeat", content)}</g>`;
      },
    });
  }
  for (const { e, repeat } of runs) {
    if (repeat) continue;
    const host = e.host;
    const side = ownSide(host);
    const { call, outcome, failed } = callText(e);
    const endUs = e.atUs + Math.max(0, e.durationUs);
    const split = interrupted(host, e.atUs, endUs);
    // A non-blocking call's expected "errors" are not failures.
    const cls = failed ? (SOFT_ERRORS.has(e.error ?? "") ? "call soft" : "call err") : "call";
    // Too long for a row: the arguments give way before the result does.
    const brief = `${e.call}(${e.args[0] ?? ""}${e.args.length > 1 ? ", …" : ""})`;
    const whole = `${call} ${outcome}`;
    const first = split ? `${call} …` : whole.length <= MAX_LABEL_CHARS ? whole : `${brief} ${outcome}`;
    const second = `… ${e.call}(${e.args[0] ?? ""}${e.args.length > 1 ? ", …" : ""}) ${outcome}  (${humanUs(e.durationUs)})`;
    const a = anchor(e.atUs, 8, 5, true, host, "call");
    const b = split ? anchor(endUs, 8, 5, true, host, "call") : undefined;
    const title = `${host} +${(e.atUs / 1e6).toFixed(6)} s  ${call} ${outcome}  [${Math.round(e.durationUs)} µs]`;
    items.push({
      kind: "call",
      startUs: e.atUs,
      anchors: b ? [a, b] : [a],
      labels: [
        { gap: gapOf(host, side), chars: Math.min(MAX_LABEL_CHARS, first.length) },
        ...(b ? [{ gap: gapOf(host, side), chars: Math.min(MAX_LABEL_CHARS, second.length) }] : []),
      ],
      render(g) {
        const x = g.x(host);
        const bar = b
          ? `<rect class="blocked" x="${(x - 2.5).toFixed(1)}" y="${a.y.toFixed(1)}" width="5" height="${(b.y - a.y).toFixed(1)}"/>`
          : "";
        const startCls = split ? "call" : cls;
        return `<g class="${cls}" data-host="${esc(host)}" data-call="${esc(e.call)}"${e.error ? ` data-error="${esc(e.error)}"` : ""}><title>${esc(title)}</title>${bar}<circle cx="${x.toFixed(1)}" cy="${a.y.toFixed(1)}" r="2.5"/>${sideLabel(g, host, side, a.y + 3.5, startCls, first, title)}${b ? `<circle cx="${x.toFixed(1)}" cy="${b.y.toFixed(1)}" r="2.5"/>${sideLabel(g, host, side, b.y + 3.5, cls, second, title)}` : ""}</g>`;
      },
    });
  }

  // Pathological sizes: the first and the last halves, and a marker saying what is missing.
  items.sort((a, b) => a.startUs - b.startUs);
  let drawn = items;
  let omitted: { atUs: number; text: string; anchor: Anchor } | undefined;
  if (items.length > maxItems) {
    const half = Math.floor(maxItems / 2);
    const middle = items.slice(half, items.length - half);
    const byKind = new Map<string, number>();
    for (const it of middle) byKind.set(it.kind, (byKind.get(it.kind) ?? 0) + 1);
    const names: Record<string, string> = {
      packet: "packets",
      call: "calls",
      state: "state changes",
      fault: "faults",
      reset: "resets",
    };
    const what = [...byKind].map(([k, n]) => `${n} ${names[k] ?? k}`).join(", ");
    const from = middle[0]?.startUs ?? 0;
    const to = middle[middle.length - 1]?.startUs ?? from;
    const textLeft = `⋯ ${middle.length} items left out (${what}) between +${(from / 1e6).toFixed(6)} s and +${(to / 1e6).toFixed(6)} s ⋯`;
    omitted = { atUs: from, text: textLeft, anchor: anchor(from, 14, 14) };
    drawn = [...items.slice(0, half), ...items.slice(items.length - half)];
    notes.push(`${middle.length} of ${items.length} items left out to keep the picture finite (${what})`);
  }

  // Widths: each gap fits the longest label that lies in it.
  const gaps = new Map<number, number>();
  for (const it of drawn)
    for (const l of it.labels) gaps.set(l.gap, Math.max(gaps.get(l.gap) ?? 0, l.chars * CHAR_W + 24));
  const headerChars = Math.max(...columns.map((c) => c.length), 14);
  const gapWidth = (i: number) =>
    i === -1 || i === lastCol()
      ? Math.max(MIN_OUTER, gaps.get(i) ?? 0, (headerChars * 7.5) / 2 + 8)
      : Math.max(MIN_WIRE, gaps.get(i) ?? 0, headerChars * 7.5 + 16);
  const xs: number[] = [];
  let x = AXIS_W + gapWidth(-1);
  for (let i = 0; i < columns.length; i++) {
    xs.push(x);
    x += gapWidth(i);
  }
  const width = Math.ceil(x + 8);

  // Heights: every anchor of every drawn item, in time order.
  const anchors = drawn.flatMap((it) => it.anchors);
  if (omitted) anchors.push(omitted.anchor);
  anchors.sort((a, b) => a.atUs - b.atUs);
  const top = HEADER_H + 14;
  const { y, breaks, height } = compressTime(anchors, { top });
  anchors.forEach((a, i) => {
    a.y = y[i] as number;
  });
  const bottom = Math.max(height, top) + 14;
  const total = Math.ceil(bottom + FOOTER_H);
  const geometry: Geometry = {
    x: (h) => xs[columns.indexOf(h)] ?? xs[0] ?? AXIS_W,
    col: (h) => columns.indexOf(h),
    left: AXIS_W - 80,
    right: width - 4,
    bottom,
  };

  const out: string[] = [];
  out.push(
    `<svg class="ladder" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${total}" viewBox="0 0 ${width} ${total}" data-scenario="${esc(input.name)}" data-columns="${columns.length}" role="img" aria-label="${esc(`ladder diagram of ${input.name}`)}">`,
  );
  out.push(
    `<defs>${["syn", "fin", "rst", "data", "ack", "arp", "other"].map((c) => `<marker id="arrow-${c}" class="head ${c}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="${c === "arp" ? 6 : 8}" markerHeight="${c === "arp" ? 6 : 8}" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z"/></marker>`).join("")}<pattern id="hatch" patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(45)"><rect width="6" height="6" class="hatch-bg"/><line x1="0" y1="0" x2="0" y2="6" class="hatch-line"/></pattern></defs>`,
  );
  // Breaks first, under everything.
  for (const b of breaks) {
    const zig = (yy: number) => {
      let d = `M${geometry.left},${yy}`;
      for (let xx = geometry.left; xx < geometry.right; xx += 12) d += `l6,-3l6,3`;
      return d;
    };
    out.push(
      `<g class="break" data-skipped-us="${Math.round(b.skippedUs)}"><rect x="${geometry.left}" y="${(b.y - 9).toFixed(1)}" width="${geometry.right - geometry.left}" height="18"/><path d="${zig(b.y - 9)}"/><path d="${zig(b.y + 9)}"/>${text((geometry.left + geometry.right) / 2, b.y + 4, "middle", "blabel", `⋯ ${humanUs(b.skippedUs)} later ⋯`)}</g>`,
    );
  }
  // Columns: header, lifeline (interrupted by breaks), footer.
  for (const [i, c] of columns.entries()) {
    const cx = xs[i] as number;
    const host = input.hosts.find((h) => h.name === c);
    const sub = host ? host.ipv4 : c === ELSEWHERE ? "addresses of no lab host" : "";
    const segs: string[] = [];
    let from = HEADER_H;
    for (const b of breaks) {
      segs.push(`M${cx},${from}V${(b.y - 9).toFixed(1)}`);
      from = b.y + 9;
    }
    segs.push(`M${cx},${from}V${bottom}`);
    out.push(
      `<g class="host-column${c === ELSEWHERE ? " elsewhere" : ""}" data-host="${esc(c)}"><text x="${cx}" y="18" text-anchor="middle" class="hname">${esc(c)}</text><text x="${cx}" y="33" text-anchor="middle" class="haddr">${esc(sub)}</text><path class="lifeline" d="${segs.join("")}"/><text x="${cx}" y="${bottom + 20}" text-anchor="middle" class="hname">${esc(c)}</text></g>`,
    );
  }
  // Time axis: one stamp per labelled row.
  const stamps = anchors
    .filter((a) => a.stamp)
    .map(
      (a) =>
        `<text x="${AXIS_W - 10}" y="${(a.y + 3.5).toFixed(1)}" text-anchor="end">+${(a.atUs / 1e6).toFixed(6)}</text>`,
    );
  out.push(
    `<g class="axis"><text x="${AXIS_W - 10}" y="18" text-anchor="end" class="hname">time (s)</text>${stamps.join("")}</g>`,
  );
  // Faults and calls under packets, states on top.
  const order: Item["kind"][] = ["fault", "call", "packet", "reset", "state"];
  for (const k of order) for (const it of drawn) if (it.kind === k) out.push(it.render(geometry));
  if (omitted) {
    const oy = omitted.anchor.y;
    out.push(
      `<g class="omitted"><rect x="${geometry.left}" y="${(oy - 12).toFixed(1)}" width="${geometry.right - geometry.left}" height="24"/>${text((geometry.left + geometry.right) / 2, oy + 4, "middle", "olabel", omitted.text)}</g>`,
    );
  }
  out.push("</svg>");
  const count = (k: Item["kind"]) => items.filter((it) => it.kind === k).length;
  return {
    svg: out.join("\n"),
    columns,
    notes,
    counts: {
      packets: count("packet"),
      calls: count("call"),
      states: count("state") + count("reset"),
      faults: count("fault"),
    },
  };
}

/** The ladder of a scenario as the report keeps it. */
export function scenarioLadder(s: ReportScenario, options: { maxItems?: number } = {}): Ladder {
  return renderLadder(
    {
      name: s.name,
      hosts: s.hosts ?? [],
      transcript: s.evidence?.transcript ?? [],
      packets: s.evidence?.packets ?? [],
      states: s.evidence?.states ?? [],
      faults: s.evidence?.faults ?? [],
    },
    options,
  );
}
