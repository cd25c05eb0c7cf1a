// The one place a backend is chosen: callers ask for a Lab and never name a class.
import type { Kernel } from "../vm/kernels.js";
import type { Lab, LabOptions } from "./lab.js";
import { NetnsLab } from "./netns/netns.js";

/** How a lab is made, and on which backend. */
export interface CreateLabOptions extends LabOptions {
  /**
   * "netns" (default): each host a network namespace on a bridge; "qemu": each host a VM;
   * "vagrant": the running machines of a Vagrantfile.
   */
  readonly backend?: "netns" | "qemu" | "vagrant";
  /** The vagrant backend's Vagrantfile folder (this checkout's vagrant/ by default). */
  readonly vagrantDir?: string;
  /** The qemu backend's hosts: the kernel they boot, and each VM's size. */
  readonly qemu?: { readonly kernel: Kernel; readonly memoryMiB?: number; readonly cpus?: number };
}

/** Builds a lab on the chosen backend (netns by default). */
export async function createLab(options: CreateLabOptions = {}): Promise<Lab> {
  const { backend = "netns", qemu, vagrantDir, ...lab } = options;
  switch (backend) {
    case "netns":
      return NetnsLab.create(lab);
    case "qemu": {
      if (!qemu) throw new TypeError("a qemu lab needs the kernel its hosts boot: give qemu: { kernel }");
      // Loaded on demand: a netns run never reads the VM code.
      const { QemuLab } = await import("./qemu/qemu-lab.js");
      return QemuLab.create({ ...lab, ...qemu, ...(lab.control === "in-process" ? {} : { control: "agent" }) });
    }
    case "vagrant": {
      const { VagrantLab } = await import("./vagrant/vagrant-lab.js");
      return VagrantLab.create({ ...lab, ...(vagrantDir ? { vagrantDir } : {}) });
    }
    default:
      throw new TypeError(`no lab backend ${JSON.stringify(backend)} in this build: it has netns, qemu and vagrant`);
  }
}
