// A Vagrant provider's own hand on a machine: power, reset, pause and the cable go through the
// hypervisor's API, never through Vagrant (`vagrant halt` is graceful and resumes a paused machine
// first; `vagrant suspend` is a save-state on VirtualBox). Each adapter only builds command lines;
// the lab runs them, so the same lines are what the report records and what the tests check.

/** The provider commands a vagrant lab needs, for one machine of that provider. */
export interface ProviderAdapter {
  readonly provider: "libvirt" | "virtualbox";
  /** A power cut. */
  powerOff(id: string): string[];
  /** Boots a machine that is off. */
  start(id: string): string[];
  /** A hard reset: the machine reboots at once, without a word to its kernel. */
  reset(id: string): string[];
  /** Stops its vCPUs, state kept in memory. */
  pause(id: string): string[];
  resume(id: string): string[];
  /** The cable of the NIC with this MAC: up or down. */
  setLink(id: string, mac: string, nic: number, up: boolean): string[];
  /** The machine's state as the hypervisor reports it ("running", "paused", "shut off", …). */
  state(id: string): string[];
}

/** libvirt through virsh, on the system connection vagrant-libvirt uses. */
export const LIBVIRT: ProviderAdapter = {
  provider: "libvirt",
  powerOff: (id) => ["virsh", "-c", "qemu:///system", "destroy", id],
  start: (id) => ["virsh", "-c", "qemu:///system", "start", id],
  reset: (id) => ["virsh", "-c", "qemu:///system", "reset", id],
  pause: (id) => ["virsh", "-c", "qemu:///system", "suspend", id],
  resume: (id) => ["virsh", "-c", "qemu:///system", "resume", id],
  setLink: (id, mac, _nic, up) => ["virsh", "-c", "qemu:///system", "domif-setlink", id, mac, up ? "up" : "down"],
  state: (id) => ["virsh", "-c", "qemu:///system", "domstate", id],
};

/** VirtualBox through VBoxManage (not run on these machines: Debian has no VirtualBox package). */
export const VIRTUALBOX: ProviderAdapter = {
  provider: "virtualbox",
  powerOff: (id) => ["VBoxManage", "controlvm", id, "poweroff"],
  start: (id) => ["VBoxManage", "startvm", id, "--type", "headless"],
  reset: (id) => ["VBoxManage", "controlvm", id, "reset"],
  pause: (id) => ["VBoxManage", "controlvm", id, "pause"],
  resume: (id) => ["VBoxManage", "controlvm", id, "resume"],
  // VirtualBox numbers NICs from 1; the lab's private network is Vagrant's second (NAT is the first).
  setLink: (id, _mac, nic, up) => ["VBoxManage", "controlvm", id, `setlinkstate${nic}`, up ? "on" : "off"],
  state: (id) => ["VBoxManage", "showvminfo", id, "--machinereadable"],
};

/** The adapter for a provider name as `vagrant status` reports it; undefined for one sockprobe lacks. */
export function adapterFor(provider: string): ProviderAdapter | undefined {
  return provider === "libvirt" ? LIBVIRT : provider === "virtualbox" ? VIRTUALBOX : undefined;
}

/** The hypervisor's state in one word: running, paused or off. */
export function parseState(provider: ProviderAdapter["provider"], stdout: string): "running" | "paused" | "off" {
  const s =
    provider === "virtualbox" ? (/^VMState="([^"]*)"/m.exec(stdout)?.[1] ?? "") : stdout.trim().split("\n")[0]?.trim();
  if (s === "running") return "running";
  if (s === "paused") return "paused";
  return "off";
}
