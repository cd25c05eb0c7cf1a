// The lab's switch: a namespace of the lab's own holding one bridge per switch, and every host's port
// on it (a veth end on netns, a VM's tap on qemu). Silence, partitions, loss and packet captures act
// on those ports, so every backend whose hosts plug in here gets them from the same code.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Capture, type Packet, readPcap, startCapture } from "../evidence/capture.js";
import { run } from "../proc/exec.js";
import { requireTools } from "../proc/tools.js";
import { Netns } from "../sys/socket.js";
import { MAX_SWITCHES } from "./addressing.js";
import { writeSysctl } from "./sysctl.js";

// The switch namespace is layer 2 only: its bridges and ports get no IPv6 address (addr_gen_mode 1,
// none), so they send no DAD probe, router solicitation or MLD report of their own.
const SWITCH_SYSCTLS: Readonly<Record<string, string>> = {
  "net.ipv6.conf.all.addr_gen_mode": "1",
  "net.ipv6.conf.default.addr_gen_mode": "1",
  "net.ipv6.conf.default.router_solicitations": "0",
};

/** The switch's bridges, the fault state of its ports, and the captures on them. */
export class LabSwitch {
  readonly #ns: Netns;
  readonly names: readonly string[];
  /** A host's ports by its name; none while it is off. */
  readonly #portsOf: (host: string) => string[];
  readonly silenced = new Set<string>();
  readonly loss = new Map<string, number>();
  partitions: Array<[string[], string[]]> = [];
  #rulesApplied = false;
  #captureDir: string | undefined;
  readonly #captures: Capture[] = [];

  private constructor(ns: Netns, names: readonly string[], portsOf: (host: string) => string[]) {
    this.#ns = ns;
    this.names = names;
    this.#portsOf = portsOf;
  }

  /** A namespace with one bridge per name: no STP, no forward delay, multicast flooded to every port. */
  static async create(names: readonly string[], portsOf: (host: string) => string[]): Promise<LabSwitch> {
    if (names.length === 0 || names.length > MAX_SWITCHES || new Set(names).size !== names.length) {
      throw new TypeError(`a lab has 1 to ${MAX_SWITCHES} switches with distinct names; got ${JSON.stringify(names)}`);
    }
    let ns: Netns;
    try {
      ns = Netns.create();
    } catch (e) {
      throw new Error(
        "sockprobe's lab needs root to create network namespaces: run it as root (sudo), or inside `unshare --user --map-root-user --net --mount` where the kernel allows unprivileged user namespaces",
        { cause: e },
      );
    }
    try {
      for (const [k, v] of Object.entries(SWITCH_SYSCTLS)) writeSysctl(ns, k, v);
      // No multicast snooping: every port gets every multicast, whatever reports its host sent or not.
      const cmds = names.flatMap((_, i) => [
        `link add br${i} type bridge forward_delay 0 stp_state 0 mcast_snooping 0`,
        `link set br${i} up`,
      ]);
      await run(["ip", "-batch", "-"], { netns: ns.path, input: cmds.join("\n") });
    } catch (e) {
      ns.close();
      throw e;
    }
    return new LabSwitch(ns, names, portsOf);
  }

  /** Path of the switch namespace: where ports are made, captured and filtered. */
  get path(): string {
    return this.#ns.path;
  }

  /** A switch's index by name (the first when undefined). */
  index(name: string | undefined): number {
    const i = name === undefined ? 0 : this.names.indexOf(name);
    if (i < 0) throw new TypeError(`no switch ${JSON.stringify(name)} in this lab; it has ${this.names.join(", ")}`);
    return i;
  }

