// Kernels under test: boot to ready against a bare boot of the same kernel, and the matrix's wall time
// against the sum of its kernels run alone.
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run, wrapArgv } from "../src/proc/exec.js";
import { runOnKernel } from "../src/runner/on-kernel.js";
import { chooseAccel } from "../src/vm/accel.js";
import { runInGuest } from "../src/vm/guest-run.js";
import { type Kernel, resolveKernel } from "../src/vm/kernels.js";
import { qemuBinary } from "../src/vm/qemu.js";

// A busybox /init that powers off at once: the floor any boot of this kernel pays.
export async function bareInitramfs(dir: string): Promise<string> {
  const tree = join(dir, "tree");
  mkdirSync(join(tree, "bin"), { recursive: true });
  copyFileSync("/bin/busybox", join(tree, "bin", "busybox"));
  writeFileSync(join(tree, "init"), "#!/bin/busybox sh\n/bin/busybox poweroff -f\n", { mode: 0o755 });
  const out = join(dir, "bare.cpio");
  await run(["sh", "-c", 'cd "$0" && find . | cpio -o -H newc --quiet > "$1"', tree, out]);
  return out;
}

export async function bareBootMs(
  k: Kernel,
  initrd: string,
  accel: "kvm" | "tcg",
  size: { memoryMiB: number; cpus: number } = { memoryMiB: 2048, cpus: 2 },
): Promise<number> {
  const argv = wrapArgv([
    qemuBinary(),
    "-accel",
    accel,
    ...(accel === "tcg" ? ["-cpu", "max"] : ["-cpu", "host"]),
    "-m",
    String(size.memoryMiB),
    "-smp",
    String(size.cpus),
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-no-reboot",
    "-kernel",
    k.image,
    "-initrd",
    initrd,
    "-append",
    "console=ttyS0 quiet panic=-1 rdinit=/init",
    "-serial",
    "null",
  ]);
  const t0 = performance.now();
  await new Promise((resolve) => spawn(argv[0] as string, argv.slice(1), { stdio: "ignore" }).on("close", resolve));
  return performance.now() - t0;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** Boot figures for each kernel, and the matrix against its kernels alone. */
export async function benchVm(series: readonly string[] = ["6.1", "6.12"], rounds = 3): Promise<string[]> {
  const accel = await chooseAccel();
  const dir = mkdtempSync(join(tmpdir(), "sockprobe-bench-vm-"));
  const lines = [
    `kernels under test (${accel.accel.toUpperCase()}: ${accel.why}; 2 CPUs, 2048 MiB; median of ${rounds})`,
  ];
  try {
    const bare = await bareInitramfs(dir);
    const kernels: Kernel[] = [];
    for (const name of series) kernels.push(await resolveKernel(name));
    for (const k of kernels) {
      const bareMs: number[] = [];
      const readyMs: number[] = [];
      for (let i = 0; i < rounds; i++) {
        bareMs.push(await bareBootMs(k, bare, accel.accel));
        // Ready: the suite's first line inside the guest (`running N scenarios on Linux …`); the
        // guest is then powered off.
        const t0 = performance.now();
        let first: number | undefined;
        const ac = new AbortController();
        await runInGuest({
          kernel: k,
          args: ["run", "normal-teardown"],
          onStderr: (l) => {
            if (first === undefined && l.startsWith("running ")) {
              first = performance.now() - t0;
              ac.abort();
            }
          },
          signal: ac.signal,
        }).catch((e) => {
          if (!ac.signal.aborted) throw e;
        });
        readyMs.push(first ?? Number.NaN);
      }
      const ratio = median(readyMs) / median(bareMs);
      lines.push(
        `  ${k.release.padEnd(26)} bare boot to /init and off ${s(median(bareMs))}; boot to sockprobe's first line ${s(median(readyMs))}; ${ratio.toFixed(2)}x (goal <= 1.5x: ${ratio <= 1.5 ? "met" : "missed"})`,
      );
    }
    // The matrix runs its kernels one after the other (two TCG guests at once on two cores would
    // skew each other's timings), so its wall time is the sum plus what it adds.
    const subset = ["normal-teardown", "what-is-readable"];
    let aloneMs = 0;
    for (const k of kernels) {
      const t0 = performance.now();
      await runOnKernel({ kernel: k, scenarios: subset, jobs: 1 });
      aloneMs += performance.now() - t0;
    }
    const out = join(dir, "matrix");
    const t0 = performance.now();
    await run(
      [
        "npx",
        "tsx",
        "src/cli/main.ts",
        "matrix",
        "--no-host",
        ...kernels.flatMap((k) => ["--kernel", k.image.includes("/kernels/") ? (k.spec as string) : k.image]),
        "--out",
        out,
        ...subset,
      ],
      {
        allowFail: true,
        timeoutMs: 3_600_000,
      },
    );
    const matrixMs = performance.now() - t0;
    lines.push(
      `  matrix of ${kernels.length} kernels (${subset.join(", ")}): ${s(matrixMs)} against ${s(aloneMs)} for its kernels run alone: ${(matrixMs / aloneMs).toFixed(2)}x`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return lines;
}
