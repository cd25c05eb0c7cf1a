// What the kernel does with its queues, as arithmetic: the accept queue and the handshake timers
// (net/ipv4/tcp_input.c, tcp_minisocks.c, inet_connection_sock.c, tcp_timer.c), the send buffer
// against POLLOUT (net/ipv4/tcp.c, include/net/sock.h), the delayed ACK a queued child gives a
// FIN, and TIME_WAIT against the ephemeral port range (inet_hashtables.c, tcp_ipv4.c).
import {
  CONFIG_HZ,
  DEFAULTS,
  synGiveUp,
  TCP_DELACK_MAX_MS,
  TCP_DELACK_MIN_MS,
  TCP_RTO_MAX_MS,
  TCP_TIMEOUT_INIT_MS,
} from "./tcp.js";

/** Defaults of a fresh network namespace (Linux 6.18) for the sysctls this group tunes beyond DEFAULTS. */
export const QUEUE_DEFAULTS = {
  tcp_synack_retries: 5,
  tcp_abort_on_overflow: 0,
  tcp_tw_reuse: 2,
  tcp_tw_reuse_delay: 1000,
  ip_local_port_range: [32768, 60999],
  tcp_notsent_lowat: 4294967295,
} as const;

/** One jiffy: the granularity of every TCP timer. */
export const JIFFY_MS = 1000 / CONFIG_HZ;

// ---------------------------------------------------------------- handshake and accept queue

/** When a client's SYNs are retransmitted, and when connect() gives up. */
export interface SynRetransmissions {
  /** Each retransmission, in ms from the first SYN. */
  readonly retransmitAtMs: readonly number[];
  /** When connect() fails with ETIMEDOUT. */
  readonly failAtMs: number;
  readonly why: string;
}

/**
 * A connecting socket's SYN timer (tcp_retransmit_timer, tcp_write_timeout), Linux 6.5+: the RTO
 * starts at 1 s and stays there while total_rto <= tcp_syn_linear_timeouts, then doubles (capped at
 * TCP_RTO_MAX). connect() gives up at the first firing at least tcp_model_timeout(syn_retries, 1 s)
 * = (2^(syn_retries+1) - 1) s after the first SYN (retransmits_timed_out). With the defaults (6 and 4):
 * retransmissions at 1, 2, 3, 4, 5, 7, 11, 19, 35, 67 s, ETIMEDOUT at 131 s (the limit being 127 s).
 */
export function synRetransmissions(
  synRetries: number = DEFAULTS.tcp_syn_retries,
  linearTimeouts: number = DEFAULTS.tcp_syn_linear_timeouts,
  rtoMaxMs = TCP_RTO_MAX_MS,
): SynRetransmissions {
  const g = synGiveUp({ synRetries, linearTimeouts, rtoMaxMs });
  return { retransmitAtMs: g.schedule.slice(0, -1), failAtMs: g.deathMs, why: g.why };
}

/** When a listener retransmits its SYN-ACK for a request still waiting for the final ACK, and when it drops it. */
export interface SynAckRetransmissions {
  /** Each SYN-ACK retransmission, in ms from the first SYN-ACK. */
  readonly retransmitAtMs: readonly number[];
  /** When the request is dropped (a later ACK from the client meets no request). */
  readonly dropAtMs: number;
  readonly why: string;
}

/**
 * The request timer (reqsk_timer_handler): 1 s, doubling, tcp_synack_retries times; the request is
 * dropped when the timer fires once more. It keeps running for a request whose final ACK met a full
 * accept queue (it is marked acked and its SYN-ACK resent, which makes the client ACK again).
 * Defaults: 1, 3, 7, 15, 31 s, dropped at 63 s.
 */
export function synAckRetransmissions(
  synackRetries: number = QUEUE_DEFAULTS.tcp_synack_retries,
): SynAckRetransmissions {
  const out: number[] = [];
  let at = 0;
  let rto = TCP_TIMEOUT_INIT_MS;
  for (let i = 0; i <= synackRetries; i++) {
    at += rto;
    out.push(at);
    rto = Math.min(rto * 2, TCP_RTO_MAX_MS);
  }
  const dropAtMs = out.pop() as number;
  return {
    retransmitAtMs: out,
    dropAtMs,
    why: `SYN-ACK retransmissions at ${out.map((x) => x / 1000).join(", ") || "none"} s, request dropped at ${dropAtMs / 1000} s (tcp_synack_retries=${synackRetries})`,
  };
}

