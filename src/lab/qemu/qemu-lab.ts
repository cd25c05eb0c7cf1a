// The qemu backend: each host a QEMU VM booting the kernel under test, with the machine's root shared
// read-only. Its NIC is a tap QEMU makes in the lab's switch namespace, plugged into the same bridge
// as a netns host's veth, so partitions, loss and captures are the switch's code. Its sockets and
// evidence come through the agent over virtio-serial, never over the test network; power, reset,
// pause, panic and the cable go through the hypervisor (QMP).

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, sep } from "node:path";
import type { Packet } from "../../evidence/capture.js";
import { type KernelFacts, kernelFactsFrom } from "../../evidence/kernel-facts.js";
import { requireTools } from "../../proc/tools.js";
import { Transcript } from "../../sys/transcript.js";
import { BootError, Guest, sockprobeEntry } from "../../vm/guest-run.js";
import type { Kernel } from "../../vm/kernels.js";
import { Qmp } from "../../vm/qmp.js";
import { AddressPlan, type InterfacePlan, type LabIdLease, leaseLabId, MAX_HOSTS_PER_SWITCH } from "../addressing.js";
import { AgentClient, agentCommand } from "../agent-client.js";
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
  type UnsupportedFaultError,
  unsupportedFault,
} from "../lab.js";
import { BASE_SYSCTLS, QUIET_RULES } from "../quiet.js";
import { LabSwitch } from "../switch.js";

/** How the qemu backend gives each fault. */
const QEMU_CAPABILITIES: ReadonlyMap<Fault, string> = new Map<Fault, string>([
  ["powerOff", "QMP quit: QEMU ends mid-instruction, its tap leaves the switch"],
  ["powerCycle", "QMP set-action reboot=reset, system_reset: the same QEMU, NIC and MAC, a fresh kernel"],
  ["powerOn", "a new QEMU with the same tap name, MAC, addresses and sysctls"],
  ["shutdown", "every socket closed through the agent, FIN exchanges awaited, then QMP quit"],
  ["kill", "a signal to a program the agent runs (only once it has exited: the agent runs programs to completion)"],
  ["exitApplication", "every socket of the agent closed, as by a process exit"],
  ["pause", "QMP stop: the vCPUs stop, and with them the guest's clocks and TCP timers"],
  ["resume", "QMP cont: the guest's clocks go on from where they stopped"],
  ["unplug", "QMP set_link up=false: the guest's NIC loses carrier"],
  ["replug", "QMP set_link up=true, then the guest's eth0 back UP"],
  ["partition", "nftables drops between the taps on the switch's bridge"],
  ["heal", "the partition drops removed"],
  ["loss", "nftables numgen drops on the host's tap"],
  [
    "crash",
    "echo c > /proc/sysrq-trigger in the guest: a kernel panic; panic=-1 reboots, -no-reboot makes that a power-off",
  ],
]);

const LAB_NAME = /^[a-z][a-z0-9-]{0,14}$/;
// The guest's NIC, as QMP names it.
const NIC = "nic0";

/** How a qemu lab is made: the hosts' kernel, and each VM's size. */
export interface QemuLabOptions extends LabOptions {
  readonly kernel: Kernel;
  /** Memory of each VM (default 1024 MiB: the kernel, the agent's Node and the 9p cache). */
  readonly memoryMiB?: number;
  /** vCPUs of each VM (default 1: under TCG each vCPU is a host thread). */
  readonly cpus?: number;
}

/**
 * The agent's command line in a guest: built JavaScript whenever the build is fresh (a guest under
 * TCG starts it three times faster than TypeScript through tsx), else the sources through tsx.
 */
export function guestAgentCommand(host: string): string[] {
  const entry = sockprobeEntry();
  const js = entry.find((a) => a.endsWith(`${sep}cli${sep}main.js`));
  if (js) return [process.execPath, join(dirname(js), "..", "agent", "main.js"), "--host", host];
  return agentCommand(host);
}

// One boot of a host: its QEMU, and within it the kernel generation's agent and clock.
interface Vm {
  readonly guest: Guest;
  readonly qmp: Qmp;
  agent: AgentClient;
  clock: GuestClock;
  /** Agent stderr, last lines: what a failing agent said. */
  stderr: string;
  /** Where the guest's clock stood when QMP stopped it. */
  pausedAtGuestNs?: bigint;
}

