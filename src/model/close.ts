// What the kernel should do when a connection ends, as Linux 6.x codes it: which revents tcp_poll()
// reports, what successive reads return after a FIN or a RST, which errno tcp_reset() leaves, which
// reset reason the tracepoint names, and the loss-probe and persist timers that bound our waits.
import { POLL_EVENTS, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDHUP } from "../sys/constants.js";
import { lossProbeMs, TCP_DELACK_MAX_MS, tolerance } from "./tcp.js";

/** What one end of a connection has been through, as far as tcp_poll() and tcp_recvmsg() look. */
export interface SocketCondition {
  /** Bytes in the receive queue, not yet read. */
  readonly queued: number;
  /** The peer's FIN was processed (tcp_fin: RCV_SHUTDOWN and SOCK_DONE). */
  readonly finReceived: boolean;
  /** A RST was processed (tcp_reset then tcp_done: state CLOSE, both directions shut). */
  readonly resetReceived: boolean;
  /** The error tcp_reset() left in sk_err is still pending (no recv, peek or SO_ERROR took it yet). */
  readonly errorPending: boolean;
  /** This end called shutdown(SHUT_WR) or close (SEND_SHUTDOWN). */
  readonly sentFin?: boolean;
  /** Room in the send buffer (sk_stream_is_writeable); true for an idle connection. */
  readonly writable?: boolean;
}

/** An open connection with nothing queued and nothing received that ends it. */
export const IDLE: SocketCondition = { queued: 0, finReceived: false, resetReceived: false, errorPending: false };
/** The peer's FIN processed, nothing queued. */
export const AFTER_FIN: SocketCondition = { ...IDLE, finReceived: true };
/** A RST processed on a synchronized connection, its error not yet taken. */
export const AFTER_RST: SocketCondition = { ...IDLE, resetReceived: true, errorPending: true };

/**
 * tcp_poll() (net/ipv4/tcp.c) for a connected socket, masked the way poll(2) masks it (do_pollfd:
 * the requested events plus POLLERR and POLLHUP, which cannot be masked):
 * - POLLHUP only when both directions are shut (SHUTDOWN_MASK) or the state is CLOSE;
 * - RCV_SHUTDOWN (a FIN, or tcp_done after a RST) gives POLLIN|POLLRDHUP even with nothing queued:
 *   a read will not block, it returns 0 or the error;
 * - queued data gives POLLIN; after SEND_SHUTDOWN POLLOUT is always set (a write fails at once);
 * - POLLERR while sk_err is pending.
 */
export function tcpPollRevents(c: SocketCondition, events: number): string[] {
  const rcvShutdown = c.finReceived || c.resetReceived;
  const sndShutdown = c.resetReceived || c.sentFin === true;
  let mask = 0;
  if (rcvShutdown && sndShutdown) mask |= POLLHUP;
  if (rcvShutdown) mask |= POLLIN | POLLRDHUP;
  if (c.queued > 0) mask |= POLLIN;
  if (sndShutdown || c.writable !== false) mask |= POLLOUT;
  if (c.errorPending) mask |= POLLERR;
  const shown = mask & (events | POLLERR | POLLHUP);
  return POLL_EVENTS.filter(([, bit]) => (shown & bit) !== 0).map(([name]) => name);
}

/** tcpPollRevents() as describeOutcome prints a poll's result: "POLLIN|POLLRDHUP", or "nothing". */
export function reventsText(c: SocketCondition, events: number): string {
  return tcpPollRevents(c, events).join("|") || "nothing";
}

/** tcp_reset(): the errno a RST leaves in sk_err, by the state it finds the socket in. */
export function resetErrno(state: string): string | undefined {
  if (state === "SYN_SENT") return "ECONNREFUSED";
  if (state === "CLOSE_WAIT") return "EPIPE";
  if (state === "CLOSE") return undefined;
  return "ECONNRESET";
}

/**
 * What successive recv() calls return, as tcp_recvmsg_locked() decides: queued data first (a RST
 * does not purge the receive queue: tcp_done_with_error() purges only the write queue); then, with
 * nothing copied, SOCK_DONE (a FIN was received) returns 0 before sk_err is looked at, so a RST
 * after a FIN never reaches read(); else a pending sk_err is returned and cleared (sock_error(), even
 * under MSG_PEEK); then RCV_SHUTDOWN returns 0. One entry per call, as describeOutcome prints it;
 * reads are assumed large enough to take the whole queue at once.
 */