/**
 * Freeing a slot wakes nobody: a connection the full queue turned away completes at its own next
 * retransmission (the client's SYN, or the listener's SYN-ACK) after the slot was freed.
 */
export function nextAttemptAfter(scheduleMs: readonly number[], freedAtMs: number): number | undefined {
  return scheduleMs.find((t) => t > freedAtMs);
}

/**
 * The attempts that may be the first after a moment known only to lie between fromMs and toMs, when
 * each attempt may come up to lateMs(t) after its nominal time t (timers never fire early): every
 * nominal attempt that may land after fromMs, up to the first that is after toMs for certain. The
 * kernel took one of them; which one, the connection's own time says.
 */
export function nextAttemptCandidates(
  scheduleMs: readonly number[],
  fromMs: number,
  toMs: number,
  lateMs: (t: number) => number,
): number[] {
  const out: number[] = [];
  for (const t of scheduleMs) {
    if (t + lateMs(t) <= fromMs) continue;
    out.push(t);
    if (t >= toMs) break;
  }
  return out;
}

/** Of the candidates, the one nearest what was observed. */
export function nearest(candidates: readonly number[], observedMs: number): number | undefined {
  return candidates.reduce<number | undefined>(
    (best, t) => (best === undefined || Math.abs(t - observedMs) < Math.abs(best - observedMs) ? t : best),
    undefined,
  );
}

/**
 * What a full accept queue does to a connection (tcp_conn_request, tcp_check_req):
 * - a SYN is dropped whatever tcp_abort_on_overflow says: the client stays SYN_SENT and retransmits;
 * - a final ACK (or data) for a request made while there was room is ignored with 0 (the request
 *   is marked acked and the SYN-ACK timer goes on), answered with RST with 1.
 */
export function overflowOutcome(segment: "SYN" | "final ACK", abortOnOverflow: number): "dropped" | "ignored" | "RST" {
  if (segment === "SYN") return "dropped";
  return abortOnOverflow ? "RST" : "ignored";
}

// ---------------------------------------------------------------- a FIN to a queued child

/**
 * A child still in the accept queue ACKs data at once (quick-ack mode) but a FIN late: entering
 * CLOSE_WAIT puts it in ping-pong mode, so the FIN waits for the delayed-ACK timer, between
 * TCP_DELACK_MIN and TCP_DELACK_MAX (a jiffy early at most). A close() with SO_LINGER waits for that
 * ACK, or for the linger time, whichever comes first: it blocks even on an O_NONBLOCK socket
 * (inet_release passes sk_lingertime to tcp_close whatever the file flags) and returns 0 either way.
 */
export function lingerCloseBlock(
  lingerS: number,
  peerAcks: boolean,
  delackMaxMs: number = TCP_DELACK_MAX_MS,
): { minMs: number; maxMs: number; why: string } {
  const linger = lingerS * 1000;
  if (!peerAcks) return { minMs: linger, maxMs: linger, why: `no ACK comes: the linger time, ${linger} ms` };
  return {
    minMs: Math.min(linger, TCP_DELACK_MIN_MS - JIFFY_MS),
    maxMs: Math.min(linger, delackMaxMs),
    why: `the peer kernel's delayed ACK of the FIN (${TCP_DELACK_MIN_MS} to ${delackMaxMs} ms)`,
  };
}

/**
 * The longest a delayed ACK waits (tcp_send_delayed_ack): TCP_DELACK_MAX (200 ms) before 6.7; since
 * "tcp: derive delack_max from rto_min" (6.7) also no longer than the minimum RTO less one jiffy,
 * 196 ms with the default 200 ms at HZ=250.
 */
export function delackMaxMs(fromRtoMin: boolean, rtoMinMs = 200): number {
  if (!fromRtoMin) return TCP_DELACK_MAX_MS;
  const jiffies = Math.max(Math.ceil(rtoMinMs / JIFFY_MS), 2) - 1;
  return Math.min(TCP_DELACK_MAX_MS, jiffies * JIFFY_MS);
}

// ---------------------------------------------------------------- send buffer and POLLOUT

