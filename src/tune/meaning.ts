// What a set of sysctls means for connections: each figure with the formula it comes from and what
// an untuned namespace would give, all arithmetic from src/model/ (and src/tune/model.ts).
import {
  acceptQueueCapacity,
  humanMs,
  keepaliveDeathMs,
  retransmissionDeath,
  TCP_RTO_MIN_MS,
  TCP_TIMEOUT_INIT_MS,
  TCP_TIMEWAIT_LEN_MS,
  timeWaitCapacityPerMinute,
} from "../model/tcp.js";
import { finWait2Lifetime } from "../model/timers.js";
import { LAN_RTT_MS, lanRtoMs, synGiveUp, TUNE_HZ, type TuneSettings } from "./model.js";

/** One figure: its value, the formula it comes from, and the value with the defaults. */
export interface MeaningRow {
  readonly name: string;
  /** null where it cannot be known here (a memory-scaled default on an unknown table size). */
  readonly value: number | null;
  readonly unit: "ms" | "connections" | "connections/min" | "sockets" | "requests" | "mode";
  readonly formula: string;
  readonly defaultValue: number | null;
  /** What the figure does not say by itself: scope, per-socket overrides, assumptions. */
  readonly note?: string;
}

/** The choices a figure depends on beyond the sysctls. */
export interface MeaningOptions {
  /** The listen() backlog the accept-queue figure assumes. */
  readonly backlog: number;
  /** The TCP_USER_TIMEOUT (ms) the per-socket figure shows. */
  readonly userTimeoutMs: number;
}

/** Node.js's and nginx's default listen() backlog: what a typical server passes. */
export const TYPICAL_BACKLOG = 511;
/** The TCP_USER_TIMEOUT shown when none is asked for. */
export const EXAMPLE_USER_TIMEOUT_MS = 30_000;

const ms = (x: number) => `${Math.round(x)} ms`;
const list = (xs: readonly number[]) => xs.map((x) => Math.round(x)).join(", ");

/** tcp_model_timeout() as a formula: (2^(n+1) - 1) x base, plus linear steps of RTO max past the threshold. */
export function modelTimeoutFormula(boundary: number, baseMs: number, rtoMaxMs: number): string {
  const thresh = Math.floor(Math.log2(rtoMaxMs / baseMs));
  const base = baseMs >= 1000 ? `${baseMs / 1000} s` : `${baseMs} ms`;
  if (boundary <= thresh) return `(2^${boundary + 1} − 1) × ${base}`;
  return `(2^${thresh + 1} − 1) × ${base} + ${boundary - thresh} × ${rtoMaxMs} ms (tcp_rto_max_ms)`;
}

type Figure = { value: number | null; formula: string };

function retransmission(s: TuneSettings, userTimeoutMs?: number): Figure {
  const rto = lanRtoMs(s.rtoMinMs);
  const d = retransmissionDeath({
    rtoMs: rto,
    srttMs: LAN_RTT_MS,
    retries2: s.retries2,
    rtoMaxMs: s.rtoMaxMs,
    ...(userTimeoutMs ? { userTimeoutMs } : {}),
  });
  const first = `the first RTO retransmission at ${ms(d.startMs)} (tail loss probe at ${ms(d.schedule[0] as number)}, then RTO ${rto} ms)`;
  const timers = `retransmissions at ${list(d.schedule.slice(0, -1))} ms, error at ${ms(d.deathMs)}`;
  if (userTimeoutMs) {
    return {
      value: d.deathMs,
      formula: `TCP_USER_TIMEOUT=${userTimeoutMs} ms replaces tcp_retries2, counted from ${first}; the last timer is clamped to it: ${ms(d.startMs)} + ${userTimeoutMs} ms = ${ms(d.deathMs)}`,
    };
  }
  return {
    value: d.deathMs,
    formula: `tcp_retries2=${s.retries2} → ${modelTimeoutFormula(s.retries2, TCP_RTO_MIN_MS, s.rtoMaxMs)} = ${humanMs(d.limitMs)}, counted from ${first}; the RTO doubles up to ${s.rtoMaxMs} ms (tcp_rto_max_ms, where the kernel has it) and the error comes at the first timer ${humanMs(d.limitMs)} or more past that start: ${timers} (${d.retransmissions} retransmissions)`,
  };
}

function keepalive(s: TuneSettings): Figure {
  const v = keepaliveDeathMs(s.keepaliveTimeS, s.keepaliveIntvlS, s.keepaliveProbes);
  return {
    value: v,
    formula: `tcp_keepalive_time + tcp_keepalive_intvl × tcp_keepalive_probes = ${s.keepaliveTimeS} s + ${s.keepaliveIntvlS} s × ${s.keepaliveProbes} = ${humanMs(v)}`,
  };
}

