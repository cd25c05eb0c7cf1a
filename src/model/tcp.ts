// What the kernel should do, given its sysctls: the timers of net/ipv4/tcp_timer.c as arithmetic.
// Scenarios take every expected time from here, never from literals.

/** TCP_RTO_MIN: the floor of the retransmission timeout, and the base of the retries2 model. */
export const TCP_RTO_MIN_MS = 200;
/** TCP_RTO_MAX, unless net.ipv4.tcp_rto_max_ms (Linux 6.15+) says otherwise. */
export const TCP_RTO_MAX_MS = 120_000;
/** TCP_TIMEOUT_INIT: the first SYN retransmission timeout. */
export const TCP_TIMEOUT_INIT_MS = 1000;
/** TCP_TIMEWAIT_LEN: how long TIME_WAIT lasts, fixed at compile time. */
export const TCP_TIMEWAIT_LEN_MS = 60_000;
/** TCP_TIMEOUT_MIN: what a tail loss probe adds to 2·srtt when more than one segment is in flight. */
export const TCP_TIMEOUT_MIN_MS = 2;
/** TCP_DELACK_MIN (HZ/25): the shortest delayed-ACK timer. */
export const TCP_DELACK_MIN_MS = 40;
/** TCP_DELACK_MAX (HZ/5): the longest a receiver holds back an ACK (and so a window update). */
export const TCP_DELACK_MAX_MS = 200;
/** Linux defaults a fresh network namespace starts from. */
export const DEFAULTS = {
  tcp_retries2: 15,
  tcp_syn_retries: 6,
  tcp_syn_linear_timeouts: 4,
  tcp_keepalive_time: 7200,
  tcp_keepalive_intvl: 75,
  tcp_keepalive_probes: 9,
  tcp_fin_timeout: 60,
  somaxconn: 4096,
} as const;

/** A timing expectation: a value and how far from it the kernel may land, with the reason. */
export interface Expectation {
  readonly ms: number;
  readonly toleranceMs: number;
  readonly why: string;
}

/**
 * Slack that is not the timer wheel's (that one is in timerChainExpectation): softirq and scheduling
 * delay on each firing, and our own observation of the result (a poll woken on a native thread). On
 * a 2-core machine running other labs, or with the other core kept busy (npm run stress), that is
 * up to about 10 ms per firing plus 5% of the span, on top of a 50 ms floor.
 */
export function tolerance(ms: number, firings = 1): number {
  return Math.round(50 + 0.05 * ms + 10 * firings);
}

/** CONFIG_HZ of the kernels these labs run on (Debian's): a jiffy is 4 ms. */
export const CONFIG_HZ = 250;

// kernel/time/timer.c: LVL_CLK_SHIFT and LVL_BITS.
const LVL_CLK_SHIFT = 3;
const LVL_SIZE = 1 << 6;

/**
 * How late a timer_list armed `delayMs` ahead may fire. The wheel files a timer in the level whose
 * range holds the delay and rounds its expiry up to that level's granularity (calc_index: "a timer
 * does not fire early"), so a 3 s timer at HZ=250 (750 jiffies, level 2) fires up to 64 jiffies
 * (256 ms) late, a 1 s one (level 1) up to 32 ms. TCP's retransmit, keepalive and TIME_WAIT timers
 * are all timer_lists.
 */
export function wheelGranularityMs(delayMs: number, hz = CONFIG_HZ): number {
  const jiffies = Math.ceil((delayMs * hz) / 1000);
  let level = 0;
  // LVL_START(n) = (LVL_SIZE - 1) << ((n - 1) * LVL_CLK_SHIFT): the first delay filed in level n.
  while (jiffies >= (LVL_SIZE - 1) << (level * LVL_CLK_SHIFT)) level++;
  return ((1 << (level * LVL_CLK_SHIFT)) * 1000) / hz;
}

