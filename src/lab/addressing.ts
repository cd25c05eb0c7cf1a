// Address plan: every lab on the machine gets its own /24 of 198.18.0.0/15 (and fd00::/8), so a
// tracepoint, which carries no namespace, can still be told apart lab by lab.
import { createServer, type Server } from "node:net";

/** The most labs that can run at once on one machine: the /24s in 198.18.0.0/15. */
export const MAX_LABS = 512;
/** Switches a lab may have: each takes a /26 of the lab's /24. */
export const MAX_SWITCHES = 4;
/** Hosts a switch may carry (the last address of the /26 is the router's). */
export const MAX_HOSTS_PER_SWITCH = 60;

/** The addresses of one interface. */
export interface InterfacePlan {
  ipv4: string;
  ipv6: string;
  prefix4: number;
  prefix6: number;
  mac: string;
}

const hex2 = (n: number) => n.toString(16).padStart(2, "0");

// The form the kernel reports (RFC 5952), so addresses compare equal as text.
const canonical6 = (a: string) => new URL(`http://[${a}]/`).hostname.slice(1, -1);

/** A lab's slice of the lab ranges. */
export class AddressPlan {
  constructor(readonly labId: number) {
    if (!Number.isInteger(labId) || labId < 0 || labId >= MAX_LABS)
      throw new RangeError(`lab id ${labId} out of range`);
  }

  /** 198.18.0.0/15 split in /24s by lab id. */
  get subnet4(): string {
    return `198.${18 + (this.labId >> 8)}.${this.labId & 255}.0/24`;
  }

  #base4(): string {
    return `198.${18 + (this.labId >> 8)}.${this.labId & 255}`;
  }

  /** Host `index` (0-based) on switch `sw`; index MAX_HOSTS_PER_SWITCH + 1 is the switch's router. */
  iface(sw: number, index: number): InterfacePlan {
    if (sw < 0 || sw >= MAX_SWITCHES)
      throw new RangeError(`switch ${sw} out of range (a lab has at most ${MAX_SWITCHES})`);
    if (index < 0 || index > MAX_HOSTS_PER_SWITCH + 1) throw new RangeError(`host index ${index} out of range`);
    const last = sw * 64 + 1 + index;
    return {
      ipv4: `${this.#base4()}.${last}`,
      ipv6: canonical6(`fd00:5b:${this.labId.toString(16)}:${sw}::${(index + 1).toString(16)}`),
      prefix4: 26,
      prefix6: 64,
      // Locally administered, fixed by lab, switch and index: a power-cycled host keeps its MAC, as a NIC does.
      mac: `02:5b:${hex2(this.labId >> 8)}:${hex2(this.labId & 255)}:${hex2(sw)}:${hex2(index + 1)}`,
    };
  }

  /** The router's interface on switch `sw`. */
  router(sw: number): InterfacePlan {
    return this.iface(sw, MAX_HOSTS_PER_SWITCH + 1);
  }

  /** The IPv4 network of switch `sw`, for routes. */
  network4(sw: number): string {
    return `${this.#base4()}.${sw * 64}/26`;
  }

  /** The IPv6 network of switch `sw`. */
  network6(sw: number): string {
    return `fd00:5b:${this.labId.toString(16)}:${sw}::/64`;
  }
}

/** A lab id held for as long as this process keeps it: an abstract unix socket, which the kernel frees when the process dies. */
export interface LabIdLease {
  readonly id: number;
  release(): void;
}

function tryListen(name: string): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(undefined));
    server.listen({ path: `\0${name}`, exclusive: true }, () => {
      server.unref();
      resolve(server);
    });
  });
}

/** Leases a free lab id, starting from a point that spreads concurrent processes apart. */
export async function leaseLabId(start = (process.pid * 7) % MAX_LABS): Promise<LabIdLease> {
  for (let k = 0; k < MAX_LABS; k++) {
    const id = (start + k) % MAX_LABS;
    const server = await tryListen(`sockprobe-lab-${id}`);
    if (server) return { id, release: () => server.close() };
  }
  throw new Error(`all ${MAX_LABS} lab address slots are in use on this machine: close some labs first`);
}
