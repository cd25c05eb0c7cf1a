// The machines of a Vagrant project, as Vagrant and the provider see them, and how to reach them:
// vagrant and ssh run inside the namespace where libvirt's networks live when libvirtd runs in one of
// sockprobe's own (vagrant/libvirt-netns.sh), else where we are.

import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { run } from "../../proc/exec.js";
import { which } from "../../proc/tools.js";
import { adapterFor, type ProviderAdapter } from "./provider.js";

/** Bad input for the vagrant backend (Vagrant or a provider missing, a machine not running): exit 2. */
export class VagrantError extends Error {}
Object.defineProperty(VagrantError.prototype, "name", { value: "VagrantError" });

/** One machine of the Vagrantfile. */
export interface VagrantMachine {
  readonly name: string;
  readonly provider: string;
  /** Vagrant's word for it: running, paused, shutoff, not_created, poweroff, … */
  readonly state: string;
  /** The provider's id (libvirt domain UUID, VirtualBox VM UUID); undefined before `vagrant up`. */
  readonly id: string | undefined;
  /** The box it was made from, as Vagrant recorded it. */
  readonly box: string | undefined;
  readonly adapter: ProviderAdapter | undefined;
}

/** The namespace sockprobe's libvirtd runs in, if it does (`SOCKPROBE_VAGRANT_NETNS` names another). */
export function vagrantNetns(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.SOCKPROBE_VAGRANT_NETNS) return env.SOCKPROBE_VAGRANT_NETNS;
  const ours = "/run/netns/sockprobe-libvirt";
  return existsSync(ours) ? ours : undefined;
}

/** A command line run where the guests are reachable. */
export function inVagrantNetns(argv: readonly string[], netns = vagrantNetns()): string[] {
  return netns ? ["nsenter", `--net=${netns}`, "--", ...argv] : [...argv];
}

/** The folder of the project's Vagrantfile (`vagrant/` of this checkout by default). */
export function defaultVagrantDir(): string {
  return resolve(new URL("../../../vagrant", import.meta.url).pathname);
}

/** Vagrant's own view of the machines in `dir`, with each one's provider id and box. */
export async function findMachines(dir: string): Promise<VagrantMachine[]> {
  if (!which("vagrant"))
    throw new VagrantError(
      "the vagrant backend needs Vagrant: apt-get install -y vagrant vagrant-libvirt (or Vagrant and VirtualBox from their vendor)",
    );
  if (!existsSync(join(dir, "Vagrantfile")))
    throw new VagrantError(`no Vagrantfile in ${dir}: give --vagrant-dir the folder with sockprobe's Vagrantfile`);
  const r = await run(inVagrantNetns(["vagrant", "status", "--machine-readable"]), {
    cwd: dir,
    allowFail: true,
    timeoutMs: 120_000,
  });
  if (r.code !== 0) {
    const said = (r.stderr || r.stdout).trim().split("\n").slice(-3).join(" ");
    throw new VagrantError(`vagrant status in ${dir} failed: ${said}`);
  }
  const fields = new Map<string, Record<string, string>>();
  for (const line of r.stdout.split("\n")) {
    const [, target, kind, ...rest] = line.split(",");
    if (!target || !kind) continue;
    const m = fields.get(target) ?? {};
    m[kind] = rest.join(",");
    fields.set(target, m);
  }
  const machines: VagrantMachine[] = [];
  for (const [name, f] of fields) {
    if (!f["provider-name"]) continue;
    const provider = f["provider-name"];
    const dataDir = join(dir, ".vagrant", "machines", name, provider);
    const read = (file: string) => {
      try {
        return readFileSync(join(dataDir, file), "utf8").trim();
      } catch {
        return undefined;
      }
    };
    let box: string | undefined;
    try {
      box = (JSON.parse(read("box_meta") ?? "{}") as { name?: string; version?: string }).name;
    } catch {}
    machines.push({ name, provider, state: f.state ?? "unknown", id: read("id"), box, adapter: adapterFor(provider) });
  }
  return machines;
}

/** Whether `dir` holds a Vagrant project with machines already created (cheap: no vagrant call). */
export function machinesCreated(dir: string): boolean {
  return existsSync(join(dir, ".vagrant", "machines"));
}