/**
 * The expectation for a chain of timers, each armed when the one before fired: the nominal sum,
 * later by half of each timer's wheel slack on average, with `tolerance()` widened by that half.
 */
export function timerChainExpectation(delaysMs: readonly number[], why: string, hz = CONFIG_HZ): Expectation {
  const nominal = delaysMs.reduce((a, b) => a + b, 0);
  const halfSlack = delaysMs.reduce((a, d) => a + wheelGranularityMs(d, hz) / 2, 0);
  return {
    ms: nominal + halfSlack,
    toleranceMs: tolerance(nominal, delaysMs.length) + Math.round(halfSlack),
    why: `${why}; timer wheel rounding adds 0 to ${humanMs(2 * halfSlack)}`,
  };
}

/** The delays of a timer chain, each armed when the one before fired, up to its firing at `atMs` (one of `scheduleMs`). */
export function chainDelays(scheduleMs: readonly number[], atMs: number): number[] {
  const upTo = scheduleMs.filter((t) => t <= atMs);
  return upTo.map((t, i) => t - (i === 0 ? 0 : (upTo[i - 1] as number)));
}

/**
 * tcp_schedule_loss_probe(): the tail loss probe fires 2·srtt after the last transmission, plus
 * the minimum RTO when one segment is in flight (its ACK may be delayed), else TCP_TIMEOUT_MIN,
 * never later than the RTO.
 */
export function lossProbeMs(opts: { srttMs: number; rtoMs: number; packetsOut: number }): number {
  const extra = opts.packetsOut === 1 ? TCP_RTO_MIN_MS : TCP_TIMEOUT_MIN_MS;
  return Math.min(2 * opts.srttMs + extra, opts.rtoMs);
}

/** tcp_model_timeout(): the time retries2 (or retries1, syn_retries) stands for, in ms. */
export function modelTimeoutMs(boundary: number, rtoBaseMs = TCP_RTO_MIN_MS, rtoMaxMs = TCP_RTO_MAX_MS): number {
  const thresh = Math.floor(Math.log2(rtoMaxMs / rtoBaseMs));
  if (boundary <= thresh) return ((2 << boundary) - 1) * rtoBaseMs;
  return ((2 << thresh) - 1) * rtoBaseMs + (boundary - thresh) * rtoMaxMs;
}

/** How a connection sending into silence dies. */
export interface RetransmissionDeath {
  /** ms from the first transmission of the unacknowledged data to the error. */
  readonly deathMs: number;
  /** Retransmissions made before the error (the tail loss probe included). */
  readonly retransmissions: number;
  /** The elapsed time the kernel compares against (retries2 model, or the user timeout). */
  readonly limitMs: number;
  /** When the clock the limit runs on starts: the first RTO retransmission. */
  readonly startMs: number;
  /** Every retransmission and the fatal timer, in ms from the first transmission. */
  readonly schedule: readonly number[];
  /** The timer durations that chain to the error: what the timer wheel rounds. */
  readonly intervals: readonly number[];
  readonly why: string;
  /**
   * The error one firing sooner, where the timer wheel may decide it: a firing whose nominal time
   * since the start falls short of the limit by less than the rounding the timers since the start
   * may add (each fires up to its level's granularity late, never early) may find the limit reached.
   */
  readonly early?: {
    readonly deathMs: number;
    readonly retransmissions: number;
    readonly intervals: readonly number[];
  };
}

/**
 * Data sent to a silent peer, as Linux 6.x handles it (net/ipv4/tcp_timer.c, tcp_output.c):
 * - a tail loss probe goes first, after min(2·srtt + 200 ms, RTO) for one segment in flight
 *   (2·srtt + 2 ms for more);
 * - the RTO timer is then armed from the probe, and each firing retransmits and doubles the RTO;
 * - retrans_stamp is taken at the first RTO retransmission, and each firing gives up once the time
 *   since then reaches the limit: tcp_retries2 as time (200 ms base, doubling) or TCP_USER_TIMEOUT,
 *   which also clamps the timer to fire exactly at the limit.
 * So the limit is overshot up to a whole backoff step: retries2=3 means 3 s, yet the error comes
 * at the first firing 3 s or more after the first RTO retransmission.
 */
