// Booting kernels under test: a guest that comes up and runs a command on its own kernel, and every
// way a boot can fail, each a clear error found within a bound, with nothing left behind.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { runInGuest } from "../../src/vm/guest-run.js";
import { initramfsFor } from "../../src/vm/initramfs.js";
import { resolveKernel } from "../../src/vm/kernels.js";
import { comm, descendants } from "../helpers/leaks.js";

t.setTimeout(15 * 60_000);

// QEMU processes started by `pid`.
const qemuChildrenOf = (pid: number) => descendants(pid).filter((p) => comm(p).startsWith("qemu-system"));

t.test("a guest runs a command on its own kernel and reports how it booted", async (t) => {
  const kernel = await resolveKernel("6.12");
  const out: string[] = [];
  const r = await runInGuest({
    kernel,
    args: [],
    command: ["/bin/sh", "-c", "uname -r; cat /proc/sys/net/ipv4/tcp_syn_linear_timeouts"],
    onStdout: (l) => out.push(l),
  });
  t.equal(r.exitCode, 0);
  t.equal(out[0], kernel.release, "uname -r in the guest is the kernel under test");
  t.match(out[1], /^\d+$/, "6.12 has tcp_syn_linear_timeouts (6.5 and later)");
  t.equal(r.boot.kernel.release, kernel.release);
  t.ok(r.boot.bootMs > 0 && r.boot.bootMs < 180_000, `booted in ${r.boot.bootMs} ms`);
  t.match(r.boot.qemu, /^\d+\.\d+/);
  t.same(qemuChildrenOf(process.pid), [], "no QEMU of ours is left");
});

t.test("a kernel whose module tree lacks 9p is refused before it boots", async (t) => {
  const k = await resolveKernel("6.12");
  const dir = mkdtempSync(join(tmpdir(), "sockprobe-test-mods-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // A copy of Debian's tree (hard links: instant) with the 9p modules taken out.
  execFileSync("cp", ["-al", join(k.modulesRoot as string, "lib"), join(dir, "lib")]);
  const mods = join(dir, "lib", "modules", k.release, "kernel");
  rmSync(join(mods, "fs", "9p"), { recursive: true });
  rmSync(join(mods, "net", "9p"), { recursive: true });
  rmSync(join(dir, "lib", "modules", k.release, "modules.dep"));
  const bare = await resolveKernel(k.image, { modules: dir });
  await t.rejects(initramfsFor(bare), {
    name: "KernelError",
    message: /has no (9p|9pnet_virtio) \(neither built in nor among the modules in .*\); sockprobe needs CONFIG_NET_9P/,
  });
});

t.test("an image booted without the modules it needs says what is missing", async (t) => {
  // Debian's 6.1 has virtio and 9p as modules only: without --modules its guest cannot reach the root.
  const k = await resolveKernel("6.1");
  const image = await resolveKernel(k.image);
  const started = performance.now();
  await t.rejects(runInGuest({ kernel: image, args: [] }), {
    name: "BootError",
    message: /did not boot: no-9p: the kernel has no 9p filesystem \(CONFIG_9P_FS, CONFIG_NET_9P_VIRTIO\)/,
  });
  t.ok(performance.now() - started < 120_000, "found within the boot bound");
  t.same(qemuChildrenOf(process.pid), []);
});

t.test("a kernel that panics at boot is an error naming the panic", async (t) => {
  const kernel = await resolveKernel("6.12");
  await t.rejects(runInGuest({ kernel, args: [], append: "rdinit=/no-such-init" }), {
    name: "BootError",
    message: /did not boot: the kernel panicked: Kernel panic - not syncing: /,
  });
  t.same(qemuChildrenOf(process.pid), []);
});

t.test("a guest that dies under its job is a run that failed, naming why", async (t) => {
  const kernel = await resolveKernel("6.12");
  await t.rejects(runInGuest({ kernel, args: [], command: ["/bin/sh", "-c", "echo c > /proc/sysrq-trigger"] }), {
    name: "GuestDiedError",
    message:
      /the job did not finish: the guest died: the kernel panicked: Kernel panic - not syncing: sysrq triggered crash/,
  });
  t.same(qemuChildrenOf(process.pid), []);
});
