// The netns backend: each host a network namespace plugged into a bridge that lives in the
// lab's switch namespace. Every namespace is held only by a descriptor of this process and every
// child program dies with it, so a crash or kill -9 leaves nothing behind: no mount, no name in
// /run/netns, no link in the machine's own namespace, no process.

import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import type { Packet } from "../../evidence/capture.js";
import { type KernelFacts, localKernelFacts } from "../../evidence/kernel-facts.js";
import { socketTable } from "../../evidence/socket-table.js";
import { startTraceStream, type TraceEvent, type TraceStream, tracefsStatus } from "../../evidence/tracepoints.js";
import { run, spawnIn } from "../../proc/exec.js";
import { requireTools } from "../../proc/tools.js";
import { Netns, Socket } from "../../sys/socket.js";
import { Transcript } from "../../sys/transcript.js";
import { AddressPlan, type InterfacePlan, type LabIdLease, leaseLabId, MAX_HOSTS_PER_SWITCH } from "../addressing.js";
import { AgentClient } from "../agent-client.js";
import { connectFrom, faultEvent, hostNamed, hostOf, listenOn, sampleTcpInfo } from "../common.js";
import type { Host, HostProcess, HostSocket, HostState } from "../host.js";
import {
  type Fault,
  type FaultEvent,
  type HostOptions,
  type Lab,
  type LabOptions,
  type PauseSemantics,
  type StateEvent,
  type TcpInfoSample,
  type TraceStatus,
  type UnsupportedFaultError,
  unsupportedFault,
} from "../lab.js";
import { BASE_SYSCTLS, QUIET_RULES } from "../quiet.js";
import { LabSwitch } from "../switch.js";
import { readSysctl, writeSysctl } from "../sysctl.js";
import { localHostSocket } from "./local-socket.js";

/** How the netns backend gives each fault it can. */
const NETNS_CAPABILITIES: ReadonlyMap<Fault, string> = new Map<Fault, string>([
  ["powerOff", "links deleted at the switch first, then its programs killed and its namespace (kernel state) dropped"],
  ["powerCycle", "power off, then a new namespace with the same name, addresses, MAC and sysctls"],
  ["powerOn", "a new namespace with the same name, addresses, MAC and sysctls, plugged in"],
  ["shutdown", "sockets closed and programs sent SIGTERM, FIN exchanges awaited, then power off"],
  ["kill", "a signal to the program; SIGKILL ends its PID namespace"],
  ["exitApplication", "every socket of the host closed as by a process exit"],
  ["pause", "emulated: port drops + SIGSTOP; kernel timers keep running"],
  ["resume", "port drops lifted + SIGCONT"],
  ["unplug", "switch port down: carrier lost on both ends"],
  ["replug", "switch port up, back in service"],
  ["partition", "nftables drops between the ports on the bridge, by address on routers"],
  ["heal", "the partition drops removed"],
  ["loss", "nftables numgen drops on the host's port (this kernel has no netem)"],
]);

// Why the netns backend cannot give the faults it lacks, and what to use instead.
const NETNS_CANNOT: Partial<Record<Fault, string>> = {
  crash:
    "the netns backend has no kernel of its own to panic; use --backend qemu, or powerOff, which gives its peers the same silence",
};

const LAB_NAME = /^[a-z][a-z0-9-]{0,14}$/;

/**
 * One tracing instance for every lab of this process, read as it goes. Tracepoints see the whole
 * machine and carry no namespace, so each lab filters by its own addresses anyway; one stream that
 * consumes the buffer replaces a buffer per lab that a busy neighbour could overrun, and a snapshot
 * costs only the events that are new.
 */
const sharedTrace = (() => {
  let stream: TraceStream | undefined;
  let starting: Promise<TraceStream> | undefined;
  let users = 0;
  return {
    async acquire(): Promise<void> {
      users++;
      starting ??= startTraceStream({ bufferKb: 4096 }).then((t) => (stream = t));
      try {
        await starting;
      } catch (e) {
        users--;
        starting = undefined;
        throw e;
      }
    },
    async snapshot(): Promise<TraceEvent[]> {
      return stream ? stream.snapshot() : [];
    },
    async release(): Promise<void> {
      users--;
      if (users > 0 || !stream) return;
      const t = stream;
      stream = undefined;
      starting = undefined;
      await t.stop();
    },
  };
})();