function syn(s: TuneSettings): Figure {
  const g = synGiveUp({ synRetries: s.synRetries, linearTimeouts: s.synLinearTimeouts, rtoMaxMs: s.rtoMaxMs });
  const shape =
    s.synLinearTimeouts > 0
      ? `${s.synLinearTimeouts + 1} intervals of 1 s (tcp_syn_linear_timeouts=${s.synLinearTimeouts}), then doubling`
      : "1 s, then doubling (tcp_syn_linear_timeouts=0)";
  return {
    value: g.deathMs,
    formula: `tcp_syn_retries=${s.synRetries} → ${modelTimeoutFormula(s.synRetries, TCP_TIMEOUT_INIT_MS, s.rtoMaxMs)} = ${humanMs(g.limitMs)} from the first SYN; the SYN timer runs ${shape}: SYNs resent at ${g.schedule
      .slice(0, -1)
      .map((x) => x / 1000)
      .join(
        ", ",
      )} s, ETIMEDOUT at the first timer at or past the limit: ${humanMs(g.deathMs)} (${g.retransmissions} retransmissions)`,
  };
}

function finWait2(s: TuneSettings): Figure {
  const l = finWait2Lifetime({ finTimeoutS: s.finTimeoutS, rtoMs: lanRtoMs(s.rtoMinMs) });
  return { value: l.ms, formula: l.why };
}

function portCapacity(s: TuneSettings): Figure {
  const v = timeWaitCapacityPerMinute(s.portLow, s.portHigh);
  return {
    value: v,
    formula: `ip_local_port_range ${s.portLow}-${s.portHigh}: (${s.portHigh} − ${s.portLow} + 1) ports, each held 60 s by TIME_WAIT = ${v} per minute (${Math.floor(v / 60)} per second)`,
  };
}

function twReuse(s: TuneSettings): Figure {
  // tcp_tw_reuse_delay came with 6.14 ("tcp: Add sysctl to configure TIME-WAIT reuse delay"); before, tcp_twsk_unique() compared whole seconds.
  const age =
    s.twReuseDelayMs === undefined
      ? "once the monotonic clock's whole second has moved past that of its last timestamp (this kernel has no tcp_tw_reuse_delay: 0 to 1000 ms by phase)"
      : `once the TIME_WAIT is tcp_tw_reuse_delay=${s.twReuseDelayMs} ms old`;
  const when = `${age} and both ends send TCP timestamps (PAWS then keeps old duplicates out)`;
  const text: Record<number, string> = {
    0: "tcp_tw_reuse=0: connect() never takes over a TIME_WAIT connection; only the port range and the 60 s count",
    1: `tcp_tw_reuse=1: connect() may take over a TIME_WAIT connection to the same destination ${when}`,
    2: `tcp_tw_reuse=2: as 1, but for loopback traffic only: connect() takes over a TIME_WAIT to 127.0.0.0/8 or ::1 ${when}; to other hosts, as 0`,
  };
  return {
    value: s.twReuse,
    formula: text[s.twReuse] ?? `tcp_tw_reuse=${s.twReuse}: not a mode this kernel has (0, 1, 2)`,
  };
}

function twBuckets(s: TuneSettings): Figure {
  const n = s.maxTwBuckets;
  return {
    value: n ?? null,
    formula: `tcp_max_tw_buckets=${n ?? "(scaled to memory)"}: at most that many TIME_WAIT sockets in the network namespace; past it a closing connection skips TIME_WAIT at once (the kernel logs "TCP: time wait bucket table overflow"), so a late segment of the old connection may reach a new one on the same ports`,
  };
}

function acceptQueue(s: TuneSettings, backlog: number): Figure {
  const v = acceptQueueCapacity(backlog, s.somaxconn);
  return {
    value: v,
    formula: `min(backlog ${backlog}, net.core.somaxconn ${s.somaxconn}) + 1 = ${v}: the kernel compares the queue with > (sk_acceptq_is_full), so one more than the limit fits`,
  };
}

function synBacklog(s: TuneSettings, backlog: number): Figure {
  const limit = Math.min(backlog, s.somaxconn);
  const v = s.maxSynBacklog;
  const text: Record<number, string> = {
    0: `tcp_syncookies=0: a listener's half-open (SYN_RECV) requests stop at its backlog min(${backlog}, ${s.somaxconn}) = ${limit}, and SYNs from peers not seen before are dropped once fewer than tcp_max_syn_backlog / 4 = ${v === undefined ? "?" : Math.floor(v / 4)} of tcp_max_syn_backlog=${v ?? "?"} slots are left`,
    1: `tcp_syncookies=1: a listener's half-open (SYN_RECV) requests stop at its backlog min(${backlog}, ${s.somaxconn}) = ${limit}; past it SYNs are answered with SYN cookies, and tcp_max_syn_backlog=${v ?? "(scaled to memory)"} only matters with tcp_syncookies=0`,
    2: `tcp_syncookies=2: every SYN is answered with a cookie; tcp_max_syn_backlog=${v ?? "(scaled to memory)"} does not apply`,
  };
  return { value: v ?? null, formula: text[s.syncookies] ?? `tcp_syncookies=${s.syncookies}: not a mode (0, 1, 2)` };
}

