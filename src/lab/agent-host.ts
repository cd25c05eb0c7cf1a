// A host reached only through its agent (a VM of the qemu backend, a Vagrant machine): its sockets,
// programs, socket table and sysctls are requests to the agent inside it, and its clock is mapped
// onto the lab's. Each backend says how the host boots and how it is powered.

import { PassThrough } from "node:stream";
import { parseSocketTable, type SocketRow } from "../evidence/socket-table.js";
import type { TraceEvent } from "../evidence/tracepoints.js";
import { SysError } from "../sys/errors.js";
import type { AgentClient } from "./agent-client.js";
import { connectFrom, listenOn } from "./common.js";
import type { Host, HostProcess, HostSocket, HostState } from "./host.js";
import type { StateEvent, TraceStatus } from "./lab.js";
import { SysctlError, sysctlPath } from "./sysctl.js";

/**
 * A guest's monotonic clock mapped onto this process's: an offset per stretch of guest time. A pause
 * stops the guest's clock, so each resume starts a new stretch with a new offset.
 */
export class GuestClock {
  readonly #stretches: Array<{ fromNs: bigint; offsetNs: bigint }> = [];
  /** The best round trip of the last sync: the mapping's error is at most half of it. */
  rttNs = 0n;

  /** Measures the offset now (best of five round trips) for guest times from `fromNs` on. */
  async sync(agent: AgentClient, fromNs?: bigint): Promise<void> {
    let best: { rtt: bigint; offset: bigint; guest: bigint } | undefined;
    for (let i = 0; i < 5; i++) {
      const t0 = process.hrtime.bigint();
      const g = await agent.clock();
      const t1 = process.hrtime.bigint();
      const rtt = t1 - t0;
      if (!best || rtt < best.rtt) best = { rtt, offset: (t0 + t1) / 2n - g, guest: g };
    }
    const b = best as { rtt: bigint; offset: bigint; guest: bigint };
    this.rttNs = b.rtt;
    this.#stretches.push({ fromNs: fromNs ?? 0n, offsetNs: b.offset });
  }

  /** The guest's clock reading now, from the last stretch: where a pause stops it. */
  guestNow(): bigint {
    const last = this.#stretches.at(-1);
    return last ? process.hrtime.bigint() - last.offsetNs : 0n;
  }

  /** A guest time on this process's monotonic clock. */
  toHost(guestNs: bigint): bigint {
    let offset = this.#stretches[0]?.offsetNs ?? 0n;
    for (const s of this.#stretches) if (guestNs >= s.fromNs) offset = s.offsetNs;
    return guestNs + offset;
  }
}

/** Events of a host's kernel on the lab's clock (`originNs`: the transcript's origin). */
export function onLabClock(events: readonly TraceEvent[], clock: GuestClock, originNs: bigint): StateEvent[] {
  return events.map((e) => {
    const atNs = clock.toHost(e.atNs);
    return { ...e, atNs, atUs: Number(atNs - originNs) / 1000 };
  });
}

/** A program run through the agent: it runs to completion, its output comes at its end. */
export class AgentProcess implements HostProcess {
  readonly pid = undefined;
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly host: string,
    readonly argv: readonly string[],
    agent: AgentClient,
  ) {
    this.exited = agent.run(argv, { timeoutMs: 60_000 }).then(
      (r) => {
        this.stdout.end(r.stdout);
        this.stderr.end(r.stderr);
        return { code: r.code, signal: r.signal as NodeJS.Signals | null };
      },
      (e: Error) => {
        this.stdout.end();
        this.stderr.end(`${e.message}\n`);
        return { code: null, signal: null };
      },
    );
  }

  /** The agent runs a program to completion: there is no process here to signal. */
  kill(): void {}
}

/** What every agent-reached host has: a name, addresses, and the agent of its current boot. */
export abstract class AgentHost implements Host {
  state: HostState = "off";
  generation = 0;
  readonly #sysctls: Record<string, string> = {};

  constructor(readonly name: string) {}

  abstract get ipv4(): string;
  abstract get ipv6(): string;
  abstract get mac(): string;
  /** The agent of the current boot; undefined while the host is off. */
  abstract get agent(): AgentClient | undefined;
  /** Its kernel's clock on the lab's, for the current boot. */
  abstract get guestClock(): GuestClock | undefined;

