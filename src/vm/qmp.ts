// QEMU's machine protocol over a socket: the hypervisor's own hand on a VM's power, clocks and
// cables (quit, system_reset, stop/cont, set_link), with its events as they come.
import type { Socket } from "node:net";
import { lineSplitter } from "../agent/protocol.js";

/** An event QEMU sent (STOP, RESUME, RESET, SHUTDOWN, GUEST_PANICKED, …), on our clock. */
export interface QmpEvent {
  readonly event: string;
  readonly data?: Record<string, unknown>;
  readonly atMs: number;
}

/** QEMU refused a command: its class and description. */
export class QmpError extends Error {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    description: string,
  ) {
    super(`QMP ${command}: ${errorClass}: ${description}`);
  }
}
Object.defineProperty(QmpError.prototype, "name", { value: "QmpError" });

type Answer = { return?: unknown; error?: { class: string; desc: string }; id?: number };

/** A QMP session: negotiated once, then one command at a time or several, answered by id. */
export class Qmp {
  readonly events: QmpEvent[] = [];
  readonly #socket: Socket;
  readonly #pending = new Map<number, { command: string; resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly #waiters = new Set<{ match: (e: QmpEvent) => boolean; resolve: (e: QmpEvent) => void }>();
  #next = 1;
  #greeting: Promise<void>;
  #closed: Error | undefined;

  constructor(socket: Socket) {
    this.#socket = socket;
    let greeted: () => void = () => {};
    this.#greeting = new Promise((r) => {
      greeted = r;
    });
    const lines = lineSplitter((line) => {
      if (!line.trim()) return;
      const msg = JSON.parse(line) as Answer & { QMP?: unknown; event?: string; data?: Record<string, unknown> };
      if (msg.QMP) return greeted();
      if (msg.event) {
        const e: QmpEvent = { event: msg.event, ...(msg.data ? { data: msg.data } : {}), atMs: performance.now() };
        this.events.push(e);
        for (const w of this.#waiters) {
          if (w.match(e)) {
            this.#waiters.delete(w);
            w.resolve(e);
          }
        }
        return;
      }
      const p = msg.id === undefined ? undefined : this.#pending.get(msg.id);
      if (!p) return;
      this.#pending.delete(msg.id as number);
      if (msg.error) p.reject(new QmpError(p.command, msg.error.class, msg.error.desc));
      else p.resolve(msg.return);
    });
    socket.on("data", (d: Buffer) => lines.write(d));
    const gone = () => {
      this.#closed ??= new Error("QMP: QEMU closed the monitor (it exited)");
      for (const p of this.#pending.values()) p.reject(this.#closed);
      this.#pending.clear();
    };
    socket.on("close", gone);
    socket.on("error", gone);
  }

  /** Waits for QEMU's greeting and enters command mode. */
  async negotiate(): Promise<void> {
    await this.#greeting;
    await this.execute("qmp_capabilities");
  }

  /** Runs a command; resolves with its return, rejects with QmpError. */
  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.#closed) return Promise.reject(this.#closed);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { command, resolve, reject });
      this.#socket.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id })}\n`);
    });
  }

  /** The next event `name` (after now), bounded. */
  nextEvent(name: string, boundMs: number): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const w = {
        match: (e: QmpEvent) => e.event === name,
        resolve: (e: QmpEvent) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(w);
        reject(new Error(`QMP: no ${name} event within ${boundMs} ms`));
      }, boundMs);
      this.#waiters.add(w);
    });
  }

  /** `running`, `paused`, `prelaunch`, `shutdown`, `guest-panicked`, … */
  async status(): Promise<string> {
    return ((await this.execute("query-status")) as { status: string }).status;
  }
}