export function retransmissionDeath(opts: {
  rtoMs: number;
  srttMs?: number;
  /** Segments in flight when the peer fell silent; the probe waits 2·srtt + 200 ms for one, 2·srtt + 2 ms for more. */
  segmentsInFlight?: number;
  retries2: number;
  userTimeoutMs?: number;
  rtoMaxMs?: number;
  tailLossProbe?: boolean;
}): RetransmissionDeath {
  const rtoMax = opts.rtoMaxMs ?? TCP_RTO_MAX_MS;
  const tlp =
    opts.tailLossProbe === false
      ? undefined
      : lossProbeMs({ srttMs: opts.srttMs ?? 0, rtoMs: opts.rtoMs, packetsOut: opts.segmentsInFlight ?? 1 });
  const schedule: number[] = tlp === undefined ? [] : [tlp];
  const start = (tlp ?? 0) + opts.rtoMs;
  schedule.push(start);
  const user = opts.userTimeoutMs && opts.userTimeoutMs > 0 ? opts.userTimeoutMs : undefined;
  const limit = user ?? modelTimeoutMs(opts.retries2, TCP_RTO_MIN_MS, rtoMax);
  let at = start;
  let rto = Math.min(opts.rtoMs * 2, rtoMax);
  let slack = 0;
  let early: RetransmissionDeath["early"];
  for (;;) {
    const next = at + rto;
    if (user !== undefined && next - start >= limit) {
      schedule.push(start + limit);
      break;
    }
    schedule.push(next);
    at = next;
    slack += wheelGranularityMs(rto);
    if (at - start >= limit) break;
    if (early === undefined && user === undefined && at - start + slack >= limit)
      early = { deathMs: at, retransmissions: schedule.length - 1, intervals: chainDelays(schedule, at) };
    rto = Math.min(rto * 2, rtoMax);
  }
  const deathMs = schedule[schedule.length - 1] as number;
  const how =
    user !== undefined
      ? `TCP_USER_TIMEOUT ${limit} ms (the last timer clamped to it)`
      : `tcp_retries2=${opts.retries2}, i.e. ${limit} ms`;
  return {
    deathMs,
    intervals: chainDelays(schedule, deathMs),
    retransmissions: schedule.length - 1,
    ...(early ? { early } : {}),
    limitMs: limit,
    startMs: start,
    schedule,
    why: `${tlp === undefined ? "" : `tail loss probe at ${Math.round(tlp)} ms, `}RTO ${opts.rtoMs} ms doubling from the first RTO retransmission at ${Math.round(start)} ms; ${how} counted from there; retransmissions at ${schedule
      .slice(0, -1)
      .map((x) => Math.round(x))
      .join(", ")} ms, error at ${Math.round(deathMs)} ms`,
  };
}

/**
 * The branch of a retransmission death the kernel took, told by how many retransmissions it made:
 * the one-firing-sooner error where the timer wheel's rounding allows it, else the nominal one.
 */
export function deathTaken(
  d: RetransmissionDeath,
  retransmissions: number,
): { deathMs: number; retransmissions: number; intervals: readonly number[]; why: string } {
  if (d.early && retransmissions === d.early.retransmissions)
    return {
      ...d.early,
      why: `${d.why}; the timer wheel's rounding (up to a granularity per timer, never early) took the firing at ${Math.round(d.early.deathMs)} ms past the limit`,
    };
  return d;
}

/** Idle connection to a dead peer with keepalive: probes at idle, idle+intvl, ...; the error after cnt unanswered. */
export function keepaliveDeathMs(idleS: number, intvlS: number, cnt: number): number {
  return (idleS + intvlS * cnt) * 1000;
}

