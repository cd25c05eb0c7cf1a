// Kernels under test: the host's, a Debian series fetched once into the cache, or an image of the
// user's own. Each resolves to a bzImage, its release, and the module tree its guest loads from.
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join, resolve } from "node:path";
import { run } from "../proc/exec.js";
import { which } from "../proc/tools.js";
import { kernelsDir } from "./cache.js";

/** A kernel sockprobe can boot. */
export interface Kernel {
  /** As the user named it: `6.12`, or a path. */
  readonly spec: string;
  /** `uname -r` of the guest: `6.12.117+deb12-amd64`. */
  readonly release: string;
  /** The upstream version where known: `6.12.117`. */
  readonly version?: string;
  /** The bzImage. */
  readonly image: string;
  /** A root holding `lib/modules/<release>`, or none when everything needed is built in. */
  readonly modulesRoot?: string;
  /** Where it came from: a Debian package, or a path the user gave. */
  readonly source:
    | { readonly kind: "debian"; readonly package: string; readonly packageVersion: string }
    | { readonly kind: "path" };
}

/** A kernel that cannot be had or cannot boot: bad input, said with what to do about it. */
export class KernelError extends Error {
  readonly code = "ESOCKPROBE_KERNEL";
}
Object.defineProperty(KernelError.prototype, "name", { value: "KernelError" });

/** What a self-built kernel needs, built in (=y) or as modules given with --modules. */
export const KERNEL_CONFIG: ReadonlyArray<readonly [string, string]> = [
  ["CONFIG_VIRTIO_PCI", "the guest's devices"],
  ["CONFIG_VIRTIO_CONSOLE", "the channels to sockprobe (virtio-serial ports)"],
  ["CONFIG_VIRTIO_NET", "a VM host's NIC"],
  ["CONFIG_NET_9P", "the host's root, shared read-only"],
  ["CONFIG_NET_9P_VIRTIO", "the host's root, shared read-only"],
  ["CONFIG_9P_FS", "the host's root, shared read-only"],
  ["CONFIG_DEVTMPFS", "device nodes without udev"],
  ["CONFIG_BLK_DEV_INITRD", "sockprobe's initramfs"],
  ["CONFIG_TMPFS", "writable /run"],
  ["CONFIG_NET_NS", "the lab's hosts"],
  ["CONFIG_VETH", "the lab's cables"],
  ["CONFIG_BRIDGE", "the lab's switch"],
  ["CONFIG_NF_TABLES", "partitions, pause and loss"],
  ["CONFIG_NF_TABLES_BRIDGE", "filtering on the switch"],
  ["CONFIG_NFT_NUMGEN", "packet loss"],
  ["CONFIG_INET_DIAG", "the socket table (ss)"],
  ["CONFIG_INET_TCP_DIAG", "the socket table (ss)"],
  ["CONFIG_PACKET", "packet captures (tcpdump)"],
  ["CONFIG_FTRACE", "TCP state evidence (tracefs)"],
  ["CONFIG_MAGIC_SYSRQ", "a guest panic on demand (sysrq c)"],
  ["CONFIG_SERIAL_8250_CONSOLE", "the boot log on ttyS0"],
];

// The kernel options behind each boot module, for the error that names a missing one.
const MODULE_CONFIG: Readonly<Record<string, readonly string[]>> = {
  virtio_pci: ["CONFIG_VIRTIO_PCI"],
  virtio_console: ["CONFIG_VIRTIO_CONSOLE"],
  "9pnet_virtio": ["CONFIG_NET_9P", "CONFIG_NET_9P_VIRTIO"],
  "9p": ["CONFIG_NET_9P", "CONFIG_NET_9P_VIRTIO", "CONFIG_9P_FS"],
  virtio_net: ["CONFIG_VIRTIO_NET"],
};

// What the guest must load before it can mount the host's root and talk to sockprobe, and its NIC
// (udev would load that on a distro; the guest has none).
export const BOOT_MODULES = ["virtio_pci", "virtio_console", "9pnet_virtio", "9p", "virtio_net"] as const;

const SERIES = /^\d+\.\d+$/;