class QemuHost extends AgentHost {
  vm: Vm | undefined;
  /** The QEMU process whose tap is being captured: a reset keeps it, a new QEMU gets a new file. */
  capturedQemu: number | undefined;

  constructor(
    readonly lab: QemuLab,
    name: string,
    readonly index: number,
    readonly switchIndex: number,
    readonly plan: InterfacePlan,
    readonly desiredSysctls: Readonly<Record<string, string | number>>,
  ) {
    super(name);
  }

  get ipv4(): string {
    return this.plan.ipv4;
  }
  get ipv6(): string {
    return this.plan.ipv6;
  }
  get mac(): string {
    return this.plan.mac;
  }
  get agent(): AgentClient | undefined {
    return this.vm?.agent;
  }
  get guestClock(): GuestClock | undefined {
    return this.vm?.clock;
  }
  /** The tap's name on the switch. */
  get port(): string {
    return `h${this.index}`;
  }

  alive(what: string): Vm {
    this.reach(what);
    return this.vm as Vm;
  }

  /** Configures a fresh kernel: sysctls, quiet rules, eth0's addresses, then the agent's clock. */
  async configure(vm: Vm): Promise<void> {
    const { agent } = vm;
    // eth0 exists from boot, made before `default` was set: it gets the lab's keys of its own, and
    // every key goes in before the link comes up (and with it the link-local address and its DAD).
    const eth0 = Object.entries(BASE_SYSCTLS)
      .filter(([k]) => k.includes(".default."))
      .map(([k, v]) => [k.replace(".default.", ".eth0."), v]);
    await this.setSysctls({
      ...BASE_SYSCTLS,
      ...Object.fromEntries(eth0),
      ...this.desiredSysctls,
      ...this.sysctls,
    });
    await must(agent, this.name, ["nft", "-f", "-"], QUIET_RULES);
    const p = this.plan;
    await must(
      agent,
      this.name,
      ["ip", "-batch", "-"],
      [
        `addr add ${p.ipv4}/${p.prefix4} dev eth0`,
        `addr add ${p.ipv6}/${p.prefix6} dev eth0 nodad`,
        "link set eth0 up",
      ].join("\n"),
    );
    await vm.clock.sync(agent);
  }
}

// Labs not yet closed, released on process exit: QEMU dies with us anyway (PR_SET_PDEATHSIG).
const openLabs = new Set<{ releaseSync(): void }>();
function releaseOpenLabs(): void {
  for (const lab of [...openLabs]) lab.releaseSync();
}

/** A lab whose hosts are QEMU VMs on the lab's switch. */
export class QemuLab implements Lab {
  readonly backend = "qemu";
  readonly pauseSemantics: PauseSemantics = { clocksStop: true, inbound: "queued" };
  readonly capabilities = QEMU_CAPABILITIES;
  readonly transcript: Transcript;
  readonly plan: AddressPlan;
  readonly faults: FaultEvent[] = [];
  readonly name: string;
  readonly kernel: Kernel;
  readonly #memoryMiB: number;
  readonly #cpus: number;
  readonly #lease: LabIdLease;
  readonly #switch: LabSwitch;
  readonly #hosts = new Map<string, QemuHost>();
  #nextIndex = 0;
  #closed = false;
  // Boots under way: a close aborts them (QEMU killed) and waits for them to give up.
  readonly #aborting = new AbortController();
  readonly #boots = new Set<Promise<unknown>>();
  readonly #traces: GuestTraces;

  private constructor(options: QemuLabOptions, name: string, lease: LabIdLease, sw: LabSwitch) {
    this.name = name;
    this.kernel = options.kernel;
    this.#memoryMiB = options.memoryMiB ?? 1024;
    this.#cpus = options.cpus ?? 1;
    this.#lease = lease;
    this.plan = new AddressPlan(lease.id);
    this.#switch = sw;
    this.transcript = options.transcript ?? new Transcript();
    this.#traces = new GuestTraces(this.transcript.originNs, () => this.#hosts.values());
    openLabs.add(this);
    if (openLabs.size === 1) process.once("exit", releaseOpenLabs);
  }

