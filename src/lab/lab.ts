// The Lab every backend gives: hosts on switches, faults, evidence. Scenarios, the runner and tune
// are written against this interface and never name a backend; netns/ (namespaces on a bridge),
// qemu/ (each host a VM) and vagrant/ (Vagrant machines) implement it.

import type { Packet } from "../evidence/capture.js";
import type { KernelFacts } from "../evidence/kernel-facts.js";
import type { TraceEvent } from "../evidence/tracepoints.js";
import type { Transcript } from "../sys/transcript.js";
import type { Host, HostProcess, HostSocket } from "./host.js";

/** The backends a lab can be built on. */
export const BACKENDS = ["netns", "qemu", "vagrant"] as const;

/** A backend's name, as `--backend` takes it and the report records it. */
export type Backend = (typeof BACKENDS)[number];

/** Every fault a Lab method gives, by the method's name: what a scenario declares it needs. */
export const FAULTS = [
  "powerOff",
  "powerCycle",
  "powerOn",
  "shutdown",
  "kill",
  "exitApplication",
  "pause",
  "resume",
  "unplug",
  "replug",
  "partition",
  "heal",
  "loss",
  "crash",
] as const;

/** A fault, named as the Lab method that gives it. */
export type Fault = (typeof FAULTS)[number];

/** One fault, on the lab's clock, for the report and the ladder diagram. */
export interface FaultEvent {
  readonly atUs: number;
  readonly fault: string;
  readonly hosts: readonly string[];
  readonly detail?: string;
  /** What the backend did to give it: "ip link del h0" (netns), "QMP system_reset" (qemu). */
  readonly command?: string;
}

/** What a backend's pause does to a host. */
export interface PauseSemantics {
  /** The host's own clocks (and so its TCP timers) stand still while it is paused. */
  readonly clocksStop: boolean;
  /**
   * Packets sent to it meanwhile: "dropped" (at the switch), or "queued" where they wait, bounded,
   * for the host to run again (a stopped QEMU reads nothing from its tap, whose queue holds them).
   */
  readonly inbound: "dropped" | "queued";
}

/** How a lab is made. */
export interface LabOptions {
  /** A label for logs and evidence file names. */
  readonly name?: string;
  /** Shared clock and call record; a new one by default. */
  readonly transcript?: Transcript;
  /** Switch names; one called "sw0" by default. */
  readonly switches?: readonly string[];
  /**
   * How the lab reaches its hosts' sockets: "in-process" (default, netns only) creates them here by
   * setns; "agent" runs an agent in each host and speaks JSON lines to it, as the VM backends must.
   */
  readonly control?: "in-process" | "agent";
}

/** How a host is made. */
export interface HostOptions {
  /** The switch it plugs into (default: the first). */
  readonly switch?: string;
  /** `net.*` sysctls, applied before its link comes up and again after every power cycle. */
  readonly sysctls?: Readonly<Record<string, string | number>>;
  /**
   * Overrides the lab's control for this host. "agent" gives the host a process of its own, which
   * matters where the kernel looks at the process: an in-process socket shares our descriptor table
   * with every program the lab forks, so a close() racing a fork is finished by the child's exec,
   * and a lingering close (SO_LINGER) then does not block the caller.
   */
  readonly control?: "in-process" | "agent";
}

/** Whether TCP state evidence is recorded, and if not, why. */
export interface TraceStatus {
  readonly available: boolean;
  readonly reason?: string;
}

/** A TCP state change, reset or retransmission from the kernel's tracepoints, on the lab's clock. */
export type StateEvent = TraceEvent & { atUs: number };

/** One TCP_INFO reading of a socket, on the lab's clock. */
export interface TcpInfoSample {
  readonly atUs: number;
  readonly info: Awaited<ReturnType<HostSocket["tcpInfo"]>>;
}

/** A lab: hosts on virtual switches, the faults a backend can give them, and the evidence. */
export interface Lab {
  /** A label for logs and evidence file names. */
  readonly name: string;
  /** Which backend built it. */
  readonly backend: Backend;
  /** Every host's calls on one clock. */
  readonly transcript: Transcript;
  /** Every fault given so far, in order. */
  readonly faults: readonly FaultEvent[];
  /**
   * The faults this backend can give, each with how it gives it (e.g. pause on netns: "emulated:
   * port drops + SIGSTOP; kernel timers keep running"), so a runner can decide before running.
   */
  readonly capabilities: ReadonlyMap<Fault, string>;
  /** What `pause` does here: whether the host's clocks stop with it, and what becomes of packets sent to it meanwhile. */
  readonly pauseSemantics: PauseSemantics;
  /** The typed error for a fault this backend cannot give, saying what it offers instead; undefined if it can. */
  unsupported(fault: Fault): UnsupportedFaultError | undefined;
  /**
   * The bound on a scenario whose own bound on netns is `ms`: a backend whose hosts boot, or answer
   * through a slow agent, gives more. Only sockprobe's safety net stretches; no check's tolerance does.
   */
  boundFor?(ms: number): number;
  /** What the hosts' kernel has, as the model reads it: its release, knobs and tracepoint fields. */
  kernelFacts(): Promise<KernelFacts>;

  /** Adds a host with lab addresses and a fixed MAC, plugged into a switch. */
  addHost(name: string, options?: HostOptions): Promise<Host>;
  /** Adds a router between switches: hosts on each reach the others through it. */
  addRouter(name: string, switches: readonly string[], options?: HostOptions): Promise<Host>;
  /** A host by name. */
  host(name: string): Host;
  /** Every host, routers included. */
  hosts(): Host[];

