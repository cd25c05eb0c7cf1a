// The Host every backend gives: scenarios never know whether it is a namespace, a VM or a Vagrant box.
import type { Readable } from "node:stream";
import type { SocketRow } from "../evidence/socket-table.js";
import type { Socket } from "../sys/socket.js";

export { SOCKET_METHODS, type SocketMethod } from "../sys/methods.js";

import type { SocketMethod } from "../sys/methods.js";

type Lift<R> = R extends Socket ? HostSocket : R extends Promise<infer U> ? Lift<U> : R;

/** A socket on a host: Socket's calls, awaited, with results and errors exactly as Socket gives them. */
export type HostSocket = {
  readonly host: string;
  readonly fd: number;
  readonly family: "IPv4" | "IPv6";
} & { [K in SocketMethod]: (...args: Parameters<Socket[K]>) => Promise<Lift<ReturnType<Socket[K]>>> };

/** A program running on a host. */
export interface HostProcess {
  readonly host: string;
  readonly argv: readonly string[];
  readonly pid: number | undefined;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Resolves when the program has exited, however it ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

/** Where a host stands: powered, off, paused or with its cable out. */
export type HostState = "running" | "off" | "paused" | "unplugged";

/** A host of the lab. */
export interface Host {
  readonly name: string;
  readonly ipv4: string;
  readonly ipv6: string;
  readonly mac: string;
  readonly state: HostState;
  /** How many times it has booted: a power cycle makes a new generation with empty kernel state. */
  readonly generation: number;
  /** A new TCP socket on this host. */
  socket(options?: { family?: "IPv4" | "IPv6" }): Promise<HostSocket>;
  /** A listening socket on this host's address. */
  listen(port?: number, options?: { backlog?: number; family?: "IPv4" | "IPv6" }): Promise<HostSocket>;
  /** A connected socket, bounded by timeoutMs. */
  connect(
    address: string,
    port: number,
    options?: { timeoutMs?: number; family?: "IPv4" | "IPv6" },
  ): Promise<HostSocket>;
  /** Runs a real program on this host; it dies with the host and with sockprobe. */
  spawn(argv: readonly string[]): HostProcess;
  /** The kernel's socket table on this host: states, queues, timers, TIME_WAIT and orphans included. */
  sockets(): Promise<SocketRow[]>;
  /** Reads a sysctl (a `net.*` key) as the host's kernel has it now. */
  sysctl(key: string): Promise<string>;
  /** Sets sysctls now, reads each back, and keeps them for the next boot. */
  setSysctls(values: Readonly<Record<string, string | number>>): Promise<Record<string, string>>;
  /** Every sysctl set on this host, as read back after setting it. */
  readonly sysctls: Readonly<Record<string, string>>;
}
