// A Socket owned by this process, offered as a HostSocket: each call made now, its result awaited.
import type { Socket } from "../sys/socket.js";
import { type HostSocket, SOCKET_METHODS } from "./host.js";

// Methods live on one prototype built once, so wrapping a socket allocates one small object.
class LocalHostSocket {
  constructor(
    readonly socket: Socket,
    readonly onSocket: (s: Socket) => void,
  ) {}
  get host(): string {
    return this.socket.host;
  }
  get fd(): number {
    return this.socket.fd;
  }
  get family(): "IPv4" | "IPv6" {
    return this.socket.family;
  }
}

for (const method of SOCKET_METHODS) {
  Object.defineProperty(LocalHostSocket.prototype, method, {
    value: async function (this: LocalHostSocket, ...args: unknown[]) {
      // A host's close is a program's close: it may block (SO_LINGER), so it never runs on our main thread.
      const call = method === "close" ? "closeAsync" : method;
      const value = await (this.socket[call] as (...a: unknown[]) => unknown)(...args);
      if (value === this.socket) return this;
      if (
        value !== null &&
        typeof value === "object" &&
        Object.getPrototypeOf(value) === Object.getPrototypeOf(this.socket)
      ) {
        return localHostSocket(value as Socket, this.onSocket);
      }
      return value;
    },
  });
}

/** Wraps an in-process Socket; sockets it returns (accept) are wrapped too. `onSocket` sees each one. */
export function localHostSocket(socket: Socket, onSocket: (s: Socket) => void = () => {}): HostSocket {
  onSocket(socket);
  return new LocalHostSocket(socket, onSocket) as unknown as HostSocket;
}