// One boot of a host: its namespace and everything that lives in it.
interface Generation {
  readonly ns: Netns;
  readonly sockets: Set<Socket>;
  readonly processes: Set<NetnsProcess>;
  agent?: AgentClient;
}

class NetnsProcess implements HostProcess {
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly #child: ReturnType<typeof spawnIn>;
  #done = false;

  constructor(
    readonly host: string,
    readonly argv: readonly string[],
    netns: string,
  ) {
    // Its own PID namespace: when the outer process dies (with us, by PR_SET_PDEATHSIG), the
    // kernel kills every process the program started, daemons included.
    this.#child = spawnIn(["unshare", "--pid", "--fork", "--kill-child", "--", ...argv], netns);
    this.exited = new Promise((resolve) => {
      this.#child.on("close", (code, signal) => {
        this.#done = true;
        resolve({ code, signal });
      });
      this.#child.on("error", () => {
        this.#done = true;
        resolve({ code: null, signal: null });
      });
    });
    this.#child.stdin?.end();
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }
  get stdout(): Readable {
    return this.#child.stdout as Readable;
  }
  get stderr(): Readable {
    return this.#child.stderr as Readable;
  }
  get done(): boolean {
    return this.#done;
  }

  /**
   * SIGKILL ends the whole PID namespace. Other signals go to the program, which is its namespace's
   * PID 1: as in a container, it receives only signals it handles (see Lab.shutdown).
   */
  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    if (this.#done || this.#child.pid === undefined) return;
    if (signal === "SIGKILL") {
      this.#child.kill("SIGKILL");
      return;
    }
    for (const pid of childrenOf(this.#child.pid)) {
      try {
        process.kill(pid, signal);
      } catch {}
    }
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

class NetnsHost implements Host {
  state: HostState = "running";
  generation = 0;
  gen!: Generation;
  readonly #sysctls: Record<string, string> = {};

  constructor(
    readonly lab: NetnsLab,
    readonly name: string,
    readonly index: number,
    readonly switchIndex: number,
    readonly plan: InterfacePlan,
    readonly desiredSysctls: Readonly<Record<string, string | number>>,
    readonly control?: "in-process" | "agent",
  ) {}

  get ipv4(): string {
    return this.plan.ipv4;
  }
  get ipv6(): string {
    return this.plan.ipv6;
  }
  get mac(): string {
    return this.plan.mac;
  }
  /** The port's name on the switch. */
  get port(): string {
    return `h${this.index}`;
  }
  /** A path nsenter and ip accept for this host's current namespace. */
  get netnsPath(): string {
    return this.gen.ns.path;
  }
  get sysctls(): Readonly<Record<string, string>> {
    return { ...this.#sysctls };
  }

  #alive(what: string): Generation {
    if (this.state === "off") throw new Error(`${what} on ${this.name}: the host is powered off`);
    return this.gen;
  }

  async socket(options: { family?: "IPv4" | "IPv6" } = {}): Promise<HostSocket> {
    const gen = this.#alive("socket");
    if (gen.agent) return gen.agent.socket(options);
    const s = Socket.create({
      netns: gen.ns,
      family: options.family ?? "IPv4",
      host: this.name,
      transcript: this.lab.transcript,
    });
    return localHostSocket(s, gen.sockets);
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
    const gen = this.#alive("spawn");
    const p = new NetnsProcess(this.name, argv, gen.ns.path);
    gen.processes.add(p);
    p.exited.then(() => gen.processes.delete(p));
    return p;
  }

  async sockets() {
    return socketTable(this.#alive("sockets").ns.path, { host: this.name });
  }

  async sysctl(key: string): Promise<string> {
    return readSysctl(this.#alive("sysctl").ns, key);
  }

  async setSysctls(values: Readonly<Record<string, string | number>>): Promise<Record<string, string>> {
    const gen = this.#alive("setSysctls");
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(values)) {
      out[key] = writeSysctl(gen.ns, key, value);
      this.#sysctls[key] = out[key] as string;
    }
    return out;
  }

  /** A boot: new namespace, sysctls, then the link into the switch with the same addresses and MAC. */
  async boot(): Promise<void> {
    const ns = Netns.create();
    const gen: Generation = { ns, sockets: new Set(), processes: new Set() };
    this.gen = gen;
    this.generation++;
    this.state = "running";
    // A lab closed (or the host powered off) during a boot destroys this generation: stop there.
    const ended = () => this.gen !== gen || this.state === "off" || ns.closed;
    const gone = (cause?: unknown) =>
      new Error(`${this.name} was powered off while it booted (its lab closed?)`, { cause });
    const live = () => {
      if (ended()) throw gone();
    };
    try {
      for (const [k, v] of Object.entries(BASE_SYSCTLS)) writeSysctl(ns, k, v);
      await run(["nft", "-f", "-"], { netns: ns.path, input: QUIET_RULES });
      live();
      // Interface keys (neigh.eth0.*, conf.eth0.*) exist only once the link does; the rest go first,
      // so that defaults are in force when the link is made.
      const wanted = Object.entries({ ...this.desiredSysctls, ...this.#sysctls });
      const perLink = (k: string) => /\.(neigh|conf)\.eth\d+\./.test(k);
      await this.setSysctls(Object.fromEntries(wanted.filter(([k]) => !perLink(k))));
      await this.lab.plug(this);
      live();
      await this.setSysctls(Object.fromEntries(wanted.filter(([k]) => perLink(k))));
      if ((this.control ?? this.lab.control) === "agent") {
        gen.agent = await AgentClient.spawn(ns.path, this.name, this.lab.transcript);
        live();
      }
    } catch (e) {
      const interrupted = ended();
      gen.agent?.kill();
      ns.close();
      if (this.gen === gen) this.state = "off";
      throw interrupted ? gone(e) : e;
    }
  }

  /** Ends the current boot: programs killed, sockets closed, namespace released. */
  destroy(): void {
    const gen = this.gen;
    if (!gen) return;
    for (const p of gen.processes) p.kill("SIGKILL");
    gen.agent?.kill();
    for (const s of gen.sockets) s.discard();
    gen.sockets.clear();
    gen.ns.close();
    this.state = "off";
  }

  /** What an application exit does: its sockets closed the normal way, its programs ended. */
  async exitApplications(graceMs: number): Promise<void> {
    const gen = this.gen;
    for (const s of gen.sockets) if (!s.closed) s.close();
    await gen.agent?.closeAll();
    for (const p of gen.processes) p.kill("SIGTERM");
    const all = Promise.all([...gen.processes].map((p) => p.exited));
    const timer = setTimeout(() => {
      for (const p of gen.processes) p.kill("SIGKILL");
    }, graceMs);
    await all;
    clearTimeout(timer);
  }
}

// Labs not yet closed, released on process exit by one hook however many there are.
const openLabs = new Set<{ releaseSync(): void }>();
function releaseOpenLabs(): void {
  for (const lab of [...openLabs]) lab.releaseSync();
}

/** A lab of network namespaces on virtual switches, with faults and evidence. */
export class NetnsLab implements Lab {
  readonly backend = "netns";
  readonly pauseSemantics: PauseSemantics = { clocksStop: false, inbound: "dropped" };
  readonly capabilities = NETNS_CAPABILITIES;
  readonly transcript: Transcript;
  readonly plan: AddressPlan;
  readonly control: "in-process" | "agent";
  readonly faults: FaultEvent[] = [];
  readonly name: string;
  readonly #lease: LabIdLease;
  readonly #switch: LabSwitch;
  readonly #hosts = new Map<string, NetnsHost>();
  readonly #routers = new Map<string, { host: NetnsHost; switches: number[] }>();
  #nextIndex = 0;
  #closed = false;
  #trace: { fromNs: bigint; addresses: Set<string> } | undefined;

  private constructor(
    name: string,
    lease: LabIdLease,
    sw: LabSwitch,
    transcript: Transcript,
    control: "in-process" | "agent",
  ) {
    this.name = name;
    this.control = control;
    this.#lease = lease;
    this.plan = new AddressPlan(lease.id);
    this.#switch = sw;
    this.transcript = transcript;
    openLabs.add(this);
    if (openLabs.size === 1) process.once("exit", releaseOpenLabs);
  }

  /** Builds the switch namespace and its bridges. */
  static async create(options: LabOptions = {}): Promise<NetnsLab> {
    const name = options.name ?? "lab";
    if (!LAB_NAME.test(name))
      throw new TypeError(`lab name ${JSON.stringify(name)}: use 1-15 lowercase letters, digits or -`);
    requireTools(["ip", "nsenter", "setpriv", "nft"]);
    // Ports are looked up through the lab once it exists: the switch asks for them only after.
    let lab: NetnsLab | undefined;
    const sw = await LabSwitch.create([...(options.switches ?? ["sw0"])], (host) => lab?.portsOf(host) ?? []);
    let lease: LabIdLease;
    try {
      lease = await leaseLabId();
    } catch (e) {
      sw.releaseSync();
      throw e;
    }
    lab = new NetnsLab(name, lease, sw, options.transcript ?? new Transcript(), options.control ?? "in-process");
    return lab;
  }

  /** The lab's id, which picks its address slice. */
  get id(): number {
    return this.plan.labId;
  }

  /** Path of the switch namespace, e.g. to capture on a bridge (`br0`). */
  get switchNetns(): string {
    return this.#switch.path;
  }

  #switchIndex(name: string | undefined): number {
    return this.#switch.index(name);
  }

  /** A host's ports on the switch; none while it is off. */
  portsOf(name: string): string[] {
    const h = this.#hosts.get(name);
    return h && h.state !== "off" ? this.#ports(h) : [];
  }

  #open(): void {
    if (this.#closed) throw new Error(`lab ${this.name} is closed`);
  }

  /** Adds a host: a namespace with IPv4 and IPv6 addresses and a fixed MAC, plugged into a switch. */
  async addHost(name: string, options: HostOptions = {}): Promise<Host> {
    this.#open();
    if (!LAB_NAME.test(name))
      throw new TypeError(`host name ${JSON.stringify(name)}: use 1-15 lowercase letters, digits or -`);
    if (this.#hosts.has(name)) throw new TypeError(`host ${name} exists already in lab ${this.name}`);
    const sw = this.#switchIndex(options.switch);
    const onSwitch = [...this.#hosts.values()].filter((h) => h.switchIndex === sw).length;
    if (onSwitch >= MAX_HOSTS_PER_SWITCH)
      throw new RangeError(`switch ${this.#switch.names[sw]} is full (${MAX_HOSTS_PER_SWITCH} hosts)`);
    const host = new NetnsHost(
      this,
      name,
      this.#nextIndex++,
      sw,
      this.plan.iface(sw, onSwitch),
      options.sysctls ?? {},
      options.control,
    );
    this.#hosts.set(name, host);
    try {
      await host.boot();
    } catch (e) {
      this.#hosts.delete(name);
      throw e;
    }
    return host;
  }

  /** Adds a router between switches: hosts on each reach the others through it. */
  async addRouter(name: string, switches: readonly string[], options: HostOptions = {}): Promise<Host> {
    this.#open();
    const idx = switches.map((s) => this.#switchIndex(s));
    if (idx.length < 2) throw new TypeError("a router joins at least two switches");
    if ([...this.#routers.values()].some((r) => r.switches.some((s) => idx.includes(s)))) {
      throw new TypeError("a switch has one router at most");
    }
    const sysctls = { "net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1, ...options.sysctls };
    const host = new NetnsHost(
      this,
      name,
      this.#nextIndex++,
      idx[0] as number,
      this.plan.router(idx[0] as number),
      sysctls,
    );
    this.#routers.set(name, { host, switches: idx });
    this.#hosts.set(name, host);
    try {
      await host.boot();
    } catch (e) {
      this.#hosts.delete(name);
      this.#routers.delete(name);
      throw e;
    }
    // Hosts already on those switches learn their way through it.
    await Promise.all(
      [...this.#hosts.values()].filter((h) => h !== host && idx.includes(h.switchIndex)).map((h) => this.#routes(h)),
    );
    return host;
  }

  #routerFor(sw: number): NetnsHost | undefined {
    for (const r of this.#routers.values()) if (r.switches.includes(sw)) return r.host;
    return undefined;
  }

  async #routes(host: NetnsHost): Promise<void> {
    const router = this.#routerFor(host.switchIndex);
    if (!router || router === host || host.state === "off") return;
    const gw = this.plan.router(host.switchIndex);
    await run(["ip", "-batch", "-"], {
      netns: host.netnsPath,
      input: [
        `route replace ${this.plan.subnet4} via ${gw.ipv4}`,
        `route replace fd00:5b:${this.id.toString(16)}::/48 via ${gw.ipv6}`,
      ].join("\n"),
    });
  }

  /** Creates the host's links: a veth per switch, the host end named eth<N> with its addresses and MAC. */
  async plug(host: NetnsHost): Promise<void> {
    const router = this.#routers.get(host.name);
    const switches = router ? router.switches : [host.switchIndex];
    const ports = this.#ports(host);
    const swCmds: string[] = [];
    const hostCmds: string[] = [];
    switches.forEach((sw, n) => {
      const plan = router ? this.plan.router(sw) : host.plan;
      const port = ports[n] as string;
      swCmds.push(
        `link add ${port} type veth peer name eth${n} address ${plan.mac} netns ${host.netnsPath}`,
        `link set ${port} master br${sw} up`,
      );
      hostCmds.push(
        `addr add ${plan.ipv4}/${plan.prefix4} dev eth${n}`,
        `addr add ${plan.ipv6}/${plan.prefix6} dev eth${n} nodad`,
        `link set eth${n} up`,
      );
    });
    await this.#switchRun(swCmds);
    await run(["ip", "-batch", "-"], { netns: host.netnsPath, input: hostCmds.join("\n") });
    await this.#waitForwarding(host);
    if (!router) await this.#routes(host);
    await this.#switch.captureHost(host.name, host.generation);
    await this.#applyRules(true);
  }

  /** A host by name. */
  host(name: string): Host {
    return hostNamed(this.#hosts, name, this.name);
  }

  /** Every host, routers included. */
  hosts(): Host[] {
    return [...this.#hosts.values()];
  }

  #impl(h: Host | string): NetnsHost {
    return hostOf(this.#hosts, h, this.name);
  }

  // Records a fault with what was done to give it (`command`), as the report and the ladder show it.
  #fault(fault: string, hosts: NetnsHost[], command: string, detail?: string): void {
    this.faults.push(faultEvent(this.transcript, fault, hosts, command, detail));
  }

  /** The typed error for a fault the netns backend cannot give; undefined for one it can. */
  /** The hosts share this process's kernel. */
  async kernelFacts(): Promise<KernelFacts> {
    return localKernelFacts();
  }

  unsupported(fault: Fault): UnsupportedFaultError | undefined {
    return unsupportedFault(this.backend, this.capabilities, fault, NETNS_CANNOT);
  }

  /** A kernel panic needs a kernel of the host's own: always UnsupportedFaultError here. */
  async crash(h: Host | string): Promise<void> {
    this.#impl(h);
    throw this.unsupported("crash") as UnsupportedFaultError;
  }

  async #switchRun(cmds: string[]): Promise<void> {
    await this.#switch.run(cmds);
  }

  #ports(host: NetnsHost): string[] {
    const router = this.#routers.get(host.name);
    return router ? router.switches.map((_, n) => (n === 0 ? host.port : `${host.port}x${n}`)) : [host.port];
  }

  /**
   * Power off: its links are removed first, so nothing it sends ever arrives again; then its
   * programs are killed and its kernel state (sockets, timers, TIME_WAIT) is dropped with its namespace.
   * The peers' ARP entries for it stay, as with a real machine losing power.
   */
  async powerOff(h: Host | string): Promise<void> {
    const host = this.#impl(h);
    if (host.state === "off") throw new Error(`powerOff: ${host.name} is already off`);
    const cmds = this.#ports(host).map((p) => `link del ${p}`);
    this.#fault("powerOff", [host], `ip ${cmds.join("; ip ")}; SIGKILL to its programs; its namespace closed`);
    await this.#switchRun(cmds);
    host.destroy();
    this.#switch.silenced.delete(host.name);
  }

  /** Power off, then after bootDelayMs the same name, addresses, MAC and sysctls return with empty kernel state. */
  async powerCycle(h: Host | string, options: { bootDelayMs?: number } = {}): Promise<void> {
    const host = this.#impl(h);
    await this.powerOff(host);
    const delay = options.bootDelayMs ?? 0;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    await this.powerOn(host);
  }

  /** Boots a host that is off. */
  async powerOn(h: Host | string): Promise<void> {
    const host = this.#impl(h);
    if (host.state !== "off") throw new Error(`powerOn: ${host.name} is not off`);
    await host.boot();
    this.#fault(
      "boot",
      [host],
      `a new namespace; ip link add ${host.port} type veth peer name eth0 address ${host.mac}`,
      `generation ${host.generation}`,
    );
  }

  /**
   * Graceful stop: its sockets are closed and its programs terminated the normal way (FIN, or RST
   * where unread data remains), the FIN exchanges get time to finish, then the power goes off.
   */
  async shutdown(h: Host | string, options: { graceMs?: number } = {}): Promise<void> {
    const host = this.#impl(h);
    const graceMs = options.graceMs ?? 2000;
    this.#fault(
      "shutdown",
      [host],
      "close() of its sockets, SIGTERM to its programs, FIN exchanges awaited; then powerOff",
    );
    await host.exitApplications(graceMs);
    const deadline = Date.now() + graceMs;
    const closing = new Set(["FIN_WAIT1", "CLOSING", "LAST_ACK"]);
    while (Date.now() < deadline) {
      const rows = await host.sockets();
      if (!rows.some((r) => closing.has(r.state))) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    await this.powerOff(host);
  }

  /** Kills a program (SIGKILL by default): the kernel closes its sockets as on any exit. */
  async kill(p: HostProcess, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    this.#fault(
      "kill",
      [this.#impl(p.host)],
      `kill -s ${signal} ${p.pid ?? "(not started)"}`,
      `${p.argv.join(" ")} ${signal}`,
    );
    p.kill(signal);
    if (signal === "SIGKILL") await p.exited;
  }

  /** The host's application exits: every socket sockprobe holds on it is closed, as the process's exit would. */
  async exitApplication(h: Host | string): Promise<void> {
    const host = this.#impl(h);
    this.#fault("exit", [host], "close() of every socket sockprobe holds on it; SIGTERM to its programs");
    await host.exitApplications(0);
  }

  /**
   * Pause, emulated: the host goes silent (the switch drops all it sends and all sent to it) and its
   * programs are stopped, but its kernel keeps running: unlike a paused VM, its TCP timers still
   * fire, so its own retransmissions and keepalives continue (and are dropped).
   */
  async pause(h: Host | string): Promise<void> {
    const host = this.#impl(h);
    this.#fault(
      "pause",
      [host],
      `nft bridge drop iifname/oifname ${this.#ports(host).join(",")}; SIGSTOP to its programs`,
    );
    this.#switch.silenced.add(host.name);
    await this.#applyRules();
    for (const p of host.gen.processes) p.kill("SIGSTOP");
    host.state = "paused";
  }

  /** Resumes a paused host. */
  async resume(h: Host | string): Promise<void> {
    const host = this.#impl(h);
    this.#fault(
      "resume",
      [host],
      `nft bridge drops of ${this.#ports(host).join(",")} removed; SIGCONT to its programs`,
    );
    this.#switch.silenced.delete(host.name);
    await this.#applyRules();
    for (const p of host.gen.processes) p.kill("SIGCONT");
    host.state = "running";
  }

  /** Pulls the host's cable at the switch: its link loses carrier on both ends. */
  async unplug(h: Host | string): Promise<void> {
    const host = this.#impl(h);
    const cmds = this.#ports(host).map((p) => `link set ${p} down`);
    this.#fault("unplug", [host], `ip ${cmds.join("; ip ")}`);
    await this.#switchRun(cmds);
    host.state = "unplugged";
  }

  /** Plugs the cable back in. */
  async replug(h: Host | string): Promise<void> {
    const host = this.#impl(h);
    const cmds = this.#ports(host).map((p) => `link set ${p} up`);
    this.#fault("replug", [host], `ip ${cmds.join("; ip ")}`);
    await this.#switchRun(cmds);
    await this.#waitForwarding(host);
    host.state = "running";
  }

  /**
   * Waits until the host's links carry traffic. The kernel's linkwatch brings a veth into service
   * later, from a workqueue under the RTNL: until it has run, the host end sends into the noop qdisc
   * and the bridge port stays disabled. A first ARP lost that way costs a 1 s ARP retransmission and
   * makes the handshake's RTT 1 s (so RTO 3 s), which skews every timing after it.
   */
  async #waitForwarding(host: NetnsHost, boundMs = 5000): Promise<void> {
    const deadline = performance.now() + boundMs;
    for (;;) {
      const pending = await this.#notForwarding(host);
      if (pending.length === 0) return;
      if (performance.now() > deadline) {
        throw new Error(
          `lab ${this.name}: ${pending.join(", ")} not in service ${boundMs} ms after being plugged in (the kernel's linkwatch has not run; is the machine overloaded?)`,
        );
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  // Host ends whose operstate is not UP yet, and switch ports not UP or not yet forwarding.
  async #notForwarding(host: NetnsHost): Promise<string[]> {
    type Link = { ifname: string; operstate?: string; linkinfo?: { info_slave_data?: { state?: string } } };
    const links = async (netns: string) =>
      JSON.parse((await run(["ip", "-j", "-d", "link", "show"], { netns })).stdout) as Link[];
    const ports = this.#ports(host);
    const [inHost, inSwitch] = await Promise.all([links(host.netnsPath), this.#switch.notForwarding(ports)]);
    const pending: string[] = [];
    for (const name of ports.map((_, n) => `eth${n}`)) {
      const l = inHost.find((x) => x.ifname === name);
      if (l?.operstate !== "UP") pending.push(`${host.name}'s ${name} (${l?.operstate ?? "missing"})`);
    }
    return [...pending, ...inSwitch];
  }

  /** No packet passes between any host of `a` and any host of `b`, in either direction, until heal(). */
  async partition(a: ReadonlyArray<Host | string>, b: ReadonlyArray<Host | string>): Promise<void> {
    const ha = a.map((x) => this.#impl(x));
    const hb = b.map((x) => this.#impl(x));
    const ports = (hs: NetnsHost[]) => hs.flatMap((x) => this.#ports(x)).join(",");
    this.#fault(
      "partition",
      [...ha, ...hb],
      `nft bridge drop between ${ports(ha)} and ${ports(hb)}, both ways (by address on routers)`,
      `${ha.map((h) => h.name).join(",")} | ${hb.map((h) => h.name).join(",")}`,
    );
    this.#switch.partitions.push([ha.map((h) => h.name), hb.map((h) => h.name)]);
    await this.#applyRules();
  }

  /** Ends every partition. */
  async heal(): Promise<void> {
    this.#fault("heal", [], "nft bridge partition drops removed");
    this.#switch.partitions = [];
    await this.#applyRules();
  }

  /** Drops `percent` of the packets the host sends and of those sent to it (nftables numgen; no netem here). */
  async loss(h: Host | string, percent: number): Promise<void> {
    const host = this.#impl(h);
    if (!Number.isInteger(percent) || percent < 0 || percent > 100)
      throw new RangeError(`loss: percent must be an integer 0..100, got ${percent}`);
    this.#fault(
      "loss",
      [host],
      percent === 0
        ? `nft bridge loss drops of ${this.#ports(host).join(",")} removed`
        : `nft bridge drop iifname/oifname ${this.#ports(host).join(",")}${percent < 100 ? ` numgen random mod 100 < ${percent}` : ""}`,
      `${percent}%`,
    );
    if (percent === 0) this.#switch.loss.delete(host.name);
    else this.#switch.loss.set(host.name, percent);
    await this.#applyRules();
  }

  // Rewrites the switch's and routers' filter chains from the fault state; `again` only if ever written.
  async #applyRules(again = false): Promise<void> {
    if (again) {
      if (!(await this.#switch.reapplyRules())) return;
    } else await this.#switch.applyRules();
    // Across a router the bridge sees only the router's port: filter by address in its forward path.
    for (const { host } of this.#routers.values()) {
      if (host.state === "off") continue;
      const rl = [
        "table inet sockprobe {}",
        "flush table inet sockprobe",
        "table inet sockprobe {",
        "  chain forward { type filter hook forward priority 0; policy accept;",
      ];
      for (const [a, b] of this.#switch.partitions) {
        for (const x of a) {
          for (const y of b) {
            const hx = this.#hosts.get(x);
            const hy = this.#hosts.get(y);
            if (!hx || !hy) continue;
            rl.push(
              `    ip saddr ${hx.ipv4} ip daddr ${hy.ipv4} drop`,
              `    ip saddr ${hy.ipv4} ip daddr ${hx.ipv4} drop`,
              `    ip6 saddr ${hx.ipv6} ip6 daddr ${hy.ipv6} drop`,
              `    ip6 saddr ${hy.ipv6} ip6 daddr ${hx.ipv6} drop`,
            );
          }
        }
      }
      rl.push("  }", "}");
      await run(["nft", "-f", "-"], { netns: host.netnsPath, input: rl.join("\n") });
    }
  }

  /** Starts a packet capture on every host's switch port (and on each new boot), into pcap files under `dir`. */
  async startCapture(dir: string = mkdtempSync(join(tmpdir(), `sockprobe-${this.name}-`))): Promise<string> {
    const on = [...this.#hosts.values()].filter((h) => h.state !== "off");
    await this.#switch.startCapture(dir, on);
    return dir;
  }

  /** Stops every capture and returns the packets of all hosts on the lab's clock, in time order. */
  stopCapture(): Promise<{ packets: Packet[]; files: string[] }> {
    return this.#switch.stopCapture(this.originRealtimeUs());
  }

  /** The packets captured so far, capture still running. */
  capturedPackets(): Promise<Packet[]> {
    return this.#switch.capturedPackets(this.originRealtimeUs());
  }

  /** The wall-clock µs at the transcript's origin: converts pcap timestamps onto the lab's clock. */
  originRealtimeUs(): number {
    return (performance.timeOrigin + performance.now()) * 1000 - this.transcript.nowUs();
  }

  /** Starts recording TCP state changes, resets and retransmissions of this lab's addresses; false (and why) where tracefs is unavailable. */
  async startTrace(): Promise<TraceStatus> {
    const status = tracefsStatus();
    if (!status.available) return { available: false, ...(status.reason ? { reason: status.reason } : {}) };
    const fromNs = process.hrtime.bigint();
    // Recorded only once acquired: a failed start must leave no trace for stopTrace to release.
    await sharedTrace.acquire();
    this.#trace = { fromNs, addresses: this.#allPlannedAddresses() };
    return { available: true };
  }

  // Every address a host of this lab may have, so hosts added after startTrace are covered.
  #allPlannedAddresses(): Set<string> {
    const out = new Set<string>();
    for (let sw = 0; sw < this.#switch.names.length; sw++) {
      for (let i = 0; i <= MAX_HOSTS_PER_SWITCH + 1; i++) {
        const p = this.plan.iface(sw, i);
        out.add(p.ipv4).add(p.ipv6);
      }
    }
    return out;
  }

  // This lab's events out of the process-wide trace, on the lab's clock.
  #mine(events: readonly TraceEvent[]): StateEvent[] {
    const t = this.#trace;
    if (!t) return [];
    const origin = this.transcript.originNs;
    return events
      .filter((e) => e.atNs >= t.fromNs && (t.addresses.has(e.saddr) || t.addresses.has(e.daddr)))
      .map((e) => ({ ...e, atUs: Number(e.atNs - origin) / 1000 }));
  }

  /** The trace so far, without stopping it; undefined when no trace runs. */
  async traceSnapshot(): Promise<StateEvent[] | undefined> {
    if (!this.#trace) return undefined;
    return this.#mine(await sharedTrace.snapshot());
  }

  /** Why there is no trace: tracefs unavailable (and why), or none started. */
  traceStatus(): TraceStatus {
    if (this.#trace) return { available: true };
    const status = tracefsStatus();
    return {
      available: false,
      reason: status.available ? "no trace was started for this run" : (status.reason ?? "unavailable"),
    };
  }

  /** Stops the trace: events with `atUs` on the lab's clock. */
  async stopTrace(): Promise<StateEvent[]> {
    if (!this.#trace) return [];
    try {
      return this.#mine(await sharedTrace.snapshot());
    } finally {
      this.#trace = undefined;
      await sharedTrace.release();
    }
  }

  /** Samples TCP_INFO of a socket every intervalMs until `until` settles or maxSamples are taken. */
  sampleTcpInfo(
    socket: HostSocket,
    options: { intervalMs: number; until: Promise<unknown>; maxSamples?: number },
  ): Promise<TcpInfoSample[]> {
    return sampleTcpInfo(this.transcript, socket, options);
  }

  /** Tears everything down: programs, sockets, captures, trace, namespaces. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#switch.close();
    if (this.#trace) await this.stopTrace().catch(() => {});
    const exits = [...this.#hosts.values()].flatMap((h) =>
      h.gen ? [...[...h.gen.processes].map((p) => p.exited), ...(h.gen.agent ? [h.gen.agent.exited] : [])] : [],
    );
    this.releaseSync();
    await Promise.all(exits);
  }

  /** Everything that must go even on process exit, synchronously: programs, sockets, namespaces. */
  releaseSync(): void {
    if (this.#closed) return;
    this.#closed = true;
    openLabs.delete(this);
    if (openLabs.size === 0) process.removeListener("exit", releaseOpenLabs);
    for (const h of this.#hosts.values()) if (h.state !== "off") h.destroy();
    this.#switch.releaseSync();
    this.#lease.release();
  }
}
