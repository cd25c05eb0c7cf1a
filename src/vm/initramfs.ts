// The guest's first userspace: a static busybox, the modules the boot needs, and an init that mounts
// the host's root read-only over 9p, says it is ready, runs one job from sockprobe, sends back its
// output files and powers off. Built once per kernel and kept in the cache.
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { basename, join } from "node:path";
import { run } from "../proc/exec.js";
import { which } from "../proc/tools.js";
import { cacheDir } from "./cache.js";
import { BOOT_MODULES, type Kernel, KernelError, moduleChain } from "./kernels.js";

/** Names of the virtio-serial ports between sockprobe and the guest. */
export const PORTS = { job: "org.sockprobe.job", err: "org.sockprobe.err" } as const;

/** Lines the guest's init prints, which the host watches for. */
export const MARK = {
  ready: "SOCKPROBE-READY",
  bootError: "SOCKPROBE-BOOT-ERROR",
  exit: "SOCKPROBE-EXIT",
} as const;

// Paths inside the guest, under its writable /run.
export const GUEST_OUT = "/run/sockprobe/out";

// busybox sh. The job line is shell words: the root of the guest's module tree, then what `env -i`
// runs. The kernel loads modules on demand (a veth, nf_tables) through /sbin/modprobe of the
// initramfs, which runs the host's kmod on the guest's own modules inside the shared root.
const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
fail() { echo "${MARK.bootError} $*" > /dev/console; poweroff -f; }
for m in $(ls /mods | sort); do insmod /mods/$m || fail "module: insmod $m failed"; done
grep -qw 9p /proc/filesystems || fail "no-9p: the kernel has no 9p filesystem (CONFIG_9P_FS, CONFIG_NET_9P_VIRTIO)"
JOB= ; ERR=
for p in /sys/class/virtio-ports/*; do
  [ -e "$p/name" ] || continue
  case "$(cat $p/name)" in ${PORTS.job}) JOB=/dev/\${p##*/};; ${PORTS.err}) ERR=/dev/\${p##*/};; esac
done
[ -n "$JOB" ] && [ -n "$ERR" ] || fail "no-virtio-console: the kernel has no virtio-serial ports (CONFIG_VIRTIO_PCI, CONFIG_VIRTIO_CONSOLE)"
R=/newroot
mkdir -p $R /tmp
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot $R || fail "no-9p-mount: mounting the host's root over 9p failed"
mount -t tmpfs -o mode=755 run $R/run || fail "tmpfs on /run failed"
mount -t proc proc $R/proc
mount -t sysfs sys $R/sys
mount -t devtmpfs dev $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs shm $R/dev/shm
mount -t tracefs tracefs $R/sys/kernel/tracing 2>/dev/null
mkdir -p $R${GUEST_OUT} $R/run/sockprobe/tmp $R/run/sockprobe/home
hostname sockprobe-guest
exec 3<>$JOB
echo "${MARK.ready} $(cut -d' ' -f1 /proc/uptime)" >&3
read -r LINE <&3
eval "set -- $LINE"
MODS=$1; shift
[ -n "$MODS" ] && printf '#!/bin/busybox sh\nexec /bin/busybox chroot %s /sbin/modprobe -d %s "$@"\n' $R "'$MODS'" > /sbin/modprobe && chmod 755 /sbin/modprobe
chroot $R /sbin/ip link set lo up 2>/dev/null
chroot $R /usr/bin/env -i "$@" <&3 >&3 2>$ERR
RC=$?
(cd $R${GUEST_OUT} && tar -cf /tmp/out.tar .)
echo "${MARK.exit} $RC $(wc -c < /tmp/out.tar)" >&3
cat /tmp/out.tar >&3
read -r ACK <&3
poweroff -f
`;

/** The initramfs for a kernel: built once, then taken from the cache. */
export async function initramfsFor(kernel: Kernel): Promise<string> {
  const busybox = ["/bin/busybox", "/usr/bin/busybox"].find((p) => existsSync(p));
  if (!busybox)
    throw new KernelError("sockprobe's guests need a static busybox: install with `apt-get install -y busybox-static`");
  for (const tool of ["cpio", "modprobe", "depmod"]) {
    if (!which(tool))
      throw new KernelError(
        `sockprobe's guests need \`${tool}\`: install with \`apt-get install -y ${tool === "cpio" ? "cpio" : "kmod"}\``,
      );
  }
  const modules = await moduleChain(kernel, BOOT_MODULES);
  const bb = statSync(busybox);
  const key = createHash("sha256")
    .update(JSON.stringify({ INIT, modules, image: kernel.image, bb: [bb.size, bb.mtimeMs] }))
    .digest("hex")
    .slice(0, 16);
  const dir = join(cacheDir(), "initramfs");
  const file = join(dir, `${kernel.release}-${key}.cpio`);
  if (existsSync(file)) return file;
  mkdirSync(dir, { recursive: true });
  const work = mkdtempSync(join(dir, ".build-"));
  try {
    const tree = join(work, "tree");
    for (const d of ["bin", "sbin", "mods", "proc", "sys", "dev", "tmp", "newroot"])
      mkdirSync(join(tree, d), { recursive: true });
    copyFileSync(busybox, join(tree, "bin", "busybox"));
    chmodSync(join(tree, "bin", "busybox"), 0o755);
    symlinkSync("busybox", join(tree, "bin", "sh"));
    writeFileSync(join(tree, "init"), INIT, { mode: 0o755 });
    for (const [i, m] of modules.entries()) {
      const name = `${String(i).padStart(2, "0")}-${basename(m).replace(/\.(xz|zst|gz)$/, "")}`;
      const out = join(tree, "mods", name);
      if (m.endsWith(".xz")) await run(["sh", "-c", 'xz -dc "$0" > "$1"', m, out]);
      else if (m.endsWith(".zst")) await run(["sh", "-c", 'zstd -qdc "$0" > "$1"', m, out]);
      else if (m.endsWith(".gz")) await run(["sh", "-c", 'gzip -dc "$0" > "$1"', m, out]);
      else copyFileSync(m, out);
    }
    await run(["sh", "-c", 'cd "$0" && find . | cpio -o -H newc --quiet > "$1"', tree, join(work, "out.cpio")]);
    renameSync(join(work, "out.cpio"), file);
    // Older builds for this kernel (another init, other modules) are never used again.
    for (const f of readdirSync(dir))
      if (f.startsWith(`${kernel.release}-`) && f !== basename(file)) rmSync(join(dir, f), { force: true });
    return file;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
