// poll(2) over one or many descriptors: revents as a mask and as names. Waiting never blocks
// the main thread: a zero timeout polls in place, anything longer waits on a native thread.
import { pollNames } from "./constants.js";
import { check, errnoNumber, SysError } from "./errors.js";
import { native, type SockprobeNative } from "./native.js";

/** What to wait for on one descriptor. */
export interface PollRequest {
  readonly fd: number;
  readonly events: number;
}

/** What poll reported for one descriptor. */
export interface PollOutcome {
  readonly fd: number;
  readonly revents: number;
  readonly names: string[];
}

/** The result of one poll call: how many descriptors were ready, and each one's revents. */
export interface PollResult {
  readonly ready: number;
  readonly outcomes: PollOutcome[];
  readonly timedOut: boolean;
  /**
   * When poll returned, CLOCK_MONOTONIC ns (process.hrtime's clock): for a wait, taken on the waiting
   * thread, so a busy event loop that sees the result later does not make the kernel look slow.
   */
  readonly doneNs: number;
}

/** Options of an awaitable poll. */
export interface PollOptions {
  /** Aborting wakes the wait at once; the promise then rejects with ECANCELED. */
  readonly signal?: AbortSignal | undefined;
  /** The syscall layer; tests may pass a scripted one. */
  readonly io?: SockprobeNative;
}

// Wake descriptors of pending waits, with the layer that owns them.
const pending = new Map<number, SockprobeNative>();

function arrays(requests: readonly PollRequest[]) {
  const fds = new Int32Array(requests.length);
  const events = new Int32Array(requests.length);
  requests.forEach((r, i) => {
    fds[i] = r.fd;
    events[i] = r.events;
  });
  return { fds, events, revents: new Int32Array(requests.length) };
}

function result(fds: Int32Array, revents: Int32Array, ready: number, doneNs: number): PollResult {
  const outcomes = Array.from(fds, (fd, i) => ({ fd, revents: revents[i] ?? 0, names: pollNames(revents[i] ?? 0) }));
  return { ready, outcomes, timedOut: ready === 0, doneNs };
}

/** poll(2) in place. Meant for a zero or very short timeout: it holds the main thread while it waits. */
export function pollNow(requests: readonly PollRequest[], timeoutMs = 0, io: SockprobeNative = native): PollResult {
  const { fds, events, revents } = arrays(requests);
  const ready = check(io.poll(fds, events, revents, timeoutMs), "poll");
  return result(fds, revents, ready, Number(process.hrtime.bigint()));
}

/** poll(2) with a timeout (-1 waits for ever), awaited without blocking the event loop. */
export async function poll(
  requests: readonly PollRequest[],
  timeoutMs: number,
  options: PollOptions = {},
): Promise<PollResult> {
  if (!Number.isFinite(timeoutMs) || timeoutMs < -1) {
    throw new TypeError(`poll(requests, timeoutMs): timeoutMs must be a number >= -1, got ${timeoutMs}`);
  }
  // poll(2) takes whole ms; rounding up never ends a wait early.
  timeoutMs = Math.ceil(timeoutMs);
  const io = options.io ?? native;
  const now = pollNow(requests, 0, io);
  if (now.ready > 0 || timeoutMs === 0) return now;
  if (options.signal?.aborted) throw new SysError(-errnoNumber("ECANCELED"), "poll", { cause: options.signal.reason });
  const { fds, events, revents } = arrays(requests);
  const wake = check(io.eventfd(), "eventfd");
  pending.set(wake, io);
  const onAbort = () => io.eventfdSignal(wake);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const doneAt = new Float64Array(1);
    const ready = await io.pollAsync(fds, events, revents, timeoutMs, wake, doneAt);
    if (ready < 0) throw new SysError(ready, "poll", { cause: options.signal?.reason });
    return result(fds, revents, ready, doneAt[0] || Number(process.hrtime.bigint()));
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    pending.delete(wake);
    io.close(wake);
  }
}

/** Wakes every pending wait (each rejects with ECANCELED): for teardown, so nothing keeps the process alive. */
export function cancelAllWaits(): number {
  for (const [wake, io] of pending) io.eventfdSignal(wake);
  return pending.size;
}

/** How many awaitable polls are waiting now. */
export function pendingWaits(): number {
  return pending.size;
}