/**
 * MAX_TCP_HEADER = L1_CACHE_ALIGN(128 + MAX_HEADER), the headroom every TCP skb reserves; MAX_HEADER
 * depends on the build (include/linux/netdevice.h: 32 bytes of link header, 128 with WLAN mesh, +48
 * with any IP tunnel). The lowest and highest of the x86-64 builds these labs run: 192 (the host's
 * 6.18: no WLAN, no tunnels) and 320 (Debian's 6.1 and 6.12). Only the size goal uses it, and only
 * through the GSO bound; see tcpSizeGoal.
 */
export const MAX_TCP_HEADER_RANGE = [192, 320] as const;
/**
 * What one skb of the write queue costs in sk_wmem_queued besides its payload on the host's 6.18:
 * SKB_TRUESIZE of the head (its size after kmalloc rounding less skb_shared_info) plus
 * sizeof(sk_buff), aligned; one byte queued on an empty queue makes sk_wmem_queued 833. The head's
 * size follows MAX_TCP_HEADER and the allocator (the small-head cache came with 6.3), so other builds
 * differ (Debian's 6.1 and 6.12 derive as 1280 and 960): a scenario measures it on the kernel it runs.
 */
export const SKB_OVERHEAD_BYTES = 832;
/** GSO_LEGACY_MAX_SIZE: a veth's gso_max_size (and gso_ipv4_max_size) unless set otherwise. */
export const GSO_MAX_SIZE = 65536;

/**
 * tcp_xmit_size_goal(): how much payload sendmsg puts in one skb. The device's GSO limit less
 * MAX_TCP_HEADER + 1, cut to half the largest window the peer ever offered (tcp_bound_to_half_wnd),
 * rounded down to whole segments, and never less than one.
 */
export function tcpSizeGoal(opts: {
  mss: number;
  maxWindow: number;
  gsoMaxSize?: number;
  maxTcpHeader: number;
}): number {
  let bound = (opts.gsoMaxSize ?? GSO_MAX_SIZE) - opts.maxTcpHeader - 1;
  const cutoff = opts.maxWindow > 536 ? opts.maxWindow >> 1 : opts.maxWindow;
  if (cutoff && bound > cutoff) bound = cutoff;
  return Math.max(Math.floor(bound / opts.mss) * opts.mss, opts.mss);
}

/**
 * tcp_poll's POLLOUT (__sk_stream_is_writeable(sk, 1)): free space at least half of what is queued,
 * i.e. sk_wmem_queued <= 2/3 of sk_sndbuf (sk_stream_wspace >= sk_stream_min_wspace), the queue not
 * full, and with TCP_NOTSENT_LOWAT the unsent bytes *doubled* below the mark
 * (tcp_stream_memory_free with wake=1 shifts them left once).
 */
export function pollOutReady(s: { sndbuf: number; wmemQueued: number; notSent: number; lowat?: number }): boolean {
  const lowat = s.lowat ?? QUEUE_DEFAULTS.tcp_notsent_lowat;
  return s.sndbuf - s.wmemQueued >= s.wmemQueued >> 1 && s.wmemQueued < s.sndbuf && s.notSent * 2 < lowat;
}

/**
 * sendmsg's own test (sk_stream_memory_free, wake=0), made only when a new skb is needed: the
 * queue below sk_sndbuf and the unsent bytes below the mark. A tail skb still short of the size
 * goal is filled regardless, so the queue overshoots by up to one skb.
 */
export function sendMayGrow(s: { sndbuf: number; wmemQueued: number; notSent: number; lowat?: number }): boolean {
  const lowat = s.lowat ?? QUEUE_DEFAULTS.tcp_notsent_lowat;
  return s.wmemQueued < s.sndbuf && s.notSent < lowat;
}

/** Where a program filling a send buffer stops, and how the queue looks then. */
export interface SendBufferFill {
  /** What each send() returned; "EAGAIN" for the one that failed. */
  readonly sends: ReadonlyArray<number | "EAGAIN">;
  /** Bytes the kernel accepted in all. */
  readonly bytes: number;
  /** sk_wmem_queued at the stop (ss -m: w). */
  readonly wmemQueued: number;
  readonly skbs: number;
  /** Why the program stopped. */
  readonly stop: "EAGAIN" | "no POLLOUT";
  readonly why: string;
}