  /** Power off: nothing the host sends arrives again; its programs and kernel state are gone. */
  powerOff(h: Host | string): Promise<void>;
  /** Power off, then the same name, addresses, MAC and sysctls with empty kernel state. */
  powerCycle(h: Host | string, options?: { bootDelayMs?: number }): Promise<void>;
  /** Boots a host that is off. */
  powerOn(h: Host | string): Promise<void>;
  /** Graceful stop: sockets closed and programs terminated the normal way (FINs), then power off. */
  shutdown(h: Host | string, options?: { graceMs?: number }): Promise<void>;
  /** Sends a signal to a program (SIGKILL by default): the kernel closes its sockets as on any exit. */
  kill(p: HostProcess, signal?: NodeJS.Signals): Promise<void>;
  /** Every socket sockprobe holds on the host closed, as its application's exit would. */
  exitApplication(h: Host | string): Promise<void>;
  /** The host stops answering with its state kept (how depends on the backend: see capabilities). */
  pause(h: Host | string): Promise<void>;
  /** Resumes a paused host. */
  resume(h: Host | string): Promise<void>;
  /** Pulls the host's cable: its link loses carrier. */
  unplug(h: Host | string): Promise<void>;
  /** Plugs the cable back in; returns once the link is in service. */
  replug(h: Host | string): Promise<void>;
  /** No packet passes between any host of `a` and any host of `b`, in either direction, until heal(). */
  partition(a: ReadonlyArray<Host | string>, b: ReadonlyArray<Host | string>): Promise<void>;
  /** Ends every partition. */
  heal(): Promise<void>;
  /** Drops `percent` of the packets the host sends and of those sent to it. */
  loss(h: Host | string, percent: number): Promise<void>;
  /** The host's kernel panics: it stops dead without a word, as a guest kernel given sysrq `c` does. */
  crash(h: Host | string): Promise<void>;

  /** Starts a packet capture on every host's link (and on each new boot), into pcap files under `dir`. */
  startCapture(dir?: string): Promise<string>;
  /** Stops every capture and returns the packets of all hosts on the lab's clock, in time order. */
  stopCapture(): Promise<{ packets: Packet[]; files: string[] }>;
  /** The packets captured so far, capture still running. */
  capturedPackets(): Promise<Packet[]>;
  /** The wall-clock µs at the transcript's origin: converts pcap timestamps onto the lab's clock. */
  originRealtimeUs(): number;
  /** Starts recording TCP state changes of this lab's addresses; unavailable (and why) where tracefs is missing. */
  startTrace(): Promise<TraceStatus>;
  /** The trace so far, without stopping it; undefined when no trace runs. */
  traceSnapshot(): Promise<StateEvent[] | undefined>;
  /** Why there is no trace: tracefs unavailable (and why), or none started. */
  traceStatus(): TraceStatus;
  /** Stops the trace and returns its events. */
  stopTrace(): Promise<StateEvent[]>;
  /** Samples TCP_INFO of a socket every intervalMs until `until` settles or maxSamples are taken. */
  sampleTcpInfo(
    socket: HostSocket,
    options: { intervalMs: number; until: Promise<unknown>; maxSamples?: number },
  ): Promise<TcpInfoSample[]>;

  /** Tears everything down: programs, sockets, captures, trace, hosts. Safe to call twice. */
  close(): Promise<void>;
}

/** A fault the lab's backend cannot give: a scenario that needs it is skipped with this reason. */
export class UnsupportedFaultError extends Error {
  declare readonly code: "ESOCKPROBE_UNSUPPORTED_FAULT";

  constructor(
    readonly backend: string,
    /** The fault, or "run" for a scenario that cannot run on this backend at all. */
    readonly fault: Fault | "run",
    /** Why not, and what to use instead (another backend, or a fault this one gives). */
    readonly instead: string,
    options?: ErrorOptions,
  ) {
    super(
      fault === "run"
        ? `the ${backend} backend cannot run it: ${instead}`
        : `the ${backend} backend cannot give ${fault}: ${instead}`,
      options,
    );
    Object.defineProperty(this, "code", { value: "ESOCKPROBE_UNSUPPORTED_FAULT", enumerable: true });
  }
}
Object.defineProperty(UnsupportedFaultError.prototype, "name", { value: "UnsupportedFaultError" });

/** Whether an error is an UnsupportedFaultError, also one from another copy of this module. */
export function isUnsupportedFault(e: unknown): e is UnsupportedFaultError {
  return (
    e instanceof UnsupportedFaultError || (e as { code?: unknown } | null)?.code === "ESOCKPROBE_UNSUPPORTED_FAULT"
  );
}

/**
 * What a backend answers for `Lab.unsupported`: undefined for a fault in its capabilities, else the
 * error with the backend's own reason (`why`), or a list of what it gives.
 */
export function unsupportedFault(
  backend: string,
  capabilities: ReadonlyMap<Fault, string>,
  fault: Fault,
  why: Partial<Readonly<Record<Fault, string>>> = {},
): UnsupportedFaultError | undefined {
  if (capabilities.has(fault)) return undefined;
  return new UnsupportedFaultError(backend, fault, why[fault] ?? `it gives ${[...capabilities.keys()].join(", ")}`);
}
