// The whole native surface as one typed interface: nothing untyped crosses it.

import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** A socket address as the kernel reported it. */
export interface NativeAddress {
  family: number;
  address: string;
  port: number;
}

/** getsockoptInt results below this are failures: the errno is `-(result + 2^32)`. */
export const GETSOCKOPT_FAILED = -(2 ** 31);

/** Every call returns a result >= 0 or -errno (but see getsockoptInt); out-parameters are written only on success. */
export interface SockprobeNative {
  socket(family: number, type: number, protocol: number): number;
  socketAt(nsFd: number, family: number, type: number, protocol: number): number;
  bind(fd: number, address: string, port: number): number;
  listen(fd: number, backlog: number): number;
  accept(fd: number, flags: number): number;
  connect(fd: number, address: string, port: number): number;
  getsockname(fd: number): NativeAddress | number;
  getpeername(fd: number): NativeAddress | number;
  close(fd: number): number;
  recv(fd: number, buffer: Buffer, offset: number, length: number, flags: number): number;
  send(fd: number, buffer: Buffer, offset: number, length: number, flags: number): number;
  shutdown(fd: number, how: number): number;
  setsockoptInt(fd: number, level: number, name: number, value: number): number;
  /** The option's value, or -errno - 2^32 on failure (see GETSOCKOPT_FAILED). */
  getsockoptInt(fd: number, level: number, name: number): number;
  setsockoptLinger(fd: number, onoff: number, linger: number): number;
  getsockoptLinger(fd: number, out: Int32Array): number;
  getsockoptBytes(fd: number, level: number, name: number, out: Buffer): number;
  ioctlInt(fd: number, request: number, out: Int32Array): number;
  setNonBlocking(fd: number, on: number): number;
  poll(fds: Int32Array, events: Int32Array, revents: Int32Array, timeoutMs: number): number;
  /** doneAt[0] receives the CLOCK_MONOTONIC ns at which poll returned on its thread. */
  pollAsync(
    fds: Int32Array,
    events: Int32Array,
    revents: Int32Array,
    timeoutMs: number,
    cancelFd: number,
    doneAt?: Float64Array,
  ): Promise<number>;
  eventfd(): number;
  eventfdSignal(fd: number): number;
  tcpInfoHeaderLayout(): Record<string, number>;
  constants(): Record<string, number>;
  netnsCreate(): number;
  ifFlags(fd: number, ifname: string, set: number): number;
  openAt(nsFd: number, path: string, flags: number): number;
  /** close(2) on a thread with signals blocked; resolves to 0 or -errno. */
  closeAsync(fd: number): Promise<number>;
}

// Works from src/ (tsx) and from dist/ (compiled): both sit two levels below the package root.
function addonPath(): string {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
  for (const build of ["Release", "Debug"]) {
    const candidate = join(root, "build", build, "sockprobe.node");
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(
    `sockprobe's native addon is not built (looked in ${join(root, "build")}). Run \`npm install\` or \`npm run build\` in ${root}; it needs make, g++ and python3.`,
  );
}

/** The loaded addon. */
export const native: SockprobeNative = createRequire(import.meta.url)(addonPath()) as SockprobeNative;
