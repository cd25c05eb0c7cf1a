// Timers beyond src/model/tcp.ts, as arithmetic: the orphaned FIN_WAIT2 lifetime as
// tcp_rcv_state_process and tcp_keepalive_timer arm it, keepalive with TCP_USER_TIMEOUT, and when
// queued data is delivered after an outage.
import { chainDelays, finWait2LifetimeMs, humanMs, TCP_TIMEWAIT_LEN_MS } from "./tcp.js";

/** An orphaned FIN_WAIT2, timed from the ACK of its FIN. */
export interface FinWait2Lifetime {
  /** From the ACK of the FIN to the socket's removal. */
  readonly ms: number;
  /** The timers that run one after the other: a keepalive timer, then the FIN_WAIT2 mini-socket's. */
  readonly timersMs: readonly number[];
  readonly why: string;
}

/**
 * tcp_fin_time(): TCP_LINGER2 if set, else tcp_fin_timeout (src/model/tcp.ts), raised to at least
 * 3.5 RTO. When the ACK of the FIN reaches an orphan (tcp_rcv_state_process, FIN_WAIT1), a lifetime
 * up to TCP_TIMEWAIT_LEN becomes a FIN_WAIT2 TIME_WAIT mini-socket that lasts it; a longer one arms
 * the keepalive timer for lifetime - 60 s, and tcp_keepalive_timer then makes the mini-socket with
 * lifetime - 60 s again: 61 s lasts 2 s, 90 s lasts 60 s, only 120 s (the maximum) lasts what it says.
 */
export function finWait2Lifetime(opts: { finTimeoutS: number; linger2S?: number; rtoMs: number }): FinWait2Lifetime {
  const asked = finWait2LifetimeMs(opts.finTimeoutS, opts.linger2S);
  const floor = opts.rtoMs * 4 - opts.rtoMs / 2;
  const tmo = Math.max(asked, floor);
  const source =
    opts.linger2S && opts.linger2S > 0 ? `TCP_LINGER2=${opts.linger2S} s` : `tcp_fin_timeout=${opts.finTimeoutS} s`;
  const raised = tmo > asked ? `, raised to 3.5 RTO = ${humanMs(tmo)}` : "";
  if (tmo <= TCP_TIMEWAIT_LEN_MS) {
    return { ms: tmo, timersMs: [tmo], why: `${source}${raised}: a FIN_WAIT2 mini-socket for ${humanMs(tmo)}` };
  }
  const rest = tmo - TCP_TIMEWAIT_LEN_MS;
  return {
    ms: 2 * rest,
    timersMs: [rest, rest],
    why: `${source}${raised}: keepalive timer for ${humanMs(rest)}, then a FIN_WAIT2 mini-socket for ${humanMs(rest)} again`,
  };
}

/** How keepalive ends a connection whose peer is gone. */
export interface KeepaliveDeath {
  /** From the last segment received to the error. */
  readonly deathMs: number;
  /** Probes sent before the error. */
  readonly probes: number;
  /** When the keepalive timer fires, from the last segment received; the last firing is the error. */
  readonly firingsMs: readonly number[];
  readonly why: string;
}

/**
 * tcp_keepalive_timer() on an idle socket (nothing in flight, nothing queued) whose peer never answers:
 * the timer fires `idle` after the last segment received, then every `intvl`. Each firing gives up
 * when, without TCP_USER_TIMEOUT, `cnt` probes are out; with it, when the time since the last segment
 * received has reached the user timeout and at least one probe is out, whatever `cnt` says. Otherwise
 * it sends a probe. Giving up sends an RST (tcp_send_active_reset) and reports ETIMEDOUT.
 */
export function keepaliveDeath(opts: {
  idleS: number;
  intvlS: number;
  cnt: number;
  userTimeoutMs?: number;
}): KeepaliveDeath {
  const user = opts.userTimeoutMs && opts.userTimeoutMs > 0 ? opts.userTimeoutMs : undefined;
  const firings: number[] = [];
  let probes = 0;
  let at = opts.idleS * 1000;
  for (;;) {
    firings.push(at);
    const done = user !== undefined ? at >= user && probes > 0 : probes >= opts.cnt;
    if (done) break;
    probes++;
    at += opts.intvlS * 1000;
  }
  const deathMs = firings[firings.length - 1] as number;
  const rule =
    user !== undefined
      ? `TCP_USER_TIMEOUT=${user} ms replaces TCP_KEEPCNT=${opts.cnt}: the first firing at or past ${user} ms with a probe out`
      : `after TCP_KEEPCNT=${opts.cnt} unanswered probes`;
  return {
    deathMs,
    probes,
    firingsMs: firings,
    why: `keepalive idle ${opts.idleS} s, then every ${opts.intvlS} s; ${rule}: ${probes} probes, error at ${humanMs(deathMs)}`,
  };
}

/** The delays between consecutive keepalive firings (for the timer wheel's slack), the first from the last segment received. */
export function keepaliveTimerDelays(d: KeepaliveDeath): number[] {
  return chainDelays(d.firingsMs, d.deathMs);
}

/**
 * When data queued during an outage arrives: nothing wakes TCP when a link comes back, so the data
 * waits for the next retransmission timer (tail loss probe or RTO) at or after the end of the outage.
 * `schedule` is retransmissionDeath().schedule, from the first transmission; undefined if the
 * connection dies first.
 */
export function deliveryAfterOutage(schedule: readonly number[], outageEndMs: number): number | undefined {
  return schedule.slice(0, -1).find((at) => at >= outageEndMs);
}
