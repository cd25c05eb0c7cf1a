// A Socket owned by this process, offered as a HostSocket: each call made now, its result awaited.
import { hostCall } from "../../sys/methods.js";
import type { Socket } from "../../sys/socket.js";
import { type HostSocket, SOCKET_METHODS } from "../host.js";

// Methods live on one prototype built once, so wrapping a socket allocates one small object.
class LocalHostSocket {
  constructor(
    readonly socket: Socket,
    readonly track: SocketTracker,
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
  // What a call returned, as a host gives it: this wrapper for the socket itself, a new one for an accepted socket.
  lift(value: unknown): unknown {
    if (value === this.socket) return this;
    if (
      value !== null &&
      typeof value === "object" &&
      Object.getPrototypeOf(value) === Object.getPrototypeOf(this.socket)
    ) {
      return localHostSocket(value as Socket, this.track);
    }
    return value;
  }
}

for (const method of SOCKET_METHODS) {
  const call = hostCall(method);
  Object.defineProperty(LocalHostSocket.prototype, method, {
    // Not an async function: a call that answers at once costs one resolved promise, not two.
    value(this: LocalHostSocket, ...args: unknown[]): Promise<unknown> {
      try {
        const value = (this.socket[call] as (...a: unknown[]) => unknown)(...args);
        if (call === "closeAsync") this.track.delete(this.socket);
        return value instanceof Promise ? value.then((v) => this.lift(v)) : Promise.resolve(this.lift(value));
      } catch (e) {
        return Promise.reject(e);
      }
    },
  });
}

/** Where a host keeps the sockets it has open, so a power off can close them. */
export interface SocketTracker {
  add(s: Socket): void;
  delete(s: Socket): void;
}

/** Wraps an in-process Socket; sockets it returns (accept) are wrapped and tracked too. */
export function localHostSocket(socket: Socket, track: SocketTracker = { add() {}, delete() {} }): HostSocket {
  track.add(socket);
  return new LocalHostSocket(socket, track) as unknown as HostSocket;
}