  /** Runs `ip -batch` commands in the switch namespace. */
  async run(cmds: readonly string[]): Promise<void> {
    await run(["ip", "-batch", "-"], { netns: this.#ns.path, input: cmds.join("\n") });
  }

  /** Rewrites the bridge's filter chain from the silenced hosts, partitions and losses. */
  async applyRules(): Promise<void> {
    requireTools(["nft"]);
    const ports = this.#portsOf;
    const lines = [
      "table bridge sockprobe {}",
      "flush table bridge sockprobe",
      "table bridge sockprobe {",
      "  chain forward { type filter hook forward priority 0; policy accept;",
    ];
    for (const name of this.silenced)
      for (const p of ports(name)) lines.push(`    iifname "${p}" drop`, `    oifname "${p}" drop`);
    for (const [a, b] of this.partitions) {
      for (const x of a.flatMap(ports)) {
        for (const y of b.flatMap(ports))
          lines.push(`    iifname "${x}" oifname "${y}" drop`, `    iifname "${y}" oifname "${x}" drop`);
      }
    }
    for (const [name, pct] of this.loss) {
      for (const p of ports(name)) {
        const match = pct >= 100 ? "" : ` numgen random mod 100 < ${pct}`;
        lines.push(`    iifname "${p}"${match} drop`, `    oifname "${p}"${match} drop`);
      }
    }
    lines.push("  }", "}");
    await run(["nft", "-f", "-"], { netns: this.#ns.path, input: lines.join("\n") });
    this.#rulesApplied = true;
  }

  /** After a host's ports come back (a boot), the rules are written again if any ever were; says whether. */
  async reapplyRules(): Promise<boolean> {
    if (this.#rulesApplied) await this.applyRules();
    return this.#rulesApplied;
  }

  /** Ports not UP or not yet forwarding on their bridge, each with what it is instead. */
  async notForwarding(ports: readonly string[]): Promise<string[]> {
    type Link = {
      ifname: string;
      operstate?: string;
      linkinfo?: { info_kind?: string; info_slave_data?: { state?: string } };
    };
    const isTap = (l: Link) => l.linkinfo?.info_kind === "tun";
    const links = JSON.parse(
      (await run(["ip", "-j", "-d", "link", "show"], { netns: this.#ns.path })).stdout,
    ) as Link[];
    const pending: string[] = [];
    for (const name of ports) {
      const l = links.find((x) => x.ifname === name);
      const state = l?.linkinfo?.info_slave_data?.state;
      // A tap's operstate stays UNKNOWN (tun reports no link mode); its bridge state still says.
      const up = l?.operstate === "UP" || (l?.operstate === "UNKNOWN" && isTap(l));
      if (!up || state !== "forwarding")
        pending.push(`switch port ${name} (${l?.operstate ?? "missing"}, ${state ?? "no bridge state"})`);
    }
    return pending;
  }

  /** Whether captures are running: a host plugged in now is captured too. */
  get capturing(): boolean {
    return this.#captureDir !== undefined;
  }

  /** Starts capturing into `dir`; `hosts` are captured at once (those plugged in later by captureHost). */
  async startCapture(dir: string, hosts: ReadonlyArray<{ name: string; generation: number }>): Promise<void> {
    requireTools(["tcpdump"]);
    mkdirSync(dir, { recursive: true });
    this.#captureDir = dir;
    for (const h of hosts) await this.captureHost(h.name, h.generation);
  }

  /** One pcap file per port of the host and boot: `kang.g2.pcap`, `router-eth1.g1.pcap`. */
  async captureHost(name: string, generation: number): Promise<void> {
    const dir = this.#captureDir;
    if (dir === undefined) return;
    for (const [n, port] of this.#portsOf(name).entries()) {
      const suffix = n === 0 ? "" : `-eth${n}`;
      const cap = await startCapture({
        netns: this.#ns.path,
        iface: port,
        file: join(dir, `${name}${suffix}.g${generation}.pcap`),
        host: name,
      });
      // Closed while tcpdump started: stop it here, nobody else will.
      if (this.#captureDir !== dir) {
        await cap.stop().catch(() => {});
        return;
      }
      this.#captures.push(cap);
    }
  }

  /** Stops every capture and returns the packets of all hosts on the lab's clock, in time order. */
  async stopCapture(originRealtimeUs: number): Promise<{ packets: Packet[]; files: string[] }> {
    const caps = this.#captures.splice(0);
    this.#captureDir = undefined;
    await Promise.all(caps.map((c) => c.stop()));
    return { packets: await readCaptures(caps, originRealtimeUs), files: caps.map((c) => c.file) };
  }

  /** The packets captured so far, capture still running: tcpdump writes each packet as it sees it. */
  capturedPackets(originRealtimeUs: number): Promise<Packet[]> {
    return readCaptures(this.#captures, originRealtimeUs);
  }

  /** Stops the captures, then releases the namespace (its ports and bridges go with it). */
  async close(): Promise<void> {
    const caps = this.#captures.splice(0);
    this.#captureDir = undefined;
    await Promise.all(caps.map((c) => c.stop().catch(() => {})));
  }

  /** What must go even on process exit, synchronously: the namespace. */
  releaseSync(): void {
    this.#ns.close();
  }
}

async function readCaptures(caps: readonly Capture[], originRealtimeUs: number): Promise<Packet[]> {
  const packets = (await Promise.all(caps.map((c) => readPcap(c.file, { host: c.host, originRealtimeUs })))).flat();
  return packets.sort((a, b) => a.atUs - b.atUs);
}
