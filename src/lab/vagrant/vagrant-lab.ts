// The vagrant backend: the hosts are the machines of a Vagrantfile (the seeds' kang and kodos),
// already up; the lab reaches each through an agent run over `vagrant ssh`, and powers, resets and
// pauses them through the provider's own API. The machines outlive a lab: it leaves them as it found
// them (running, its sysctls and filters undone), so each scenario starts from what Vagrant made.

import { type ChildProcess, spawn } from "node:child_process";
import { PassThrough, type Readable, type Writable } from "node:stream";
import type { Packet } from "../../evidence/capture.js";
import { type KernelFacts, kernelFactsFrom } from "../../evidence/kernel-facts.js";
import { run, wrapArgv } from "../../proc/exec.js";
import { Transcript } from "../../sys/transcript.js";
import { AgentClient } from "../agent-client.js";
import { AgentHost, GuestClock, GuestTraces, must } from "../agent-host.js";
import { faultEvent, hostNamed, hostOf, sampleTcpInfo } from "../common.js";
import type { Host, HostProcess, HostSocket } from "../host.js";
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
  UnsupportedFaultError,
  unsupportedFault,
} from "../lab.js";
import { defaultVagrantDir, findMachines, inVagrantNetns, VagrantError, type VagrantMachine } from "./machines.js";
import type { ProviderAdapter } from "./provider.js";

const CAPABILITIES: ReadonlyMap<Fault, string> = new Map<Fault, string>([
  ["powerOff", "the provider's power-off (virsh destroy, VBoxManage controlvm poweroff)"],
  [
    "powerCycle",
    "the provider's hard reset (virsh reset, VBoxManage controlvm reset); the agent comes back over vagrant ssh",
  ],
  ["powerOn", "the provider's start (virsh start, VBoxManage startvm); the agent comes back over vagrant ssh"],
  ["shutdown", "every socket closed through the agent, FIN exchanges awaited, then the provider's power-off"],
  ["kill", "none: the agent runs a program to completion"],
  ["exitApplication", "every socket of the agent closed, as by a process exit"],
  ["pause", "the provider's pause (virsh suspend, VBoxManage controlvm pause): the vCPUs and the guest's clocks stop"],
  ["resume", "the provider's resume (virsh resume, VBoxManage controlvm resume)"],
  ["unplug", "the provider's link state of the lab NIC (virsh domif-setlink, VBoxManage setlinkstate)"],
  ["replug", "the link back up, then eth1 UP in the guest"],
  ["partition", "nftables drops by address inside the guests"],
  ["heal", "the partition drops removed"],
  ["loss", "nftables numgen drops inside the guest"],
]);

const CANNOT: Partial<Record<Fault, string>> = {
  crash:
    "a panicking guest reboots (panic=-1) and the provider starts it again, so it would not stay down: use --backend qemu",
};

// Where the Vagrantfile's provisioner left the project.
const GUEST_PROJECT = "/sockprobe";
const LAB_RANGE = /^198\.(18|19)\./;
// Under TCG a Debian guest takes 40 s or more from power-on to ssh.
const AGENT_BACK_MS = 15 * 60_000;

class VagrantHost extends AgentHost {
  client: AgentClient | undefined;
  child: ChildProcess | undefined;
  clock = new GuestClock();
  pausedAtGuestNs: bigint | undefined;
  ipv4 = "";
  ipv6 = "";
  mac = "";
  kernel = "";
  /** What each sysctl the lab set was before: put back on close. */
  readonly before = new Map<string, string>();
  filtered = false;

  constructor(
    name: string,
    readonly machine: VagrantMachine,
    readonly adapter: ProviderAdapter,
    readonly index: number,
    readonly desiredSysctls: Readonly<Record<string, string | number>>,
  ) {
    super(name);
  }

  get agent(): AgentClient | undefined {
    return this.client;
  }
  get guestClock(): GuestClock | undefined {
    return this.client ? this.clock : undefined;
  }

  get id(): string {
    return this.machine.id as string;
  }
}

// Each agent's ssh, killed with us on exit; on a kill -9 PR_SET_PDEATHSIG ends it, and sshd then
// ends the agent in the guest.
const children = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

