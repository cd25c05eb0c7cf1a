// What a run on the qemu backend needs before any lab: the hosts' kernel, resolved (fetched) and
// booted once with an agent, so that an image that cannot boot is one clear error, not one failed
// scenario after another.
import { existsSync } from "node:fs";
import { release as hostRelease } from "node:os";
import type { KernelFacts } from "../evidence/kernel-facts.js";
import { factsOf } from "../lab/qemu/qemu-lab.js";
import { chooseAccel } from "../vm/accel.js";
import { type Kernel, KernelError, resolveKernel } from "../vm/kernels.js";
import { qemuBinary } from "../vm/qemu.js";

/** A run on VM hosts: the lab options its scenarios get, and what its report says of the hosts. */
export interface LabSetup {
  readonly backend: "qemu" | "vagrant";
  readonly lab: {
    readonly backend: "qemu" | "vagrant";
    readonly qemu?: { readonly kernel: Kernel };
    readonly vagrantDir?: string;
  };
  /** The hosts' kernel, for the report. */
  readonly release: string;
  readonly version: string;
  /** One line for the start of the run. */
  readonly describe: string;
  /** The vagrant backend's provider, machines, boxes and kernels, for the report. */
  readonly vagrant?: VagrantInfo;
  /** What the hosts' kernel has (read through an agent on it), for models computed before any lab. */
  readonly facts: KernelFacts;
}

/** What a report says of a vagrant run. */
export interface VagrantInfo {
  readonly provider: string;
  readonly dir: string;
  readonly machines: ReadonlyArray<{ readonly name: string; readonly box: string; readonly kernel: string }>;
}

/** A run on the qemu backend. */
export type QemuSetup = LabSetup & { readonly lab: { readonly qemu: { readonly kernel: Kernel } } };

/**
 * `--backend qemu`: resolves the hosts' kernel (`host` is this machine's own image under /boot) and
 * boots it once with an agent before any lab, so an image that cannot boot is a clear error (exit 2)
 * and not one failed scenario after another.
 */
export async function qemuSetup(spec: string, modules?: string, resolved?: Kernel): Promise<QemuSetup> {
  qemuBinary();
  let kernel: Kernel;
  if (resolved) kernel = resolved;
  else if (spec === "host") {
    const image = `/boot/vmlinuz-${hostRelease()}`;
    if (!existsSync(image))
      throw new KernelError(
        `--backend qemu boots a kernel in each host: this machine has no ${image} to boot its own; give --kernel 6.12 (a Debian series, fetched once into the cache) or --kernel PATH to an image`,
      );
    kernel = await resolveKernel(image);
  } else kernel = await resolveKernel(spec, { ...(modules ? { modules } : {}), log: (l) => console.error(l) });
  const started = performance.now();
  const facts = await factsOf(kernel);
  const accel = await chooseAccel();
  return {
    backend: "qemu",
    facts,
    lab: { backend: "qemu", qemu: { kernel } },
    release: kernel.release,
    version: kernel.version ?? "",
    describe: `qemu backend: each host a VM on Linux ${kernel.release} under ${accel.accel.toUpperCase()} (${accel.why}; a probe boot took ${((performance.now() - started) / 1000).toFixed(1)} s)`,
  };
}

/**
 * `--backend vagrant`: the running machines of the Vagrantfile in `dir`, their agents asked for
 * their kernel before any lab, so that a machine not running or an agent that does not answer is a
 * clear error (exit 2).
 */
export async function vagrantSetup(dir?: string): Promise<LabSetup> {
  const { createLab } = await import("../lab/create.js");
  const lab = await createLab({ backend: "vagrant", ...(dir ? { vagrantDir: dir } : {}), name: "setup" });
  try {
    const facts = await lab.kernelFacts();
    const v = lab as import("../lab/vagrant/vagrant-lab.js").VagrantLab;
    const up = v.machines.filter((m) => m.state === "running");
    const provider = up[0]?.provider ?? "unknown";
    return {
      backend: "vagrant",
      facts,
      lab: { backend: "vagrant", vagrantDir: v.dir },
      release: facts.release,
      version: "",
      describe: `vagrant backend: ${up.map((m) => m.name).join(" and ")} (${provider}, box ${up[0]?.box ?? "unknown"}, Linux ${facts.release}) from ${v.dir}`,
      vagrant: {
        provider,
        dir: v.dir,
        machines: up.map((m) => ({ name: m.name, box: m.box ?? "unknown", kernel: facts.release })),
      },
    };
  } finally {
    await lab.close();
  }
}