/**
 * The seed's programs against a peer whose window is already closed, so that nothing leaves the
 * queue: "send until EAGAIN" (1A) or "send while poll(POLLOUT, 0) says so" (1B), with chunks of
 * `chunk` bytes. Each skb fills to the size goal before the next is started; starting one needs
 * sendMayGrow(); a send that cannot start one returns what it copied, or EAGAIN if nothing.
 */
export function fillSendBuffer(opts: {
  program: "until-EAGAIN" | "while-POLLOUT";
  sndbuf: number;
  chunk: number;
  sizeGoal: number;
  /** sk_wmem_queued's cost of one skb besides its payload, as measured on the kernel (SKB_OVERHEAD_BYTES on the host). */
  skbOverhead: number;
  lowat?: number;
  maxSends?: number;
}): SendBufferFill {
  const lowat = opts.lowat;
  let bytes = 0;
  let skbs = 0;
  let tail = 0;
  let wmem = 0;
  const sends: Array<number | "EAGAIN"> = [];
  const state = () => ({ sndbuf: opts.sndbuf, wmemQueued: wmem, notSent: bytes, ...(lowat ? { lowat } : {}) });
  for (let i = 0; i < (opts.maxSends ?? 10_000); i++) {
    if (opts.program === "while-POLLOUT" && !pollOutReady(state()))
      return done("no POLLOUT", "poll(POLLOUT, 0) said not writable");
    let copied = 0;
    while (copied < opts.chunk) {
      if (skbs === 0 || tail >= opts.sizeGoal) {
        if (!sendMayGrow(state())) break;
        skbs++;
        tail = 0;
        wmem += opts.skbOverhead;
      }
      const n = Math.min(opts.sizeGoal - tail, opts.chunk - copied);
      tail += n;
      copied += n;
      bytes += n;
      wmem += n;
    }
    if (copied === 0) {
      sends.push("EAGAIN");
      return done("EAGAIN", "send() failed with EAGAIN");
    }
    sends.push(copied);
  }
  throw new Error("fillSendBuffer: the program never stopped");
  function done(stop: SendBufferFill["stop"], how: string): SendBufferFill {
    return {
      sends,
      bytes,
      wmemQueued: wmem,
      skbs,
      stop,
      why: `${how} with ${bytes} bytes in ${skbs} skbs of up to ${opts.sizeGoal} (sk_wmem_queued ${wmem} of sk_sndbuf ${opts.sndbuf}${lowat ? `, TCP_NOTSENT_LOWAT ${lowat}` : ""})`,
    };
  }
}

// ---------------------------------------------------------------- TIME_WAIT and ephemeral ports

/** How many ports ip_local_port_range "low high" holds. */
export function portRangeSize(low: number, high: number): number {
  return high - low + 1;
}

/**
 * __inet_hash_connect scans the ports of the range's low parity first, and only when they are all
 * taken the others. A client whose ports never look taken (2A: the TIME_WAIT is on the server's side)
 * stays within that half.
 */
export function firstPassPorts(low: number, high: number): { count: number; parity: 0 | 1 } {
  const size = portRangeSize(low, high);
  return { count: Math.ceil(size / 2), parity: (low % 2) as 0 | 1 };
}

/**
 * Whether connect() may take over a TIME_WAIT of its own 4-tuple (tcp_twsk_unique): tcp_tw_reuse=1
 * always, 2 only when an address is loopback (127/8 or ::1, or the socket is bound to lo: a host's
 * own address reached over lo does not count), and only once the TIME_WAIT is older than
 * tcp_tw_reuse_delay (ms, "within [N, N+1]"; Linux 6.14+, see twReuseWindow for kernels before).
 */
export function twReuse(reuse: number, loopbackAddress: boolean, delayMs: number = QUEUE_DEFAULTS.tcp_tw_reuse_delay) {
  const applies = reuse === 1 || (reuse === 2 && loopbackAddress);
  return { applies, afterMs: applies ? delayMs : Number.POSITIVE_INFINITY };
}

/**
 * The seed's 2B loop on one client address and one server port ends when every port of the range
 * holds a TIME_WAIT that cannot be taken over yet: with reuse off, after `ports` connections; with
 * reuse on, only if the loop used the whole range faster than tcp_tw_reuse_delay, and then the
 * rate it can sustain for ever is ports per delay.
 */