/** Reads the release out of a bzImage's setup header; throws when the file is not one. */
export function bzImageRelease(path: string): string {
  const fd = openSync(path, "r");
  try {
    const head = Buffer.alloc(0x4000);
    const n = readSync(fd, head, 0, head.length, 0);
    if (n < 0x210 || head.toString("latin1", 0x202, 0x206) !== "HdrS") {
      throw new KernelError(`${path} is not a kernel image (no bzImage header): give a bzImage or a distro vmlinuz`);
    }
    const at = 0x200 + head.readUInt16LE(0x20e);
    const buf = Buffer.alloc(256);
    readSync(fd, buf, 0, buf.length, at);
    const text = buf.toString("latin1");
    return text.slice(0, text.indexOf(" ") >= 0 ? text.indexOf(" ") : text.indexOf("\0"));
  } finally {
    closeSync(fd);
  }
}

/** Compares versions in names the way `sort -V` does: numbers by value, the rest by text. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/(\d+)/);
  const pb = b.split(/(\d+)/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? "";
    const y = pb[i] ?? "";
    if (x === y) continue;
    if (i % 2 === 1) return Number(x) - Number(y);
    return x < y ? -1 : 1;
  }
  return 0;
}

/** The Debian package names apt knows for a series: `linux-image-6.1.0-56-amd64`, the plain flavour only. */
export function debianPackagesFor(series: string, names: readonly string[]): string[] {
  const esc = series.replace(/\./g, "\\.");
  const re = new RegExp(`^linux-image-${esc}[.-][0-9][^ ]*-amd64$`);
  return names.filter((n) => re.test(n) && !/-(cloud|rt|dbg|unsigned)-|-(dbg|unsigned)$/.test(n)).sort(compareVersions);
}

function metaPath(dir: string): string {
  return join(dir, "kernel.json");
}

/** Every kernel in the cache, newest first. */
export function cachedKernels(): Kernel[] {
  const dir = kernelsDir();
  if (!existsSync(dir)) return [];
  const out: Kernel[] = [];
  for (const name of readdirSync(dir)) {
    if (name.startsWith(".")) continue;
    try {
      out.push(JSON.parse(readFileSync(metaPath(join(dir, name)), "utf8")) as Kernel);
    } catch {}
  }
  return out.sort((a, b) => compareVersions(b.release, a.release));
}

/** The series a release belongs to: `6.12` for `6.12.117+deb12-amd64`. */
export function seriesOf(release: string): string {
  return /^(\d+\.\d+)/.exec(release)?.[1] ?? release;
}

async function aptPackageNames(series: string): Promise<string[]> {
  if (!which("apt-cache"))
    throw new KernelError(
      "fetching a Debian kernel needs apt (apt-cache, apt-get): give a path to a kernel image instead",
    );
  const r = await run(["apt-cache", "pkgnames", "linux-image-"], { allowFail: true, timeoutMs: 60_000 });
  return debianPackagesFor(series, r.stdout.split("\n"));
}

