// The agent: runs inside a host (a namespace, a VM, a Vagrant box) and makes the socket calls a lab
// far away asks for, one JSON line in, one JSON line out. Every request runs at once, so a long
// wait never holds back the calls behind it; answers go out as they finish, in any order.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { release } from "node:os";
import type { Readable, Writable } from "node:stream";
import { startTraceStream, type TraceStream, tracefsStatus } from "../evidence/tracepoints.js";
import { run } from "../proc/exec.js";
import { hostCall, SOCKET_METHODS, type SocketMethod } from "../sys/methods.js";
import { type Netns, Socket } from "../sys/socket.js";
import {
  type CodecHooks,
  decodeValue,
  encodeError,
  encodeValue,
  type HelloInfo,
  lineSplitter,
  OPS,
  PROTOCOL_VERSION,
  type RequestId,
  type Response,
  type SignalRef,
  type SocketRef,
  type Wire,
} from "./protocol.js";

/** How an agent runs. */
export interface AgentOptions {
  /** The host name sockets carry, as the lab calls this host. */
  readonly host: string;
  /** Where sockets are made; the agent's own namespace by default. Lets an in-process agent serve a fresh Netns. */
  readonly netns?: string | Netns;
  /** Where diagnostics go: never `output`, which carries protocol lines only. Standard error by default. */
  readonly log?: (line: string) => void;
}

const METHODS: ReadonlySet<string> = new Set(SOCKET_METHODS);

function isRequestId(v: unknown): v is RequestId {
  return (typeof v === "number" && Number.isFinite(v)) || typeof v === "string";
}

/**
 * Serves requests from `input` until it ends (or an `exit` request), answering on `output`. Resolves
 * once every socket is closed and every pending call has answered.
 */