export function twExhaustion(opts: {
  ports: number;
  reuse: boolean;
  delayMs?: number;
  rangeUsedInMs: number;
  maxTwBuckets?: number;
}): { ends: boolean; afterConnections?: number; sustainablePerSecond: number } {
  const delay = opts.delayMs ?? QUEUE_DEFAULTS.tcp_tw_reuse_delay;
  const sustainable = opts.reuse ? (opts.ports * 1000) / delay : 0;
  // Beyond tcp_max_tw_buckets the closing socket is destroyed instead ("time wait bucket table overflow").
  if (opts.maxTwBuckets !== undefined && opts.maxTwBuckets < opts.ports)
    return { ends: false, sustainablePerSecond: Number.POSITIVE_INFINITY };
  if (opts.reuse && opts.rangeUsedInMs >= delay) return { ends: false, sustainablePerSecond: sustainable };
  return { ends: true, afterConnections: opts.ports, sustainablePerSecond: sustainable };
}

/** When connect() may first take over one TIME_WAIT: a window on CLOCK_MONOTONIC, in ms. */
export interface TwReuseWindow {
  /** No take-over before this. */
  readonly earliestMs: number;
  /** Taken over from this on. Both are Infinity where tcp_tw_reuse does not apply. */
  readonly latestMs: number;
  readonly why: string;
}

/** The end of the whole CLOCK_MONOTONIC second `ms` lies in: the first moment ktime_get_seconds() exceeds it. */
export function nextWholeSecondMs(ms: number): number {
  return (Math.floor(ms / 1000) + 1) * 1000;
}

/**
 * When tcp_twsk_unique() lets connect() take over a TIME_WAIT that was entered, its TS.Recent
 * stamped by the peer's FIN, between fromMs and toMs (CLOCK_MONOTONIC, ms):
 * - with tcp_tw_reuse_delay (Linux 6.14+, "tcp: Measure TIME-WAIT reuse delay with millisecond
 *   precision", "tcp: Add sysctl to configure TIME-WAIT reuse delay"): once tcp_clock_ms() is past
 *   tw_entry_stamp + delay, so strictly later than delay ms after the entry;
 * - before (delayMs undefined): once ktime_get_seconds(), the 1 Hz monotonic clock, is past
 *   tw_ts_recent_stamp, the second of the FIN. That is the next whole second: 0 to 1000 ms after the
 *   FIN by phase. ktime_get_seconds() is advanced by the tick, so both readings may lag the clock by
 *   up to a jiffy: a FIN within a jiffy of a second's start may carry the second before.
 */
export function twReuseWindow(opts: {
  reuse: number;
  loopbackAddress: boolean;
  delayMs: number | undefined;
  fromMs: number;
  toMs: number;
  jiffyMs?: number;
}): TwReuseWindow {
  if (!twReuse(opts.reuse, opts.loopbackAddress).applies)
    return {
      earliestMs: Number.POSITIVE_INFINITY,
      latestMs: Number.POSITIVE_INFINITY,
      why: `tcp_tw_reuse=${opts.reuse}${opts.reuse === 2 ? " and no loopback address" : ""}: never taken over`,
    };
  if (opts.delayMs !== undefined)
    return {
      earliestMs: opts.fromMs + opts.delayMs,
      latestMs: opts.toMs + opts.delayMs + 1,
      why: `tcp_tw_reuse_delay=${opts.delayMs} ms after it entered TIME_WAIT`,
    };
  const jiffy = opts.jiffyMs ?? JIFFY_MS;
  return {
    earliestMs: nextWholeSecondMs(opts.fromMs - jiffy),
    latestMs: nextWholeSecondMs(opts.toMs) + jiffy,
    why: "the next whole second of the monotonic clock after its FIN (no tcp_tw_reuse_delay: ktime_get_seconds() past tw_ts_recent_stamp)",
  };
}

/**
 * A connect() made with every port of the range in TIME_WAIT toward the destination, the oldest of
 * them reusable in `oldest`: the kernel looked between startMs and endMs. It succeeds (taking over a
 * TIME_WAIT) once the oldest may be taken over, fails with EADDRNOTAVAIL before; "either" where the
 * moment falls inside the call.
 */
export function connectWithRangeInTimeWait(
  oldest: TwReuseWindow,
  call: { startMs: number; endMs: number },
): "succeeds" | "fails" | "either" {
  if (oldest.latestMs <= call.startMs) return "succeeds";
  if (oldest.earliestMs > call.endMs) return "fails";
  return "either";
}