// `vagrant ssh-config NAME` as ssh options: ssh then runs as our own child (vagrant ssh runs it as
// ruby's, which nothing kills when we die), starts in a second rather than three, and no file is
// written that a kill -9 could leave behind.
async function sshOptions(dir: string, name: string): Promise<string[]> {
  const r = await run(inVagrantNetns(["vagrant", "ssh-config", name]), {
    cwd: dir,
    allowFail: true,
    timeoutMs: 120_000,
  });
  if (r.code !== 0)
    throw new VagrantError(
      `vagrant ssh-config ${name} failed: ${(r.stderr || r.stdout).trim().split("\n").slice(-2).join(" ")}`,
    );
  return r.stdout
    .split("\n")
    .map((l) => /^\s+(\S+)\s+(.+)$/.exec(l))
    .filter((m) => m !== null)
    .flatMap((m) => ["-o", `${m[1]}=${(m[2] as string).replace(/^"(.*)"$/, "$1")}`]);
}

// One agent per host, over the ssh `vagrant ssh` uses: JSON lines over its stdin and stdout.
async function connectAgent(dir: string, host: VagrantHost, transcript: Transcript | undefined, boundMs: number) {
  const options = await sshOptions(dir, host.name);
  const cmd = `sudo node ${GUEST_PROJECT}/dist/agent/main.js --host ${host.name}`;
  const argv = wrapArgv(inVagrantNetns(["ssh", ...options, "-T", "-o", "ServerAliveInterval=5", host.name, cmd]));
  const child = spawn(argv[0] as string, argv.slice(1), { cwd: dir, stdio: ["pipe", "pipe", "pipe"] });
  children.add(child);
  child.on("close", () => children.delete(child));
  // Only the agent's JSON lines go on to the client (a login banner or motd would not parse).
  const lines = new PassThrough();
  let partial = "";
  (child.stdout as Readable).setEncoding("utf8").on("data", (d: string) => {
    const parts = (partial + d).split("\n");
    partial = parts.pop() ?? "";
    for (const l of parts) if (l.startsWith("{")) lines.write(`${l}\n`);
  });
  (child.stdout as Readable).on("end", () => lines.end());
  const client = new AgentClient(lines, child.stdin as Writable, {
    host: host.name,
    process: child,
    ...(transcript ? { transcript } : {}),
    toLocalNs: (ns) => Number(host.clock.toHost(BigInt(Math.round(ns)))),
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.hello(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${Math.round(boundMs / 1000)} s`)), boundMs);
      }),
    ]);
  } catch (e) {
    child.kill("SIGKILL");
    const said = client.stderr.trim().split("\n").slice(-2).join(" | ");
    throw new VagrantError(
      `the agent on ${host.name} does not answer over vagrant ssh: ${(e as Error).message}${said ? `; it said: ${said}` : ""} (is the project synced and built there? cd vagrant && vagrant provision ${host.name})`,
    );
  } finally {
    clearTimeout(timer);
  }
  return { client, child };
}

let factsOnce: Promise<KernelFacts> | undefined;

/** A lab of the Vagrantfile's running machines. */
export class VagrantLab implements Lab {
  readonly backend = "vagrant";
  readonly capabilities = CAPABILITIES;
  readonly pauseSemantics: PauseSemantics;
  readonly transcript: Transcript;
  readonly faults: FaultEvent[] = [];
  readonly name: string;
  readonly dir: string;
  readonly machines: readonly VagrantMachine[];
  readonly #hosts = new Map<string, VagrantHost>();
  readonly #traces: GuestTraces;
  #partitions: Array<[string[], string[]]> = [];
  readonly #loss = new Map<string, number>();
  #closed = false;
  /** Attaches under way: close waits for them, so that none finishes behind it. */
  readonly #attaching = new Set<Promise<unknown>>();

  private constructor(options: VagrantLabOptions, dir: string, machines: VagrantMachine[]) {
    this.name = options.name ?? "lab";
    this.dir = dir;
    this.machines = machines;
    this.transcript = options.transcript ?? new Transcript();
    this.#traces = new GuestTraces(this.transcript.originNs, () => this.#hosts.values());
    // A stopped QEMU (libvirt) reads nothing from its tap, which keeps what arrives; VirtualBox is
    // taken to drop it (not measured here: no VirtualBox on these machines).
    this.pauseSemantics = {
      clocksStop: true,
      inbound: machines[0]?.provider === "libvirt" ? "queued" : "dropped",
    };
  }

  /** Finds the Vagrantfile's machines; at least one must be running. */
  static async create(options: VagrantLabOptions = {}): Promise<VagrantLab> {
    const dir = options.vagrantDir ?? defaultVagrantDir();
    const machines = await vagrantMachines(dir);
    const running = machines.filter((m) => m.state === "running");
    if (running.length === 0)
      throw new VagrantError(
        `no machine of ${dir} is running (${machines.map((m) => `${m.name}: ${m.state}`).join(", ") || "none defined"}): cd ${dir} && vagrant up`,
      );
    for (const m of running) {
      if (!m.adapter)
        throw new VagrantError(
          `machine ${m.name} runs on the ${m.provider} provider: sockprobe gives faults through libvirt and VirtualBox only`,
        );
      if (!m.id) throw new VagrantError(`machine ${m.name} has no provider id in ${dir}/.vagrant: vagrant up again`);
    }
    return new VagrantLab(options, dir, machines);
  }

  boundFor(ms: number): number {
    return ms * 4 + 2 * AGENT_BACK_MS;
  }

  unsupported(fault: Fault): UnsupportedFaultError | undefined {
    return unsupportedFault(this.backend, this.capabilities, fault, CANNOT);
  }

  /** The guests' kernel, read through the first running machine's agent (once per process). */
  async kernelFacts(): Promise<KernelFacts> {
    const up = [...this.#hosts.values()].find((h) => h.client && h.state === "running");
    if (up?.client) return this.#factsOf(up.client, up.kernel);
    factsOnce ??= (async () => {
      const m = this.machines.find((x) => x.state === "running") as VagrantMachine;
      const h = new VagrantHost(m.name, m, m.adapter as ProviderAdapter, 0, {});
      const { client, child } = await connectAgent(this.dir, h, undefined, 120_000);
      try {
        const hello = await client.hello();
        return await this.#factsOf(client, hello.kernel);
      } finally {
        await client.close().catch(() => child.kill("SIGKILL"));
      }
    })();
    factsOnce.catch(() => {
      factsOnce = undefined;
    });
    return factsOnce;
  }

  #factsOf(client: AgentClient, release: string): Promise<KernelFacts> {
    return kernelFactsFrom({
      release,
      readdir: (p) => client.readdir(p),
      readFile: (p) => client.readFile(p),
    });
  }

  /** The machine named `name`, reached through its agent and given the scenario's sysctls. */
  async addHost(name: string, options: HostOptions = {}): Promise<Host> {
    if (this.#closed) throw new Error(`lab ${this.name} is closed`);
    if (this.#hosts.has(name)) throw new TypeError(`host ${name} exists already in lab ${this.name}`);
    const m = this.machines.find((x) => x.name === name);
    if (!m)
      throw new UnsupportedFaultError(
        this.backend,
        "run",
        `it needs a host ${name}, and the Vagrantfile in ${this.dir} has ${this.machines.map((x) => x.name).join(", ")}: add it there, or run this scenario on netns or qemu`,
      );
    if (m.state !== "running")
      throw new VagrantError(`machine ${name} is not running (${m.state}): cd ${this.dir} && vagrant up ${name}`);
    const host = new VagrantHost(
      name,
      m,
      m.adapter as ProviderAdapter,
      this.machines.indexOf(m),
      options.sysctls ?? {},
    );
    const attached = this.#attach(host, 120_000);
    this.#attaching.add(attached);
    try {
      await attached;
    } catch (e) {
      this.#drop(host, "it did not attach");
      throw e;
    } finally {
      this.#attaching.delete(attached);
    }
    if (this.#closed) {
      this.#drop(host, "the lab closed");
      throw new Error(`lab ${this.name} closed while ${name} was being added`);
    }
    this.#hosts.set(name, host);
    return host;
  }

  // The agent of the host's current boot: connected, the lab's addresses and sysctls in place.
  async #attach(host: VagrantHost, boundMs: number): Promise<void> {
    const { client, child } = await connectAgent(this.dir, host, this.transcript, boundMs);
    host.client = client;
    host.child = child;
    host.state = "running";
    host.generation++;
    host.kernel = (await client.hello()).kernel;
    host.clock = new GuestClock();
    await host.clock.sync(client);
    type Addr = {
      ifname: string;
      address?: string;
      addr_info?: Array<{ family: string; local: string; scope: string }>;
    };
    const links = JSON.parse((await client.run(["ip", "-j", "addr", "show", "dev", "eth1"])).stdout || "[]") as Addr[];
    const eth1 = links[0];
    const v4 = eth1?.addr_info?.find((a) => a.family === "inet")?.local;
    if (!v4 || !LAB_RANGE.test(v4))
      throw new VagrantError(
        `machine ${host.name}'s lab network (eth1) has ${v4 ?? "no IPv4 address"}, not an address in 198.18.0.0/15: use sockprobe's Vagrantfile`,
      );
    host.ipv4 = v4;
    host.mac = eth1?.address ?? "";
    // An IPv6 address in the lab range, derived from the IPv4 one: the Vagrantfile gives none.
    host.ipv6 = `fd00:5b:c8::${v4.split(".").slice(2).join(":")}`;
    if (!eth1?.addr_info?.some((a) => a.family === "inet6" && a.local === host.ipv6))
      await must(client, host.name, ["ip", "addr", "add", `${host.ipv6}/64`, "dev", "eth1", "nodad"]);
    const wanted = { ...host.desiredSysctls, ...host.sysctls };
    for (const key of Object.keys(wanted)) if (!host.before.has(key)) host.before.set(key, await host.sysctl(key));
    await host.setSysctls(wanted);
    await this.#filters(host);
    if (this.#traces.on) await client.trace("start");
  }

  // Waits (bounded) until the agent answers again after a boot.
  async #reattach(host: VagrantHost): Promise<void> {
    const deadline = performance.now() + AGENT_BACK_MS;
    let last: Error | undefined;
    while (performance.now() < deadline) {
      try {
        await this.#attach(host, 60_000);
        return;
      } catch (e) {
        last = e as Error;
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
    throw new VagrantError(`${host.name} did not come back within ${AGENT_BACK_MS / 60_000} min: ${last?.message}`);
  }

  #drop(host: VagrantHost, why: string): void {
    host.client?.abandon(why);
    host.child?.kill("SIGKILL");
    host.client = undefined;
    host.child = undefined;
  }

  async #provider(argv: string[]): Promise<void> {
    await run(inVagrantNetns(argv), { timeoutMs: 120_000 });
  }

  host(name: string): Host {
    return hostNamed(this.#hosts, name, this.name);
  }

  hosts(): Host[] {
    return [...this.#hosts.values()];
  }

  async addRouter(name: string): Promise<Host> {
    throw new UnsupportedFaultError(this.backend, "run", `it needs a router ${name}: the vagrant lab has one network`);
  }

  #impl(h: Host | string): VagrantHost {
    return hostOf(this.#hosts, h, this.name);
  }

  #fault(fault: string, hosts: VagrantHost[], command: string, detail?: string): void {
    this.faults.push(faultEvent(this.transcript, fault, hosts, command, detail));
  }

  #keepTrace(host: VagrantHost): Promise<void> {
    return this.#traces.keep(host);
  }

  async powerOff(h: Host | string): Promise<void> {
    const host = this.#impl(h);
    host.reach("powerOff");
    await this.#keepTrace(host);
    const argv = host.adapter.powerOff(host.id);
    this.#fault("powerOff", [host], argv.join(" "));
    await this.#provider(argv);
    this.#drop(host, "its host was powered off");
    host.state = "off";
  }

  async powerOn(h: Host | string): Promise<void> {
    const host = this.#impl(h);
    if (host.state !== "off") throw new Error(`powerOn: ${host.name} is not off`);
    const argv = host.adapter.start(host.id);
    await this.#provider(argv);
    await this.#reattach(host);
    this.#fault("boot", [host], `${argv.join(" ")}; the agent back over vagrant ssh`, `generation ${host.generation}`);
  }

  async powerCycle(h: Host | string, options: { bootDelayMs?: number } = {}): Promise<void> {
    const host = this.#impl(h);
    host.reach("powerCycle");
    await this.#keepTrace(host);
    const delay = options.bootDelayMs ?? 0;
    const reset = host.adapter.reset(host.id);
    const cmds = delay > 0 ? [host.adapter.pause(host.id), reset, host.adapter.resume(host.id)] : [reset];
    this.#fault(
      "powerCycle",
      [host],
      delay > 0
        ? `${cmds[0]?.join(" ")}; ${reset.join(" ")}; ${delay} ms later ${cmds[2]?.join(" ")}`
        : reset.join(" "),
    );
    // The hypervisor first: the agent's ssh session ending first would let the agent close its
    // sockets the normal way (FINs) before the reset.
    if (delay > 0) {
      await this.#provider(cmds[0] as string[]);
      await this.#provider(reset);
      this.#drop(host, "its host was reset");
      host.state = "off";
      await new Promise((r) => setTimeout(r, delay));
      await this.#provider(cmds[2] as string[]);
    } else {
      await this.#provider(reset);
      this.#drop(host, "its host was reset");
      host.state = "off";
    }
    await this.#reattach(host);
    this.#fault("boot", [host], "the agent back over vagrant ssh", `generation ${host.generation}`);
  }

  async shutdown(h: Host | string, options: { graceMs?: number } = {}): Promise<void> {
    const host = this.#impl(h);
    const agent = host.reach("shutdown");
    this.#fault("shutdown", [host], "close() of its sockets through the agent, FIN exchanges awaited; then power-off");
    await agent.closeAll();
    const deadline = Date.now() + (options.graceMs ?? 2000);
    const closing = new Set(["FIN_WAIT1", "CLOSING", "LAST_ACK"]);
    while (Date.now() < deadline) {
      if (!(await host.sockets()).some((r) => closing.has(r.state))) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await this.powerOff(host);
  }

  async kill(p: HostProcess, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    this.#fault("kill", [this.#impl(p.host)], `none: the agent runs ${p.argv[0]} to completion`, signal);
    await p.exited;
  }

  async exitApplication(h: Host | string): Promise<void> {
    const host = this.#impl(h);
    this.#fault("exit", [host], "close() of every socket the agent holds");
    await host.reach("exitApplication").closeAll();
  }

  async pause(h: Host | string): Promise<void> {
    const host = this.#impl(h);
    host.reach("pause");
    const argv = host.adapter.pause(host.id);
    this.#fault("pause", [host], argv.join(" "));
    // The new stretch of guest time starts where the command did: the guest stops somewhere while
    // it runs, and what it does right after resuming must map with the new offset.
    host.pausedAtGuestNs = host.clock.guestNow();
    await this.#provider(argv);
    host.state = "paused";
  }

  async resume(h: Host | string): Promise<void> {
    const host = this.#impl(h);
    const argv = host.adapter.resume(host.id);
    this.#fault("resume", [host], argv.join(" "));
    await this.#provider(argv);
    host.state = "running";
    if (host.client) await host.clock.sync(host.client, host.pausedAtGuestNs);
  }

  async unplug(h: Host | string): Promise<void> {
    const host = this.#impl(h);
    const argv = host.adapter.setLink(host.id, host.mac, 2, false);
    this.#fault("unplug", [host], argv.join(" "));
    await this.#provider(argv);
    host.state = "unplugged";
  }

  async replug(h: Host | string): Promise<void> {
    const host = this.#impl(h);
    const argv = host.adapter.setLink(host.id, host.mac, 2, true);
    this.#fault("replug", [host], argv.join(" "));
    await this.#provider(argv);
    const agent = host.reach("replug");
    const deadline = performance.now() + 30_000;
    while ((await agent.readFile("/sys/class/net/eth1/operstate")).trim() !== "up") {
      if (performance.now() > deadline) throw new Error(`${host.name}'s eth1 not UP 30 s after replug`);
      await new Promise((r) => setTimeout(r, 20));
    }
    host.state = "running";
  }

  // The partition and loss rules, inside each guest (the switch is the provider's).
  async #filters(host: VagrantHost): Promise<void> {
    const agent = host.client;
    if (!agent) return;
    const peers = (names: string[]) => names.map((n) => this.#hosts.get(n)).filter((x) => x !== undefined);
    const lines = ["table inet sockprobe {}", "delete table inet sockprobe", "table inet sockprobe {"];
    lines.push("  chain input { type filter hook input priority 0; policy accept;");
    const drops: string[] = [];
    for (const [a, b] of this.#partitions) {
      const others = a.includes(host.name) ? peers(b) : b.includes(host.name) ? peers(a) : [];
      for (const o of others) drops.push(`ip saddr ${o.ipv4} drop`, `ip6 saddr ${o.ipv6} drop`);
    }
    const pct = this.#loss.get(host.name);
    const loss = pct ? `iifname "eth1"${pct < 100 ? ` numgen random mod 100 < ${pct}` : ""} drop` : undefined;
    lines.push(...drops.map((d) => `    ${d}`), ...(loss ? [`    ${loss}`] : []), "  }");
    lines.push("  chain output { type filter hook output priority 0; policy accept;");
    lines.push(...drops.map((d) => `    ${d.replace("saddr", "daddr")}`));
    if (pct) lines.push(`    oifname "eth1"${pct < 100 ? ` numgen random mod 100 < ${pct}` : ""} drop`);
    lines.push("  }", "}");
    if (drops.length === 0 && !loss) {
      if (host.filtered)
        await must(agent, host.name, ["nft", "-f", "-"], "table inet sockprobe {}\ndelete table inet sockprobe");
      host.filtered = false;
      return;
    }
    await must(agent, host.name, ["nft", "-f", "-"], lines.join("\n"));
    host.filtered = true;
  }

  async partition(a: ReadonlyArray<Host | string>, b: ReadonlyArray<Host | string>): Promise<void> {
    const ha = a.map((x) => this.#impl(x));
    const hb = b.map((x) => this.#impl(x));
    this.#fault(
      "partition",
      [...ha, ...hb],
      "nft drops by address inside the guests, both ways",
      `${ha.map((h) => h.name).join(",")} | ${hb.map((h) => h.name).join(",")}`,
    );
    this.#partitions.push([ha.map((h) => h.name), hb.map((h) => h.name)]);
    for (const h of [...ha, ...hb]) await this.#filters(h);
  }

  async heal(): Promise<void> {
    this.#fault("heal", [], "nft partition drops removed inside the guests");
    this.#partitions = [];
    for (const h of this.#hosts.values()) await this.#filters(h);
  }

  async loss(h: Host | string, percent: number): Promise<void> {
    const host = this.#impl(h);
    if (!Number.isInteger(percent) || percent < 0 || percent > 100)
      throw new RangeError(`loss: percent must be an integer 0..100, got ${percent}`);
    this.#fault("loss", [host], `nft drops on eth1 inside ${host.name}`, `${percent}%`);
    if (percent === 0) this.#loss.delete(host.name);
    else this.#loss.set(host.name, percent);
    await this.#filters(host);
  }

  async crash(h: Host | string): Promise<void> {
    this.#impl(h);
    throw this.unsupported("crash") as UnsupportedFaultError;
  }

  /** Packets cross the provider's network, not a switch of ours: no capture (the report says so by having none). */
  async startCapture(dir = ""): Promise<string> {
    return dir;
  }

  async stopCapture(): Promise<{ packets: Packet[]; files: string[] }> {
    return { packets: [], files: [] };
  }

  async capturedPackets(): Promise<Packet[]> {
    return [];
  }

  originRealtimeUs(): number {
    return (performance.timeOrigin + performance.now()) * 1000 - this.transcript.nowUs();
  }

  startTrace(): Promise<TraceStatus> {
    return this.#traces.start();
  }

  traceSnapshot(): Promise<StateEvent[] | undefined> {
    return this.#traces.snapshot();
  }

  traceStatus(): TraceStatus {
    return this.#traces.status();
  }

  stopTrace(): Promise<StateEvent[]> {
    return this.#traces.stop();
  }

  sampleTcpInfo(
    socket: HostSocket,
    options: { intervalMs: number; until: Promise<unknown>; maxSamples?: number },
  ): Promise<TcpInfoSample[]> {
    return sampleTcpInfo(this.transcript, socket, options);
  }

  /**
   * Leaves the machines as the lab found them: a paused one resumed, one powered off started again
   * (and waited for), its sockets closed, its filters and the sysctls the lab set undone.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#attaching]);
    this.#partitions = [];
    this.#loss.clear();
    await Promise.all(
      [...this.#hosts.values()].map(async (host) => {
        try {
          if (host.state === "paused") await this.#provider(host.adapter.resume(host.id));
          if (host.state === "unplugged") await this.#provider(host.adapter.setLink(host.id, host.mac, 2, true));
          if (host.state === "off" || !host.client) {
            await this.#provider(host.adapter.start(host.id)).catch(() => {});
            await this.#reattach(host);
          }
          const agent = host.client as AgentClient;
          await agent.closeAll();
          await this.#filters(host);
          for (const [key, value] of host.before) await agent.writeFile(`/proc/sys/${key.replaceAll(".", "/")}`, value);
          await agent.trace("stop").catch(() => {});
          await agent.close();
        } finally {
          this.#drop(host, "the lab closed");
        }
      }),
    );
  }
}

/** How a vagrant lab is made. */
export interface VagrantLabOptions extends LabOptions {
  /** The folder of the Vagrantfile (default: this checkout's vagrant/). */
  readonly vagrantDir?: string;
}

// `vagrant status` costs seconds (Ruby): asked once per folder and process; the provider reports
// each machine's state where it matters, and the lab keeps its own.
const known = new Map<string, Promise<VagrantMachine[]>>();
function vagrantMachines(dir: string): Promise<VagrantMachine[]> {
  let p = known.get(dir);
  if (!p) {
    p = findMachines(dir);
    p.catch(() => known.delete(dir));
    known.set(dir, p);
  }
  return p;
}
