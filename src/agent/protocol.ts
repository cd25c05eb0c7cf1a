// The agent's wire format: one JSON object per line each way, and a codec for the values that
// cross it. Buffers, sockets, undefined and errors do not survive plain JSON, so each gets a
// `$`-marker; the other side rebuilds the same value, down to `instanceof SysError`.
import { StringDecoder } from "node:string_decoder";
import { SysError, WaitTimeoutError } from "../sys/errors.js";

/** Bumped whenever a line's meaning changes: a lab refuses an agent that speaks another version. */
export const PROTOCOL_VERSION = 2;

/** Matches a request to its answer; answers may come back in any order. */
export type RequestId = number | string;

/** Asks who the agent is, and which protocol it speaks. */
export interface HelloRequest {
  readonly id: RequestId;
  readonly op: "hello";
}

/** Opens a TCP socket in the agent's own network namespace. */
export interface SocketRequest {
  readonly id: RequestId;
  readonly op: "socket";
  readonly family?: "IPv4" | "IPv6";
}

/** Runs one Socket method on a socket the agent holds; `args` are encoded values. */
export interface CallRequest {
  readonly id: RequestId;
  readonly op: "call";
  readonly sock: number;
  readonly method: string;
  readonly args?: readonly Wire[];
}

/** Aborts the AbortSignal a pending call carried as `{ $signal }`, so a remote wait can be cut short. */
export interface AbortRequest {
  readonly id: RequestId;
  readonly op: "abort";
  readonly signal: number;
  readonly reason?: Wire;
}

/** Closes every socket the agent holds: a host's sockets die with its generation. */
export interface CloseAllRequest {
  readonly id: RequestId;
  readonly op: "closeAll";
}

/** Answers, closes every socket and stops reading, as if input had ended. */
export interface ExitRequest {
  readonly id: RequestId;
  readonly op: "exit";
}

/**
 * Runs a program on the host (ss, ip, tracefs readers) and answers its exit and output: the host-side
 * evidence a lab cannot read from afar. The lab interprets what comes back; the agent only runs it.
 */
export interface RunRequest {
  readonly id: RequestId;
  readonly op: "run";
  readonly argv: readonly string[];
  readonly input?: string;
  readonly timeoutMs?: number;
}

/** Reads a file of the host (a sysctl under /proc/sys, a tracepoint's format) as text. */
export interface ReadFileRequest {
  readonly id: RequestId;
  readonly op: "readFile";
  readonly path: string;
}

/** Writes a file of the host (a sysctl): the kernel's refusal comes back as the errno. */
export interface WriteFileRequest {
  readonly id: RequestId;
  readonly op: "writeFile";
  readonly path: string;
  readonly data: string;
}

/** Lists a directory of the host (the sysctls under /proc/sys/net/ipv4). */
export interface ReaddirRequest {
  readonly id: RequestId;
  readonly op: "readdir";
  readonly path: string;
}

/** The host's CLOCK_MONOTONIC in ns, as a decimal string: a lab far away maps the host's evidence onto its own clock. */
export interface ClockRequest {
  readonly id: RequestId;
  readonly op: "clock";
}

/**
 * The host kernel's TCP tracepoints: `start` arms a trace read as it goes, `snapshot` answers every
 * event so far, `stop` answers them and removes the trace. Events carry `atNs` as a decimal string.
 */
export interface TraceRequest {
  readonly id: RequestId;
  readonly op: "trace";
  readonly action: "start" | "snapshot" | "stop";
}

/** What `run` answers. */
export interface RunResult {
  readonly code: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Every request a lab may send. */
export type Request =
  | HelloRequest
  | SocketRequest
  | CallRequest
  | AbortRequest
  | CloseAllRequest
  | ExitRequest
  | RunRequest
  | ReadFileRequest
  | WriteFileRequest
  | ReaddirRequest
  | ClockRequest
  | TraceRequest;

/** The op names, for the error that answers an unknown one. */
export const OPS = [
  "hello",
  "socket",
  "call",
  "abort",
  "closeAll",
  "exit",
  "run",
  "readFile",
  "writeFile",
  "readdir",
  "clock",
  "trace",
] as const satisfies readonly Request["op"][];

/** One answer; `id` is null when the request line could not be read far enough to find its id. */
export type Response =
  | { readonly id: RequestId | null; readonly ok: true; readonly value: Wire }
  | { readonly id: RequestId | null; readonly ok: false; readonly error: WireError };

/** What `hello` answers. */
export interface HelloInfo {
  readonly protocol: number;
  readonly pid: number;
  readonly host: string;
  readonly kernel: string;
  readonly node: string;
}

/** A socket the agent holds, by the number the agent gave it; fd, family and host ride along for display. */
export interface SocketRef {
  readonly $sock: number;
  readonly fd: number;
  readonly family: "IPv4" | "IPv6";
  readonly host: string;
}

/** An AbortSignal of the lab, by number; `aborted` when it was already aborted at sending time. */
export interface SignalRef {
  readonly $signal: number;
  readonly aborted?: boolean;
}

/** JSON as it appears on a line. */
export type Wire = null | boolean | number | string | readonly Wire[] | { readonly [key: string]: Wire };

/** An error as it crosses: enough to rebuild the same class with the same fields. */
export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  readonly errno?: number;
  readonly syscall?: string;
  /** The agent's stack, kept for debugging; the rebuilt error gets a stack of this process. */
  readonly stack?: string;
  readonly cause?: WireError;
}