function abortOnOverflow(s: TuneSettings): Figure {
  const text: Record<number, string> = {
    0: `tcp_abort_on_overflow=0: when the accept queue is full, the client's final ACK is dropped: the client believes it is connected, the server resends its SYN-ACK (tcp_synack_retries=${s.synackRetries}) and the connection joins the queue once there is room`,
    1: "tcp_abort_on_overflow=1: when the accept queue is full, the client's final ACK is answered with a RST: its first read or write fails with ECONNRESET",
  };
  return {
    value: s.abortOnOverflow,
    formula: text[s.abortOnOverflow] ?? `tcp_abort_on_overflow=${s.abortOnOverflow}: any non-zero value acts as 1`,
  };
}

/** The figures for settings `s`, each beside the same figure for the defaults `d`. */
export function meaningRows(s: TuneSettings, d: TuneSettings, opts: MeaningOptions): MeaningRow[] {
  const row = (name: string, unit: MeaningRow["unit"], f: (x: TuneSettings) => Figure, note?: string): MeaningRow => {
    const mine = f(s);
    return {
      name,
      value: mine.value,
      unit,
      formula: mine.formula,
      defaultValue: f(d).value,
      ...(note ? { note } : {}),
    };
  };
  const rto = lanRtoMs(s.rtoMinMs);
  return [
    row(
      "dead peer noticed while sending",
      "ms",
      (x) => retransmission(x),
      `one write waits for its ACK; a LAN is assumed (RTT ${LAN_RTT_MS} ms, so RTO = ${s.rtoMinMs} ms floor + RTT rounded up to a ${1000 / TUNE_HZ} ms jiffy = ${rto} ms); a longer RTT starts from a longer RTO. The error is ETIMEDOUT (EHOSTUNREACH where the peer is on the LAN and its ARP entry fails first)`,
    ),
    row(
      `dead peer noticed while sending, with TCP_USER_TIMEOUT=${opts.userTimeoutMs} ms`,
      "ms",
      (x) => retransmission(x, opts.userTimeoutMs),
      "per socket: the application sets it with setsockopt(IPPROTO_TCP, TCP_USER_TIMEOUT, ms); no sysctl sets it, so a file cannot; --user-timeout MS shows another value",
    ),
    row(
      "dead peer noticed while idle, with SO_KEEPALIVE",
      "ms",
      keepalive,
      "counted from the last segment received if SO_KEEPALIVE was on by then, else from the setsockopt that turned it on (it arms the timer: measured, 2 s into an idle connection 1 s + 1 s × 3 ended 4.1 s after the setsockopt); only sockets with SO_KEEPALIVE on (off unless the application sets it) probe at all; TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT override per socket; a socket with unacknowledged data dies by retransmission instead",
    ),
    row(
      "connect() to a host that never answers fails",
      "ms",
      syn,
      "TCP_SYNCNT overrides per socket; a host on the same LAN that does not answer ARP fails sooner, with EHOSTUNREACH, after about 3 s",
    ),
    row(
      "orphaned FIN_WAIT2 (closed by its application) lasts",
      "ms",
      finWait2,
      "TCP_LINGER2 overrides per socket; a FIN_WAIT2 socket its application still holds waits for the peer's FIN forever",
    ),
    row(
      "TIME_WAIT lasts",
      "ms",
      () => ({
        value: TCP_TIMEWAIT_LEN_MS,
        formula: "TCP_TIMEWAIT_LEN = 60 s, compiled into the kernel: no sysctl changes it (tcp_fin_timeout does not)",
      }),
      "the side that closes first holds it",
    ),
    row(
      "new connections per minute to one destination",
      "connections/min",
      portCapacity,
      "one source address to one destination address and port, when the client closes first (it then holds each port in TIME_WAIT); tcp_tw_reuse can lift it",
    ),
    row("tcp_tw_reuse", "mode", twReuse),
    row("TIME_WAIT sockets at most", "sockets", twBuckets),
    row(
      "accept queue (connections waiting for accept())",
      "connections",
      (x) => acceptQueue(x, opts.backlog),
      `for listen(fd, ${opts.backlog}) (--backlog N to change; ${TYPICAL_BACKLOG} is Node.js's and nginx's default); when the queue is full, new SYNs are dropped and clients resend them on their SYN schedule`,
    ),
    row("SYN queue without cookies (tcp_max_syn_backlog)", "requests", (x) => synBacklog(x, opts.backlog)),
    row("tcp_abort_on_overflow", "mode", abortOnOverflow),
  ];
}

/** A value as a person reads it, in its unit. */
export function formatValue(value: number | null, unit: MeaningRow["unit"]): string {
  if (value === null) return "scaled to memory";
  switch (unit) {
    case "ms":
      return humanMs(value);
    case "connections":
      return `${value} connections`;
    case "connections/min":
      return `${value} per minute`;
    default:
      return String(value);
  }
}

/** The rows as text: each figure, its default beside it, then its formula and note. */
export function formatMeaning(rows: readonly MeaningRow[], header: string): string {
  const out = [header, ""];
  for (const r of rows) {
    const value = formatValue(r.value, r.unit);
    const dflt = formatValue(r.defaultValue, r.unit);
    out.push(`${r.name}: ${value}   (defaults: ${dflt})`);
    out.push(`    = ${r.formula}`);
    if (r.note) out.push(`    ${r.note}`);
    out.push("");
  }
  return out.join("\n");
}
