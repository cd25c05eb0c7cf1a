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
/** Linux defaults a fresh network namespace starts from. */
export const DEFAULTS = {
  tcp_retries2: 15,
  tcp_syn_retries: 6,
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
 * Timer slack: jiffies (4 ms at HZ=250) per firing, softirq and scheduling delay, and our own
 * observation (a poll woken on a native thread): 50 ms plus 3% covers them on a 2-core machine
 * running other labs at the same time.
 */
export function tolerance(ms: number, firings = 1): number {
  return Math.round(50 + 0.03 * ms + 4 * firings);
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

/** tcp_model_timeout(): the time retries2 (or retries1, syn_retries) stands for, in ms. */
export function modelTimeoutMs(boundary: number, rtoBaseMs = TCP_RTO_MIN_MS, rtoMaxMs = TCP_RTO_MAX_MS): number {
  const thresh = Math.floor(Math.log2(rtoMaxMs / rtoBaseMs));
  if (boundary <= thresh) return ((2 << boundary) - 1) * rtoBaseMs;
  return ((2 << thresh) - 1) * rtoBaseMs + (boundary - thresh) * rtoMaxMs;
}

/** When each retransmission timer fires, from the first transmission, with exponential backoff capped at RTO max. */
export function retransmissionSchedule(rtoMs: number, count: number, rtoMaxMs = TCP_RTO_MAX_MS): number[] {
  const out: number[] = [];
  let at = 0;
  let rto = rtoMs;
  for (let i = 0; i < count; i++) {
    at += rto;
    out.push(at);
    rto = Math.min(rto * 2, rtoMaxMs);
  }
  return out;
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
}

/**
 * Data sent to a silent peer, as Linux 6.x handles it (net/ipv4/tcp_timer.c, tcp_output.c):
 * - with one segment in flight, a tail loss probe goes first, after min(2·srtt + 200 ms, RTO);
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
  retries2: number;
  userTimeoutMs?: number;
  rtoMaxMs?: number;
  tailLossProbe?: boolean;
}): RetransmissionDeath {
  const rtoMax = opts.rtoMaxMs ?? TCP_RTO_MAX_MS;
  const tlp = opts.tailLossProbe === false ? undefined : Math.min(2 * (opts.srttMs ?? 0) + TCP_RTO_MIN_MS, opts.rtoMs);
  const schedule: number[] = tlp === undefined ? [] : [tlp];
  const start = (tlp ?? 0) + opts.rtoMs;
  schedule.push(start);
  const user = opts.userTimeoutMs && opts.userTimeoutMs > 0 ? opts.userTimeoutMs : undefined;
  const limit = user ?? modelTimeoutMs(opts.retries2, TCP_RTO_MIN_MS, rtoMax);
  let at = start;
  let rto = Math.min(opts.rtoMs * 2, rtoMax);
  for (;;) {
    const next = at + rto;
    if (user !== undefined && next - start >= limit) {
      schedule.push(start + limit);
      break;
    }
    schedule.push(next);
    at = next;
    if (at - start >= limit) break;
    rto = Math.min(rto * 2, rtoMax);
  }
  const deathMs = schedule[schedule.length - 1] as number;
  const how =
    user !== undefined
      ? `TCP_USER_TIMEOUT ${limit} ms (the last timer clamped to it)`
      : `tcp_retries2=${opts.retries2}, i.e. ${limit} ms`;
  return {
    deathMs,
    intervals: schedule.map((t, i) => t - (i === 0 ? 0 : (schedule[i - 1] as number))),
    retransmissions: schedule.length - 1,
    limitMs: limit,
    startMs: start,
    schedule,
    why: `${tlp === undefined ? "" : `tail loss probe at ${Math.round(tlp)} ms, `}RTO ${opts.rtoMs} ms doubling from the first RTO retransmission at ${Math.round(start)} ms; ${how} counted from there; retransmissions at ${schedule
      .slice(0, -1)
      .map((x) => Math.round(x))
      .join(", ")} ms, error at ${Math.round(deathMs)} ms`,
  };
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

/** SYN retransmissions: 1 s, then doubling; connect() fails after syn_retries of them. */
export function synSchedule(synRetries: number): number[] {
  return retransmissionSchedule(TCP_TIMEOUT_INIT_MS, synRetries + 1);
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