/** What each side plugs into the codec: sockets and signals are references, meaningful to one side only. */
export interface CodecHooks {
  /** The reference for a value that stands for a socket, or undefined if it is not one. */
  readonly socketRef?: (value: object) => SocketRef | undefined;
  /** The value a socket reference stands for here; without it, the reference itself. */
  readonly socketOf?: (ref: SocketRef) => unknown;
  /** The reference for an AbortSignal; without it, a signal cannot be sent. */
  readonly signalRef?: (signal: AbortSignal) => SignalRef;
  /** The local signal a reference stands for; without it, a signal cannot be received. */
  readonly signalOf?: (ref: SignalRef) => AbortSignal;
}

const NON_FINITE: Readonly<Record<string, number>> = { NaN: Number.NaN, Infinity: Infinity, "-Infinity": -Infinity };
const MAX_DEPTH = 64;

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Turns a value into JSON that `decodeValue` turns back into the same value. */
export function encodeValue(value: unknown, hooks: CodecHooks = {}, depth = 0): Wire {
  if (depth > MAX_DEPTH) throw new RangeError(`cannot send a value nested deeper than ${MAX_DEPTH} levels`);
  switch (typeof value) {
    case "undefined":
      return { $undef: true };
    case "boolean":
    case "string":
      return value;
    case "number":
      return Number.isFinite(value) ? value : { $num: String(value) };
    case "bigint":
    case "symbol":
    case "function":
      throw new TypeError(`cannot send a ${typeof value} to a host`);
  }
  if (value === null) return null;
  const obj = value as object;
  if (Buffer.isBuffer(obj)) return { $buf: obj.toString("base64") };
  const ref = hooks.socketRef?.(obj);
  if (ref) return { $sock: ref.$sock, fd: ref.fd, family: ref.family, host: ref.host };
  if (obj instanceof AbortSignal) {
    if (!hooks.signalRef) throw new TypeError("cannot send an AbortSignal here: it only crosses as a call's argument");
    const s = hooks.signalRef(obj);
    return s.aborted ? { $signal: s.$signal, aborted: true } : { $signal: s.$signal };
  }
  if (Array.isArray(obj)) return obj.map((v) => encodeValue(v, hooks, depth + 1));
  if (!isPlainObject(obj)) {
    throw new TypeError(`cannot send a ${obj.constructor?.name ?? "non-plain object"} to a host`);
  }
  const out: Record<string, Wire> = {};
  let marked = false;
  for (const [k, v] of Object.entries(obj)) {
    out[k] = encodeValue(v, hooks, depth + 1);
    if (k.startsWith("$")) marked = true;
  }
  // A key that looks like a marker is wrapped, so no plain object is ever read back as a Buffer or a socket.
  return marked ? { $obj: out } : out;
}

