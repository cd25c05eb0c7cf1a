// The calls a socket offers by name: the list a host (in-process or behind an agent) exposes.
/** The Socket methods a host offers, each awaited: a host behind a stream answers every call later. */
export const SOCKET_METHODS = [
  "bind",
  "listen",
  "accept",
  "acceptAsync",
  "connect",
  "connectAsync",
  "localAddress",
  "remoteAddress",
  "recv",
  "read",
  "readAsync",
  "recvAsync",
  "send",
  "write",
  "shutdown",
  "setOption",
  "getOption",
  "setLinger",
  "getLinger",
  "takeError",
  "tcpInfo",
  "inq",
  "outq",
  "outqNotSent",
  "poll",
  "pollNow",
  "setNonBlocking",
  "close",
  "closeAsync",
] as const;

/** One of the methods above. */
export type SocketMethod = (typeof SOCKET_METHODS)[number];

/**
 * The Socket method that serves a host's call. A host's close is a program's close, which may block
 * (SO_LINGER): it never runs on the caller's main thread, whether the host is in-process or an agent.
 */
export function hostCall(method: SocketMethod): SocketMethod {
  return method === "close" ? "closeAsync" : method;
}