export function runAgent(input: Readable, output: Writable, options: AgentOptions): Promise<void> {
  const host = options.host;
  const log = options.log ?? ((line: string) => process.stderr.write(`sockprobe-agent[${host}]: ${line}\n`));
  const sockets = new Map<number, Socket>();
  const refs = new Map<Socket, number>();
  const signals = new Map<number, AbortController>();
  const inflight = new Set<Promise<void>>();
  let nextSock = 1;
  let trace: TraceStream | undefined;
  let outputOpen = true;
  let finishing: Promise<void> | undefined;
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });

  function refOf(socket: Socket): SocketRef {
    let n = refs.get(socket);
    if (n === undefined) {
      n = nextSock++;
      refs.set(socket, n);
      sockets.set(n, socket);
    }
    return { $sock: n, fd: socket.fd, family: socket.family, host: socket.host };
  }

  function socketOf(n: unknown): Socket {
    const socket = typeof n === "number" ? sockets.get(n) : undefined;
    if (!socket) throw new TypeError(`no socket ${JSON.stringify(n)} on host ${host}: it was never opened here`);
    return socket;
  }

  function answer(response: Response): void {
    if (!outputOpen) return;
    let line: string;
    try {
      line = JSON.stringify(response);
    } catch (e) {
      line = JSON.stringify({ id: response.id, ok: false, error: encodeError(e) });
    }
    output.write(`${line}\n`);
  }

  function closeAll(): number {
    let closed = 0;
    for (const socket of sockets.values()) {
      if (socket.closed) continue;
      try {
        socket.close();
      } catch (e) {
        log(`closing fd ${socket.fd}: ${(e as Error).message}`);
      }
      closed++;
    }
    return closed;
  }

  async function call(req: Record<string, unknown>): Promise<Wire> {
    const socket = socketOf(req.sock);
    const method = req.method;
    if (typeof method !== "string" || !METHODS.has(method)) {
      throw new TypeError(
        `${JSON.stringify(method)} is not a socket call a host offers; use one of ${SOCKET_METHODS.join(", ")}`,
      );
    }
    const rawArgs = req.args ?? [];
    if (!Array.isArray(rawArgs)) throw new TypeError(`call ${method}: args must be an array`);
    const mine: number[] = [];
    const hooks: CodecHooks = {
      socketRef: (v) => (v instanceof Socket ? refOf(v) : undefined),
      socketOf: (ref) => socketOf(ref.$sock),
      signalOf: (ref: SignalRef) => {
        const controller = new AbortController();
        if (ref.aborted) controller.abort(new Error("aborted before the call reached the agent"));
        signals.set(ref.$signal, controller);
        mine.push(ref.$signal);
        return controller.signal;
      },
    };
    try {
      const args = rawArgs.map((a: Wire) => decodeValue(a, hooks));
      const call = hostCall(method as SocketMethod);
      const fn = (socket as unknown as Record<string, (...a: unknown[]) => unknown>)[call] as (
        ...a: unknown[]
      ) => unknown;
      const value = await fn.apply(socket, args);
      return encodeValue(value, hooks);
    } finally {
      for (const n of mine) signals.delete(n);
    }
  }

  async function dispatch(req: Record<string, unknown>): Promise<Wire> {
    switch (req.op) {
      case "hello": {
        const info: HelloInfo = {
          protocol: PROTOCOL_VERSION,
          pid: process.pid,
          host,
          kernel: release(),
          node: process.version,
        };
        return { ...info };
      }
      case "socket": {
        const family = req.family as "IPv4" | "IPv6" | undefined;
        return encodeValue(Socket.create({ family, host, netns: options.netns }), {
          socketRef: (v) => refOf(v as Socket),
        });
      }
      case "call":
        return call(req);
      case "abort": {
        const controller = typeof req.signal === "number" ? signals.get(req.signal) : undefined;
        // An abort that crossed its call's answer on the wire finds nothing left to abort: that is fine.
        controller?.abort(req.reason === undefined ? undefined : decodeValue(req.reason as Wire));
        return encodeValue(controller !== undefined);
      }
      case "closeAll":
        return closeAll();
      case "exit":
        return true;
      // Host-side evidence, in the agent's own namespace (a VM's, or the namespace it was started in).
      case "run": {
        const r = await run(req.argv as string[], {
          allowFail: true,
          ...(typeof req.input === "string" ? { input: req.input } : {}),
          ...(typeof req.timeoutMs === "number" ? { timeoutMs: req.timeoutMs } : {}),
        });
        return { code: r.code, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
      }
      case "readFile":
        return readFileSync(String(req.path), "utf8");
      case "writeFile":
        writeFileSync(String(req.path), String(req.data));
        return true;
      case "readdir":
        return readdirSync(String(req.path));
      case "clock":
        return String(process.hrtime.bigint());
      case "trace":
        return traceOp(req.action);
      default:
        throw new TypeError(`unknown op ${JSON.stringify(req.op)}; ops are ${OPS.join(", ")}`);
    }
  }

  // The trace as the lab sees it: events with atNs as text (a bigint does not cross JSON).
  async function traceOp(action: unknown): Promise<Wire> {
    const wire = (events: readonly { atNs: bigint }[]) =>
      events.map((e) => ({ ...e, atNs: String(e.atNs) })) as unknown as Wire;
    switch (action) {
      case "start": {
        if (trace) return true;
        const status = tracefsStatus();
        if (!status.available) throw new Error(`no trace on host ${host}: ${status.reason ?? "tracefs unavailable"}`);
        trace = await startTraceStream({ bufferKb: 4096 });
        return true;
      }
      case "snapshot":
        return wire(trace ? await trace.snapshot() : []);
      case "stop": {
        const t = trace;
        trace = undefined;
        return wire(t ? await t.stop() : []);
      }
      default:
        throw new TypeError(`trace: action is start, snapshot or stop, not ${JSON.stringify(action)}`);
    }
  }

  async function handle(line: string): Promise<void> {
    let req: unknown;
    try {
      req = JSON.parse(line);
    } catch (e) {
      answer({ id: null, ok: false, error: encodeError(new SyntaxError(`not a JSON line: ${(e as Error).message}`)) });
      return;
    }
    if (req === null || typeof req !== "object" || Array.isArray(req) || !isRequestId((req as { id?: unknown }).id)) {
      const error = new TypeError(
        `a request is an object with an id (number or string) and an op: ${line.slice(0, 80)}`,
      );
      answer({ id: null, ok: false, error: encodeError(error) });
      return;
    }
    const r = req as Record<string, unknown>;
    const id = r.id as RequestId;
    try {
      answer({ id, ok: true, value: await dispatch(r) });
    } catch (e) {
      answer({ id, ok: false, error: encodeError(e) });
    }
    if (r.op === "exit") void finish();
  }

  function accept(line: string): void {
    if (finishing) return;
    const text = line.endsWith("\r") ? line.slice(0, -1) : line;
    if (text.trim() === "") return;
    const p = handle(text).catch((e) => log(`request failed unanswered: ${(e as Error).stack ?? String(e)}`));
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  }

  const lines = lineSplitter(accept);
  const onData = (chunk: Buffer | string) => lines.write(chunk);
  const onEnd = () => {
    lines.end();
    void finish();
  };
  const onInputError = (e: Error) => {
    log(`input failed: ${e.message}`);
    void finish();
  };
  const onOutputError = (e: Error) => {
    // Nobody is listening any more: answering is pointless, and the sockets must not outlive the lab.
    log(`output failed: ${e.message}`);
    outputOpen = false;
    void finish();
  };

  function finish(): Promise<void> {
    finishing ??= (async () => {
      input.off("data", onData);
      input.off("end", onEnd);
      input.off("close", onEnd);
      input.pause();
      // Closing wakes every pending wait (it rejects with ECANCELED), so the calls in flight all answer.
      closeAll();
      while (inflight.size > 0) await Promise.allSettled([...inflight]);
      closeAll(); // a call that finished meanwhile (an accept) may have opened one more
      for (const c of signals.values()) c.abort(new Error("agent exiting"));
      await trace?.stop().catch(() => {});
      trace = undefined;
      output.off("error", onOutputError);
      output.on("error", () => {});
      resolveDone();
    })();
    return finishing;
  }

  input.on("data", onData);
  input.on("end", onEnd);
  input.on("close", onEnd);
  input.on("error", onInputError);
  output.on("error", onOutputError);
  return done;
}