/** Downloads the newest Debian kernel of a series and unpacks it into the cache. */
export async function fetchDebianKernel(series: string, log: (line: string) => void = () => {}): Promise<Kernel> {
  const packages = await aptPackageNames(series);
  const pkg = packages.at(-1);
  if (!pkg) {
    const r = await run(["apt-cache", "pkgnames", "linux-image-"], { allowFail: true, timeoutMs: 60_000 });
    const known = [
      ...new Set(
        r.stdout
          .split("\n")
          .map((n) => /^linux-image-(\d+\.\d+)[.-][0-9].*-amd64$/.exec(n)?.[1])
          .filter(Boolean) as string[],
      ),
    ].sort(compareVersions);
    throw new KernelError(
      `no Debian kernel package linux-image-${series}…-amd64 is known to apt${known.length ? `; it knows the series ${known.join(", ")}` : " (run apt-get update first)"}`,
    );
  }
  const root = kernelsDir();
  mkdirSync(root, { recursive: true });
  const work = mkdtempSync(join(root, ".fetch-"));
  try {
    log(`fetching ${pkg} from Debian's archive (once; cached in ${root})`);
    const dl = await run(["apt-get", "download", "-q", pkg], { allowFail: true, timeoutMs: 600_000, cwd: work });
    const deb = readdirSync(work).find((f) => f.endsWith(".deb"));
    if (!deb)
      throw new KernelError(`apt-get download ${pkg} failed: ${(dl.stderr || dl.stdout).trim().split("\n").at(-1)}`);
    const packageVersion = (await run(["dpkg-deb", "-f", join(work, deb), "Version"])).stdout.trim();
    const tree = join(work, "root");
    await run(["dpkg-deb", "-x", join(work, deb), tree], { timeoutMs: 600_000 });
    rmSync(join(work, deb));
    const image = readdirSync(join(tree, "boot")).find((f) => f.startsWith("vmlinuz-"));
    if (!image) throw new KernelError(`${pkg} has no boot/vmlinuz-*`);
    const release = image.slice("vmlinuz-".length);
    await run(["depmod", "-b", tree, release], { timeoutMs: 300_000 });
    const dest = join(root, release);
    const kernel: Kernel = {
      spec: series,
      release,
      version: packageVersion.replace(/-.*$/, ""),
      image: join(dest, "root", "boot", image),
      modulesRoot: join(dest, "root"),
      source: { kind: "debian", package: pkg, packageVersion },
    };
    writeFileSync(metaPath(work), `${JSON.stringify(kernel, null, 2)}\n`);
    rmSync(dest, { recursive: true, force: true });
    renameSync(work, dest);
    return kernel;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

// A root R with R/lib/modules/<release>, from any of the layouts a user may point at.
function modulesRootFrom(dir: string, release: string): string {
  const d = resolve(dir);
  const candidates = [d, join(d, "..", ".."), join(d, "..", "..", "..")];
  for (const c of candidates) if (existsSync(join(c, "lib", "modules", release))) return resolve(c);
  throw new KernelError(
    `--modules ${dir} has no modules for ${release}: give the folder \`make modules_install INSTALL_MOD_PATH=DIR\` wrote (DIR/lib/modules/${release})`,
  );
}

/** Resolves `--kernel` (not `host`) to a bootable kernel, fetching a Debian series the first time. */
export async function resolveKernel(
  spec: string,
  options: { modules?: string; log?: (line: string) => void } = {},
): Promise<Kernel> {
  if (SERIES.test(spec)) {
    if (options.modules)
      throw new KernelError(`--modules goes with a kernel image path, not with the Debian series ${spec}`);
    const cached = cachedKernels().find((k) => k.source.kind === "debian" && seriesOf(k.release) === spec);
    return cached ?? (await fetchDebianKernel(spec, options.log));
  }
  if (!spec.includes("/") && !existsSync(spec)) {
    throw new KernelError(
      `unknown kernel ${JSON.stringify(spec)}: give \`host\`, a Debian series such as 6.1 or 6.12, or a path to a kernel image`,
    );
  }
  const image = resolve(spec);
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(image);
  } catch {
    throw new KernelError(`kernel image ${spec} does not exist`);
  }
  if (!st.isFile()) throw new KernelError(`kernel image ${spec} is not a file`);
  const release = bzImageRelease(image);
  const modulesRoot = options.modules ? modulesRootFrom(options.modules, release) : undefined;
  if (modulesRoot && !existsSync(join(modulesRoot, "lib", "modules", release, "modules.dep"))) {
    await run(["depmod", "-b", modulesRoot, release], { timeoutMs: 300_000 });
  }
  return { spec, release, image, ...(modulesRoot ? { modulesRoot } : {}), source: { kind: "path" } };
}

/** Which modules to insmod, in order, for `names`; builtin ones are left out. Throws naming what is missing. */
export async function moduleChain(kernel: Kernel, names: readonly string[]): Promise<string[]> {
  if (!kernel.modulesRoot) return [];
  const out: string[] = [];
  for (const name of names) {
    const r = await run(["modprobe", "-d", kernel.modulesRoot, "-S", kernel.release, "--show-depends", name], {
      allowFail: true,
    });
    if (r.code !== 0) {
      throw new KernelError(
        `kernel ${kernel.release} has no ${name} (neither built in nor among the modules in ${join(kernel.modulesRoot, "lib/modules", kernel.release)}); sockprobe needs ${(MODULE_CONFIG[name] ?? [`the module ${name}`]).join(", ")} (see \`sockprobe kernels --config\`)`,
      );
    }
    for (const line of r.stdout.split("\n")) {
      const m = /^insmod (\S+)/.exec(line);
      if (!m || out.includes(m[1] as string)) continue;
      if (!existsSync(m[1] as string)) {
        throw new KernelError(
          `modules.dep of ${kernel.release} lists ${m[1]}, which is missing: run \`depmod -b ${kernel.modulesRoot} ${kernel.release}\``,
        );
      }
      out.push(m[1] as string);
    }
  }
  return out;
}

/** A short name for tables: `6.12.117`, or the release. */
export function kernelLabel(k: Pick<Kernel, "release" | "version">): string {
  return k.version ?? k.release;
}