export function readSequence(c: SocketCondition, resetState = "ESTABLISHED"): string[] {
  const out: string[] = [];
  if (c.queued > 0) out.push(`${c.queued} bytes`);
  const err = c.errorPending ? resetErrno(resetState) : undefined;
  if (!c.finReceived && err) out.push(err);
  out.push("0 (EOF)");
  return out;
}

/**
 * The reset reasons the tcp_send_reset tracepoint prints (enum sk_rst_reason, Linux 6.10+), by the
 * code path that sends the RST.
 */
export const RST_REASON = {
  /** close() with SO_LINGER {1, 0}: tcp_close() calls tcp_disconnect(), which resets any synchronized state. */
  lingerZero: "TCP_STATE",
  /** close() with unread data in the receive queue (RFC 2525 §2.17): tcp_close() sends it at once. */
  unreadData: "TCP_ABORT_ON_CLOSE",
  /** A segment with ACK reaching only a listener (its connection is gone): tcp_v4_rcv via tcp_rcv_state_process. */
  ackToListener: "TCP_FLAGS",
} as const;

/** Where an RST is sent from, as tcp_send_reset sees it. */
export type ResetOrigin =
  /** An established (or closing) socket of its own: tcp_send_active_reset, or tcp_v4_send_reset with it. */
  | "socket"
  /** A listener answering a segment for a connection it does not have (it is a full socket too). */
  | "listener"
  /** No socket at all (NO_SOCKET), a TIME_WAIT or a request socket: tcp_v4_send_reset without a full socket. */
  | "no socket";

/**
 * What the tcp_send_reset tracepoint shows of an RST. Since 6.10 ("trace: tcp: fully support
 * trace_tcp_send_reset", with the rstreason series) it fires for every RST, with a `reason`; before,
 * tcp_v4_send_reset traced only `if (sk && sk_fullsock(sk))` and the event had no reason field, so an
 * RST sent for no socket left no trace on the sender (the receiver's tcp_receive_reset still shows it).
 */
export function sendResetTrace(
  origin: ResetOrigin,
  reason: string,
  everyRst: boolean,
): { traced: boolean; reason: string | undefined } {
  if (everyRst) return { traced: true, reason };
  return { traced: origin !== "no socket", reason: undefined };
}

/** How an RST traced without a reason field reads in a check. */
export const NO_REASON = "traced, no reason";

/** What tcp_send_reset shows of one RST, in one word for checks: its reason, NO_REASON, or "none". */
export function expectedResetSeen(origin: ResetOrigin, reason: string, everyRst: boolean): string {
  const t = sendResetTrace(origin, reason, everyRst);
  return t.traced ? (t.reason ?? NO_REASON) : "none";
}

/** How a check names what tcp_send_reset is expected to show: "one, reason NO_SOCKET", "none (...)". */
export function sendResetText(who: string, origin: ResetOrigin, reason: string, everyRst: boolean): string {
  const t = sendResetTrace(origin, reason, everyRst);
  if (!t.traced) return `no tcp_send_reset from ${who} (this kernel traces no RST sent without a socket)`;
  return t.reason === undefined
    ? `one tcp_send_reset from ${who}, with no reason (the field came with 6.10)`
    : `one tcp_send_reset from ${who}, reason ${t.reason}`;
}

/**
 * A bound on how long segments dropped by a short partition take to get through after it heals:
 * the loss probe, then the first RTO retransmission (the probe re-arms the RTO), and one doubled
 * RTO more in case the partition outlasted the first; each side alike.
 */
export function redeliveryBoundMs(opts: { srttMs: number; rtoMs: number }): number {
  const probe = lossProbeMs({ ...opts, packetsOut: 2 });
  const at = probe + opts.rtoMs + 2 * opts.rtoMs;
  return at + tolerance(at, 3);
}

/**
 * A bound on how long a non-reading receiver takes to close its window completely: its window
 * update waits up to TCP_DELACK_MAX, and the last sliver below one MSS goes only when the sender's
 * persist timer (probe0, one RTO) fires; allow one backoff.
 */
export function zeroWindowBoundMs(rtoMs: number): number {
  const at = TCP_DELACK_MAX_MS + 3 * rtoMs;
  return at + tolerance(at, 3);
}
