// A Socket owned by this process, offered as a HostSocket: each call made now, its result awaited.
import type { Socket } from "../sys/socket.js";
import { type HostSocket, SOCKET_METHODS } from "./host.js";

/** Wraps an in-process Socket; sockets it returns (accept) are wrapped too. `onSocket` sees each one. */
export function localHostSocket(socket: Socket, onSocket: (s: Socket) => void = () => {}): HostSocket {
  onSocket(socket);
  const wrapped: Record<string, unknown> = { host: socket.host, fd: socket.fd, family: socket.family };
  for (const method of SOCKET_METHODS) {
    const fn = (socket[method] as (...a: unknown[]) => unknown).bind(socket);
    wrapped[method] = async (...args: unknown[]) => {
      const value = await fn(...args);
      if (value === socket) return wrapped;
      if (value && typeof value === "object" && "fd" in value && "tcpInfo" in value) {
        return localHostSocket(value as Socket, onSocket);
      }
      return value;
    };
  }
  return wrapped as unknown as HostSocket;
}