  get sysctls(): Readonly<Record<string, string>> {
    return { ...this.#sysctls };
  }

  /** The agent, or the error for a host that is off. */
  reach(what: string): AgentClient {
    const agent = this.agent;
    if (this.state === "off" || !agent) throw new Error(`${what} on ${this.name}: the host is powered off`);
    return agent;
  }

  async socket(options: { family?: "IPv4" | "IPv6" } = {}): Promise<HostSocket> {
    return this.reach("socket").socket(options);
  }

  listen(port = 0, options: { backlog?: number; family?: "IPv4" | "IPv6" } = {}): Promise<HostSocket> {
    return listenOn(this, port, options);
  }

  connect(
    address: string,
    port: number,
    options: { timeoutMs?: number; family?: "IPv4" | "IPv6" } = {},
  ): Promise<HostSocket> {
    return connectFrom(this, address, port, options);
  }

  spawn(argv: readonly string[]): HostProcess {
    return new AgentProcess(this.name, argv, this.reach("spawn"));
  }

  async sockets(): Promise<SocketRow[]> {
    const r = await this.reach("sockets").run(["ss", "-tanoiemHO"], { timeoutMs: 30_000 });
    if (r.code !== 0) throw new Error(`ss on ${this.name} exited with ${r.code ?? r.signal}: ${r.stderr.trim()}`);
    return parseSocketTable(r.stdout, this.name);
  }

  async sysctl(key: string): Promise<string> {
    const path = sysctlPath(key);
    try {
      return (await this.reach("sysctl").readFile(path)).trim().split(/\s+/).join(" ");
    } catch (e) {
      throw sysctlError(key, path, e);
    }
  }

  async setSysctls(values: Readonly<Record<string, string | number>>): Promise<Record<string, string>> {
    const agent = this.reach("setSysctls");
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(values)) {
      const path = sysctlPath(key);
      try {
        await agent.writeFile(path, String(value));
      } catch (e) {
        throw sysctlError(key, path, e, String(value));
      }
      out[key] = await this.sysctl(key);
      this.#sysctls[key] = out[key] as string;
    }
    return out;
  }
}

function sysctlError(key: string, path: string, e: unknown, value?: string): Error {
  const code = (e as { code?: string }).code;
  if (code === "ENOENT")
    return new SysctlError(`unknown sysctl ${key}: this kernel has no ${path}`, key, value, { cause: e });
  if (e instanceof SysError || code)
    return new SysctlError(`sysctl ${key}${value === undefined ? "" : `=${value}`}: ${code}`, key, value, {
      cause: e,
    });
  return e as Error;
}

export async function must(agent: AgentClient, host: string, argv: string[], input?: string): Promise<void> {
  const r = await agent.run(argv, { ...(input === undefined ? {} : { input }), timeoutMs: 60_000 });
  if (r.code !== 0)
    throw new Error(`\`${argv.join(" ")}\` on ${host} exited with ${r.code ?? r.signal}: ${r.stderr.trim()}`);
}

/**
 * The tracepoints of a lab's agent-reached hosts, each read through its agent and mapped onto the
 * lab's clock, kept across the boots of their kernels: what a kernel traced is taken (`keep`) before
 * a power-off, reset or panic ends it.
 */
export class GuestTraces {
  #on = false;
  #whyNot: string | undefined;
  readonly #past: StateEvent[] = [];

  constructor(
    readonly originNs: bigint,
    readonly hosts: () => Iterable<AgentHost>,
  ) {}

  get on(): boolean {
    return this.#on;
  }

  async start(): Promise<TraceStatus> {
    this.#on = true;
    try {
      for (const h of this.hosts()) if (h.agent && h.state !== "off") await h.agent.trace("start");
    } catch (e) {
      this.#on = false;
      this.#whyNot = (e as Error).message;
      return { available: false, reason: this.#whyNot };
    }
    return { available: true };
  }

  /** Before a host's kernel goes: what it traced, kept. */
  async keep(host: AgentHost): Promise<void> {
    const agent = host.agent;
    const clock = host.guestClock;
    if (!this.#on || !agent || !clock) return;
    try {
      this.#past.push(...onLabClock(await agent.trace("snapshot"), clock, this.originNs));
    } catch {}
  }

  async snapshot(): Promise<StateEvent[] | undefined> {
    if (!this.#on) return undefined;
    const live = await Promise.all(
      [...this.hosts()].map(async (h) => {
        const agent = h.agent;
        const clock = h.guestClock;
        if (!agent || !clock || h.state === "off" || h.state === "paused") return [];
        try {
          return onLabClock(await agent.trace("snapshot"), clock, this.originNs);
        } catch {
          return [];
        }
      }),
    );
    return [...this.#past, ...live.flat()].sort((a, b) => a.atUs - b.atUs);
  }

  status(): TraceStatus {
    if (this.#on) return { available: true };
    return { available: false, reason: this.#whyNot ?? "no trace was started for this run" };
  }

  async stop(): Promise<StateEvent[]> {
    const events = (await this.snapshot()) ?? [];
    for (const h of this.hosts()) await h.agent?.trace("stop").catch(() => {});
    this.#on = false;
    this.#past.length = 0;
    return events;
  }
}