  /** Builds the switch; hosts boot as they are added. */
  static async create(options: QemuLabOptions): Promise<QemuLab> {
    const name = options.name ?? "lab";
    if (!LAB_NAME.test(name))
      throw new TypeError(`lab name ${JSON.stringify(name)}: use 1-15 lowercase letters, digits or -`);
    if (options.control === "in-process")
      throw new TypeError("a qemu lab reaches its hosts through their agents only: drop control: in-process");
    requireTools(["ip", "nsenter", "setpriv", "nft"]);
    let lab: QemuLab | undefined;
    const sw = await LabSwitch.create([...(options.switches ?? ["sw0"])], (host) => lab?.portsOf(host) ?? []);
    let lease: LabIdLease;
    try {
      lease = await leaseLabId();
    } catch (e) {
      sw.releaseSync();
      throw e;
    }
    lab = new QemuLab(options, name, lease, sw);
    return lab;
  }

  /**
   * A scenario's bound here: each host boots a kernel (tens of seconds under TCG, the hosts of a lab
   * in parallel), and every call crosses to an agent that runs several times slower under TCG.
   */
  boundFor(ms: number): number {
    return ms * 4 + 240_000;
  }

  /** A host's tap on the switch; none while it is off. */
  portsOf(name: string): string[] {
    const h = this.#hosts.get(name);
    return h && h.state !== "off" ? [h.port] : [];
  }

  /** Path of the switch namespace, where the taps are. */
  get switchNetns(): string {
    return this.#switch.path;
  }

  #open(): void {
    if (this.#closed) throw new Error(`lab ${this.name} is closed`);
  }

