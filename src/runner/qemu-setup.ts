// What a run on the qemu backend needs before any lab: the hosts' kernel, resolved (fetched) and
// booted once with an agent, so that an image that cannot boot is one clear error, not one failed
// scenario after another.
import { existsSync } from "node:fs";
import { release as hostRelease } from "node:os";
import { factsOf } from "../lab/qemu/qemu-lab.js";
import { chooseAccel } from "../vm/accel.js";
import { type Kernel, KernelError, resolveKernel } from "../vm/kernels.js";
import { qemuBinary } from "../vm/qemu.js";

/** What a run on the qemu backend needs: its hosts' kernel, checked to boot, and what to report. */
export interface QemuSetup {
  readonly qemu: { readonly kernel: Kernel };
  readonly release: string;
  readonly version: string;
  readonly describe: string;
}

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
  await factsOf(kernel);
  const accel = await chooseAccel();
  return {
    qemu: { kernel },
    release: kernel.release,
    version: kernel.version ?? "",
    describe: `qemu backend: each host a VM on Linux ${kernel.release} under ${accel.accel.toUpperCase()} (${accel.why}; a probe boot took ${((performance.now() - started) / 1000).toFixed(1)} s)`,
  };
}