/** An orphaned FIN_WAIT2 (closed by its application) lasts TCP_LINGER2 if set, else tcp_fin_timeout. */
export function finWait2LifetimeMs(finTimeoutS: number, linger2S?: number): number {
  return (linger2S && linger2S > 0 ? linger2S : finTimeoutS) * 1000;
}

/** The accept queue holds min(backlog, somaxconn) + 1 connections: the kernel tests `>` against the limit. */
export function acceptQueueCapacity(backlog: number, somaxconn: number): number {
  return Math.min(Math.max(backlog, 0), somaxconn) + 1;
}

/** How connect() to a host that never answers ends: the same shape as a retransmission death, counted from the first SYN. */
export type SynGiveUp = Omit<RetransmissionDeath, "startMs">;

/**
 * connect() to a silent address, as Linux 6.18 runs it (measured in labs; tcp_retransmit_timer, tcp_write_timeout):
 * - the SYN timer starts at TCP_TIMEOUT_INIT (1 s); with tcp_syn_linear_timeouts=L the first L
 *   retransmissions keep it at 1 s, then it doubles (1, 1, 1, 1, 1, 2, 4... s for L=4), capped at RTO max;
 * - each firing gives up once the time since the first SYN reaches tcp_model_timeout(syn_retries)
 *   with a 1 s base: (2^(n+1) - 1) s below the cap, so syn_retries=6 means 127 s.
 * So syn_retries is a time, not a count: with L=4 and syn_retries=2 six SYNs go out in 7 s, and the
 * default gives up at 131 s (the first firing past 127 s). Kernels before 6.5 had no linear phase.
 */
export function synGiveUp(opts: { synRetries: number; linearTimeouts?: number; rtoMaxMs?: number }): SynGiveUp {
  const rtoMax = opts.rtoMaxMs ?? TCP_RTO_MAX_MS;
  const linear = Math.max(0, opts.linearTimeouts ?? DEFAULTS.tcp_syn_linear_timeouts);
  const limit = modelTimeoutMs(opts.synRetries, TCP_TIMEOUT_INIT_MS, rtoMax);
  const schedule: number[] = [];
  let at = 0;
  let rto = TCP_TIMEOUT_INIT_MS;
  for (let sent = 0; ; sent++) {
    at += rto;
    schedule.push(at);
    if (at >= limit) break;
    // After retransmission number sent + 1: linear while within L, doubling after.
    if (sent + 1 > linear) rto = Math.min(rto * 2, rtoMax);
  }
  const deathMs = schedule[schedule.length - 1] as number;
  const shape =
    linear > 0
      ? `${linear + 1} intervals of 1 s (tcp_syn_linear_timeouts=${linear}), then doubling`
      : "1 s, then doubling";
  return {
    deathMs,
    retransmissions: schedule.length - 1,
    limitMs: limit,
    schedule,
    intervals: chainDelays(schedule, deathMs),
    why: `tcp_syn_retries=${opts.synRetries}, i.e. ${limit / 1000} s from the first SYN; SYN timer ${shape}; SYNs resent at ${schedule
      .slice(0, -1)
      .map((x) => x / 1000)
      .join(", ")} s, ETIMEDOUT at ${deathMs / 1000} s`,
  };
}

/** Connections per minute one client address can open to one server port before TIME_WAIT exhausts the port range. */
export function timeWaitCapacityPerMinute(portLow: number, portHigh: number): number {
  return Math.floor(((portHigh - portLow + 1) * 60_000) / TCP_TIMEWAIT_LEN_MS);
}

/** Human form of a duration: "924.6 s (15.4 min)". */
export function humanMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  if (s < 7200) return `${s.toFixed(0)} s (${(s / 60).toFixed(1)} min)`;
  return `${s.toFixed(0)} s (${(s / 3600).toFixed(2)} h)`;
}