  async kernelFacts(): Promise<KernelFacts> {
    const running = [...this.#hosts.values()].find((h) => h.vm && h.state !== "off");
    if (running?.vm) {
      const agent = running.vm.agent;
      return kernelFactsFrom({
        release: this.kernel.release,
        readdir: (p) => agent.readdir(p),
        readFile: (p) => agent.readFile(p),
      });
    }
    // No host yet: a guest of our own reads them, once per kernel and process.
    return factsOf(this.kernel);
  }

  unsupported(fault: Fault): UnsupportedFaultError | undefined {
    return unsupportedFault(this.backend, this.capabilities, fault);
  }

  async addHost(name: string, options: HostOptions = {}): Promise<Host> {
    this.#open();
    if (!LAB_NAME.test(name))
      throw new TypeError(`host name ${JSON.stringify(name)}: use 1-15 lowercase letters, digits or -`);
    if (this.#hosts.has(name)) throw new TypeError(`host ${name} exists already in lab ${this.name}`);
    if (options.control === "in-process")
      throw new TypeError(`host ${name}: a VM's sockets are reached through its agent only`);
    const sw = this.#switch.index(options.switch);
    const onSwitch = [...this.#hosts.values()].filter((h) => h.switchIndex === sw).length;
    if (onSwitch >= MAX_HOSTS_PER_SWITCH)
      throw new RangeError(`switch ${this.#switch.names[sw]} is full (${MAX_HOSTS_PER_SWITCH} hosts)`);
    const host = new QemuHost(this, name, this.#nextIndex++, sw, this.plan.iface(sw, onSwitch), options.sysctls ?? {});
    this.#hosts.set(name, host);
    const boot = this.#boot(host);
    this.#boots.add(boot);
    try {
      await boot;
    } catch (e) {
      this.#hosts.delete(name);
      throw e;
    } finally {
      this.#boots.delete(boot);
    }
    return host;
  }

  /** Routers would be VMs with two NICs: not built; a netns lab has them. */
  async addRouter(name: string): Promise<Host> {
    throw new TypeError(`router ${name}: the qemu backend has no routers yet; build multi-switch labs on netns`);
  }

  host(name: string): Host {
    return hostNamed(this.#hosts, name, this.name);
  }

  hosts(): Host[] {
    return [...this.#hosts.values()];
  }

  #impl(h: Host | string): QemuHost {
    return hostOf(this.#hosts, h, this.name);
  }

  #fault(fault: string, hosts: QemuHost[], command: string, detail?: string): void {
    this.faults.push(faultEvent(this.transcript, fault, hosts, command, detail));
  }

  // A new QEMU: boot, tap into the bridge, agent, configuration, trace and capture.
  async #boot(host: QemuHost): Promise<void> {
    const guest = await Guest.boot({
      kernel: this.kernel,
      memoryMiB: this.#memoryMiB,
      cpus: this.#cpus,
      netns: this.#switch.path,
      signal: this.#aborting.signal,
      channels: [{ name: "qmp", kind: "qmp" }],
      extra: [
        "-netdev",
        `tap,id=n0,ifname=${host.port},script=no,downscript=no`,
        "-device",
        `virtio-net-pci,netdev=n0,mac=${host.mac},id=${NIC}`,
      ],
    });
    // Past the guest's READY, a close still ends this boot: its QEMU killed, every wait below fails.
    const onAbort = () => guest.qemu.kill();
    this.#aborting.signal.addEventListener("abort", onAbort, { once: true });
    try {
      if (this.#aborting.signal.aborted) throw this.#aborting.signal.reason;
      const qmp = new Qmp(guest.qemu.channel("qmp"));
      await qmp.negotiate();
      await this.#switch.run([`link set ${host.port} master br${host.switchIndex} up`]);
      host.state = "running";
      const vm = await this.#startAgent(host, guest, qmp);
      host.vm = vm;
      void guest.qemu.exited.then(() => {
        if (host.vm === vm) {
          host.vm = undefined;
          host.state = "off";
        }
      });
      if (host.capturedQemu !== guest.qemu.pid) {
        host.capturedQemu = guest.qemu.pid;
        await this.#switch.captureHost(host.name, host.generation);
      }
      await this.#switch.reapplyRules();
    } catch (e) {
      host.state = "off";
      host.vm = undefined;
      await guest.kill();
      throw e;
    } finally {
      this.#aborting.signal.removeEventListener("abort", onAbort);
    }
  }

  // The agent on a fresh kernel (a new QEMU, or one just reset): configured, clock synced, tracing.
  async #startAgent(host: QemuHost, guest: Guest, qmp: Qmp): Promise<Vm> {
    host.generation++;
    const early = guest.takeEarly();
    const vm: Vm = {
      guest,
      qmp,
      agent: undefined as unknown as AgentClient,
      clock: new GuestClock(),
      stderr: "",
    };
    const onErr = (d: Buffer) => {
      vm.stderr = (vm.stderr + d.toString("utf8")).slice(-4000);
    };
    guest.err.on("data", onErr);
    const agent = new AgentClient(guest.job, guest.job, {
      host: host.name,
      transcript: this.transcript,
      toLocalNs: (ns) => Number(vm.clock.toHost(BigInt(Math.round(ns)))),
    });
    vm.agent = agent;
    if (early.length) guest.job.emit("data", early);
    guest.start(guestAgentCommand(host.name));
    const boundMs = guest.accel === "tcg" ? 120_000 : 30_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        agent.hello(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no hello within ${boundMs / 1000} s`)), boundMs);
        }),
        guest.qemu.exited.then(() => {
          throw new Error("QEMU exited");
        }),
      ]);
    } catch (e) {
      agent.abandon("it did not start");
      throw new BootError(
        `host ${host.name} (Linux ${this.kernel.release}): its agent did not start: ${(e as Error).message}${vm.stderr.trim() ? `; it said: ${vm.stderr.trim().split("\n").slice(-3).join(" | ")}` : ""}`,
      );
    } finally {
      clearTimeout(timer);
    }
    host.vm = vm;
    await host.configure(vm);
    await this.#waitCarrier(host, vm);
    if (this.#traces.on) await agent.trace("start");
    return vm;
  }

  // Until the guest's eth0 is UP and the tap forwards on the bridge: a first ARP lost to a port not
  // yet in service would cost a second (see NetnsLab's #waitForwarding).
  async #waitCarrier(host: QemuHost, vm: Vm, boundMs = 30_000): Promise<void> {
    const deadline = performance.now() + boundMs;
    for (;;) {
      const [oper, sw] = await Promise.all([
        vm.agent.readFile("/sys/class/net/eth0/operstate").then((s) => s.trim()),
        this.#switch.notForwarding([host.port]),
      ]);
      const pending = [...(oper === "up" ? [] : [`${host.name}'s eth0 (${oper})`]), ...sw];
      if (pending.length === 0) return;
      if (performance.now() > deadline)
        throw new Error(`lab ${this.name}: ${pending.join(", ")} not in service ${boundMs} ms after booting`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  // Keeps what the host's kernel traced before the kernel goes (power off, reset, panic).
  #keepTrace(host: QemuHost): Promise<void> {
    return this.#traces.keep(host);
  }

  // Ends the host's QEMU now: `quit` through QMP, SIGKILL if QMP cannot.
  async #quit(host: QemuHost): Promise<void> {
    const vm = host.vm;
    if (!vm) return;
    vm.agent.abandon("its host was powered off");
    host.vm = undefined;
    host.state = "off";
    this.#switch.silenced.delete(host.name);
    await vm.qmp.execute("quit").catch(() => vm.guest.qemu.kill());
    const timer = setTimeout(() => vm.guest.qemu.kill(), 10_000);
    await vm.guest.qemu.exited;
    clearTimeout(timer);
  }

  /** A power cut: QMP quit stops the vCPUs where they are and QEMU exits; its tap leaves the switch. */
  async powerOff(h: Host | string): Promise<void> {
    const host = this.#impl(h);
    host.alive("powerOff");
    await this.#keepTrace(host);
    this.#fault("powerOff", [host], "QMP quit");
    await this.#quit(host);
  }

  /**
   * A reset through the hypervisor: the same QEMU, NIC, tap and MAC; the kernel boots anew and the
   * agent comes back. bootDelayMs keeps the machine stopped that long after the reset, as a power
   * switch held off would.
   */
  async powerCycle(h: Host | string, options: { bootDelayMs?: number } = {}): Promise<void> {
    const host = this.#impl(h);
    const vm = host.alive("powerCycle");
    await this.#keepTrace(host);
    const delay = options.bootDelayMs ?? 0;
    const ready = vm.guest.rebooted();
    ready.catch(() => {});
    vm.agent.abandon("its host was reset");
    // -no-reboot makes any reset a shutdown unless the reboot action says reset.
    await vm.qmp.execute("set-action", { reboot: "reset" });
    const cmd =
      delay > 0
        ? `QMP set-action reboot=reset; stop; system_reset; ${delay} ms later cont`
        : "QMP set-action reboot=reset; system_reset";
    this.#fault("powerCycle", [host], cmd);
    if (delay > 0) await vm.qmp.execute("stop");
    await vm.qmp.execute("system_reset");
    host.state = "off";
    if (delay > 0) {
      await new Promise((r) => setTimeout(r, delay));
      await vm.qmp.execute("cont");
    }
    await ready;
    // Only now: the firmware resets the machine once more on its way up (SeaBIOS after a warm
    // reset), and a panic from here on should leave the host down again.
    await vm.qmp.execute("set-action", { reboot: "shutdown" });
    host.state = "running";
    const next = await this.#startAgent(host, vm.guest, vm.qmp);
    host.vm = next;
    this.#fault("boot", [host], "the guest's init ready again; agent started", `generation ${host.generation}`);
  }

  async powerOn(h: Host | string): Promise<void> {
    const host = this.#impl(h);
    if (host.state !== "off") throw new Error(`powerOn: ${host.name} is not off`);
    await this.#boot(host);
    this.#fault("boot", [host], `a new QEMU, tap ${host.port}, MAC ${host.mac}`, `generation ${host.generation}`);
  }

  async shutdown(h: Host | string, options: { graceMs?: number } = {}): Promise<void> {
    const host = this.#impl(h);
    const vm = host.alive("shutdown");
    const graceMs = options.graceMs ?? 2000;
    this.#fault("shutdown", [host], "close() of its sockets through the agent, FIN exchanges awaited; then QMP quit");
    await vm.agent.closeAll();
    const deadline = Date.now() + graceMs;
    const closing = new Set(["FIN_WAIT1", "CLOSING", "LAST_ACK"]);
    while (Date.now() < deadline) {
      const rows = await host.sockets();
      if (!rows.some((r) => closing.has(r.state))) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await this.powerOff(host);
  }

  async kill(p: HostProcess, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    this.#fault("kill", [this.#impl(p.host)], `none: the agent runs ${p.argv[0]} to completion`, `${signal}`);
    p.kill(signal);
    await p.exited;
  }

  async exitApplication(h: Host | string): Promise<void> {
    const host = this.#impl(h);
    this.#fault("exit", [host], "close() of every socket the agent holds");
    await host.alive("exitApplication").agent.closeAll();
  }

  /** QMP stop: the guest's vCPUs stop, and with them its clocks: no timer of its fires until cont. */
  async pause(h: Host | string): Promise<void> {
    const host = this.#impl(h);
    const vm = host.alive("pause");
    this.#fault("pause", [host], "QMP stop");
    // The new stretch of guest time starts where the command did: the guest stops somewhere while
    // it runs, and what it does right after resuming must map with the new offset.
    vm.pausedAtGuestNs = vm.clock.guestNow();
    await vm.qmp.execute("stop");
    host.state = "paused";
  }

  /** QMP cont; the guest's clock is mapped again, since it stood still meanwhile. */
  async resume(h: Host | string): Promise<void> {
    const host = this.#impl(h);
    const vm = host.alive("resume");
    this.#fault("resume", [host], "QMP cont");
    await vm.qmp.execute("cont");
    host.state = "running";
    await vm.clock.sync(vm.agent, vm.pausedAtGuestNs);
  }

  async unplug(h: Host | string): Promise<void> {
    const host = this.#impl(h);
    const vm = host.alive("unplug");
    this.#fault("unplug", [host], `QMP set_link name=${NIC} up=false`);
    await vm.qmp.execute("set_link", { name: NIC, up: false });
    host.state = "unplugged";
  }

  async replug(h: Host | string): Promise<void> {
    const host = this.#impl(h);
    const vm = host.alive("replug");
    this.#fault("replug", [host], `QMP set_link name=${NIC} up=true`);
    await vm.qmp.execute("set_link", { name: NIC, up: true });
    await this.#waitCarrier(host, vm);
    host.state = "running";
  }

  async partition(a: ReadonlyArray<Host | string>, b: ReadonlyArray<Host | string>): Promise<void> {
    const ha = a.map((x) => this.#impl(x));
    const hb = b.map((x) => this.#impl(x));
    const ports = (hs: QemuHost[]) => hs.map((x) => x.port).join(",");
    this.#fault(
      "partition",
      [...ha, ...hb],
      `nft bridge drop between ${ports(ha)} and ${ports(hb)}, both ways`,
      `${ha.map((h) => h.name).join(",")} | ${hb.map((h) => h.name).join(",")}`,
    );
    this.#switch.partitions.push([ha.map((h) => h.name), hb.map((h) => h.name)]);
    await this.#switch.applyRules();
  }

  async heal(): Promise<void> {
    this.#fault("heal", [], "nft bridge partition drops removed");
    this.#switch.partitions = [];
    await this.#switch.applyRules();
  }

  async loss(h: Host | string, percent: number): Promise<void> {
    const host = this.#impl(h);
    if (!Number.isInteger(percent) || percent < 0 || percent > 100)
      throw new RangeError(`loss: percent must be an integer 0..100, got ${percent}`);
    this.#fault(
      "loss",
      [host],
      percent === 0
        ? `nft bridge loss drops of ${host.port} removed`
        : `nft bridge drop iifname/oifname ${host.port}${percent < 100 ? ` numgen random mod 100 < ${percent}` : ""}`,
      `${percent}%`,
    );
    if (percent === 0) this.#switch.loss.delete(host.name);
    else this.#switch.loss.set(host.name, percent);
    await this.#switch.applyRules();
  }

  /**
   * A kernel panic in the guest (sysrq c). The kernel's panic=-1 reboots at once, and QEMU's
   * -no-reboot turns that reboot into an exit: the host stays down, silent, as after a power cut,
   * but the kernel stopped itself. The panic line from the console is the fault's detail.
   */
  async crash(h: Host | string): Promise<void> {
    const host = this.#impl(h);
    const vm = host.alive("crash");
    await this.#keepTrace(host);
    this.#fault("crash", [host], "echo c > /proc/sysrq-trigger (through the agent)");
    const event = this.faults.at(-1) as FaultEvent;
    vm.agent.writeFile("/proc/sysrq-trigger", "c").catch(() => {});
    const timer = setTimeout(() => vm.guest.qemu.kill(), 60_000);
    await vm.guest.qemu.exited;
    clearTimeout(timer);
    vm.agent.abandon("its kernel panicked");
    host.vm = undefined;
    host.state = "off";
    this.#switch.silenced.delete(host.name);
    const panic = vm.guest.qemu.console.find((l) => l.includes("Kernel panic"));
    if (panic) {
      const i = this.faults.indexOf(event);
      this.faults[i] = { ...event, detail: panic.replace(/^\[[\s\d.]+\]\s*/, "").trim() };
    }
  }

  async startCapture(dir: string = mkdtempSync(join(tmpdir(), `sockprobe-${this.name}-`))): Promise<string> {
    const on = [...this.#hosts.values()].filter((h) => h.state !== "off");
    for (const h of on) h.capturedQemu = h.vm?.guest.qemu.pid;
    await this.#switch.startCapture(dir, on);
    return dir;
  }

  stopCapture(): Promise<{ packets: Packet[]; files: string[] }> {
    for (const h of this.#hosts.values()) h.capturedQemu = undefined;
    return this.#switch.stopCapture(this.originRealtimeUs());
  }

  capturedPackets(): Promise<Packet[]> {
    return this.#switch.capturedPackets(this.originRealtimeUs());
  }

  originRealtimeUs(): number {
    return (performance.timeOrigin + performance.now()) * 1000 - this.transcript.nowUs();
  }

  /** Each guest's own tracepoints, through its agent, mapped onto the lab's clock. */
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

  /** Every VM quits, then the switch goes. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#aborting.abort(new Error(`lab ${this.name} closed while a host booted`));
    await this.#switch.close();
    await Promise.all(
      [...this.#hosts.values()].map(async (h) => {
        const vm = h.vm;
        if (!vm) return;
        vm.agent.abandon("the lab closed");
        vm.guest.qemu.kill();
        await vm.guest.qemu.exited;
      }),
    );
    await Promise.allSettled([...this.#boots]);
    this.releaseSync();
  }

  releaseSync(): void {
    if (this.#closed) return;
    this.#closed = true;
    openLabs.delete(this);
    if (openLabs.size === 0) process.removeListener("exit", releaseOpenLabs);
    this.#aborting.abort(new Error(`lab ${this.name} closed while a host booted`));
    for (const h of this.#hosts.values()) {
      h.vm?.guest.qemu.kill();
      h.vm = undefined;
      h.state = "off";
    }
    this.#switch.releaseSync();
    this.#lease.release();
  }
}

// Facts of a kernel read once by a guest of its own, for a lab that has no host up yet.
const factsCache = new Map<string, Promise<KernelFacts>>();
/**
 * What `kernel` has, read by booting it once with an agent (cached for the process): also the check,
 * before any lab, that the image boots and its agent answers; a BootError says why not.
 */
export function factsOf(kernel: Kernel): Promise<KernelFacts> {
  let p = factsCache.get(kernel.image);
  if (!p) {
    p = (async () => {
      const guest = await Guest.boot({ kernel, memoryMiB: 512, cpus: 1 });
      try {
        const agent = new AgentClient(guest.job, guest.job, { host: "facts" });
        const early = guest.takeEarly();
        if (early.length) guest.job.emit("data", early);
        guest.start(guestAgentCommand("facts"));
        await Promise.race([
          agent.hello(),
          guest.qemu.exited.then(() => {
            throw new BootError(`Linux ${kernel.release}: the agent's guest died before it answered`);
          }),
          new Promise((_, reject) =>
            setTimeout(
              () => reject(new BootError(`Linux ${kernel.release}: the agent did not answer within 120 s`)),
              120_000,
            ).unref(),
          ),
        ]);
        return await kernelFactsFrom({
          release: kernel.release,
          readdir: (path) => agent.readdir(path),
          readFile: (path) => agent.readFile(path),
        });
      } finally {
        await guest.kill();
      }
    })();
    p.catch(() => factsCache.delete(kernel.image));
    factsCache.set(kernel.image, p);
  }
  return p;
}