/** Rebuilds what `encodeValue` encoded; throws TypeError on a marker it does not know. */
export function decodeValue(wire: Wire, hooks: CodecHooks = {}, depth = 0): unknown {
  if (wire === null || typeof wire !== "object") return wire;
  if (depth > MAX_DEPTH) throw new RangeError(`cannot read a value nested deeper than ${MAX_DEPTH} levels`);
  if (Array.isArray(wire)) return wire.map((v: Wire) => decodeValue(v, hooks, depth + 1));
  const obj = wire as { readonly [key: string]: Wire };
  const keys = Object.keys(obj);
  const marker = keys.find((k) => k.startsWith("$"));
  if (marker === undefined) return decodeEntries(obj, hooks, depth);
  switch (marker) {
    case "$buf":
      if (typeof obj.$buf !== "string") break;
      return Buffer.from(obj.$buf, "base64");
    case "$undef":
      return undefined;
    case "$num":
      if (typeof obj.$num !== "string" || !(obj.$num in NON_FINITE)) break;
      return NON_FINITE[obj.$num];
    case "$obj":
      if (obj.$obj === null || typeof obj.$obj !== "object" || Array.isArray(obj.$obj)) break;
      return decodeEntries(obj.$obj as { readonly [key: string]: Wire }, hooks, depth);
    case "$sock": {
      const ref = obj as unknown as SocketRef;
      if (typeof ref.$sock !== "number") break;
      return hooks.socketOf
        ? hooks.socketOf(ref)
        : { $sock: ref.$sock, fd: ref.fd, family: ref.family, host: ref.host };
    }
    case "$signal": {
      const ref = obj as unknown as SignalRef;
      if (typeof ref.$signal !== "number") break;
      if (!hooks.signalOf)
        throw new TypeError("cannot receive an AbortSignal here: it only crosses as a call's argument");
      return hooks.signalOf(ref);
    }
  }
  throw new TypeError(`cannot read ${JSON.stringify(obj).slice(0, 80)}: bad or unknown marker ${marker}`);
}

function decodeEntries(obj: { readonly [key: string]: Wire }, hooks: CodecHooks, depth: number): object {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) out[k] = decodeValue(v, hooks, depth + 1);
  return out;
}

/** Any thrown value as a WireError: SysError and WaitTimeoutError keep every field the lab reads. */
export function encodeError(err: unknown, depth = 0): WireError {
  if (!(err instanceof Error)) return { name: "Error", message: `non-error thrown: ${String(err)}` };
  const e = err as Error & { code?: unknown; errno?: unknown; syscall?: unknown };
  const out: { -readonly [K in keyof WireError]: WireError[K] } = { name: e.name, message: e.message };
  if (typeof e.code === "string") out.code = e.code;
  if (typeof e.errno === "number") out.errno = e.errno;
  if (typeof e.syscall === "string") out.syscall = e.syscall;
  if (typeof e.stack === "string") out.stack = e.stack;
  if (e.cause !== undefined && depth < 4) out.cause = encodeError(e.cause, depth + 1);
  return out;
}

const PLAIN_ERRORS: Readonly<Record<string, ErrorConstructor>> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

/** Rebuilds an error of the same class, code, errno, syscall and message; the agent's stack becomes `remoteStack`. */
export function decodeError(wire: WireError): Error {
  const options = wire.cause ? { cause: decodeError(wire.cause) } : undefined;
  let err: Error;
  if (wire.name === "SysError" && typeof wire.errno === "number" && typeof wire.syscall === "string") {
    err = new SysError(wire.errno, wire.syscall, options);
  } else if (wire.name === "WaitTimeoutError") {
    err = new WaitTimeoutError("", 0);
    if (options) err.cause = options.cause;
  } else {
    const Ctor = PLAIN_ERRORS[wire.name] ?? Error;
    err = new Ctor(wire.message, options);
    if (!(wire.name in PLAIN_ERRORS)) Object.defineProperty(err, "name", { value: wire.name, configurable: true });
    if (wire.code !== undefined) Object.defineProperty(err, "code", { value: wire.code, enumerable: true });
    if (wire.errno !== undefined) Object.defineProperty(err, "errno", { value: wire.errno, enumerable: true });
    if (wire.syscall !== undefined) Object.defineProperty(err, "syscall", { value: wire.syscall, enumerable: true });
  }
  // Another Node or libuv may word a description differently: the agent's message is the one that happened.
  if (err.message !== wire.message) {
    err.message = wire.message;
    err.stack = `${wire.name}: ${wire.message}${err.stack?.slice(err.stack.indexOf("\n")) ?? ""}`;
  }
  if (wire.stack !== undefined) Object.defineProperty(err, "remoteStack", { value: wire.stack, configurable: true });
  return err;
}

/** Cuts a stream's chunks into lines, for both ends of the wire; `end` hands over a last line without a newline. */
export function lineSplitter(onLine: (line: string) => void): {
  write(chunk: Buffer | string): void;
  end(): void;
} {
  const decoder = new StringDecoder("utf8");
  let pending = "";
  return {
    write(chunk) {
      const text = typeof chunk === "string" ? chunk : decoder.write(chunk);
      // Only the new text is searched, so a line of many megabytes (a large write or read) costs linear time.
      if (!text.includes("\n")) {
        pending += text;
        return;
      }
      const lines = (pending + text).split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) onLine(line);
    },
    end() {
      pending += decoder.end();
      if (pending !== "") onLine(pending);
      pending = "";
    },
  };
}
