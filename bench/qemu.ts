// VM hosts (--backend qemu): a 2-VM lab ready against one bare boot of the same kernel, a power cycle
// to agent ready, and one socket call through a guest's agent against the same call in-process.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLab } from "../src/lab/create.js";
import { chooseAccel } from "../src/vm/accel.js";
import { resolveKernel } from "../src/vm/kernels.js";
import { bareBootMs, bareInitramfs } from "./vm.js";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const us = (ms: number) => `${(ms * 1000).toFixed(0)} µs`;

// Median time of one getsockopt(SO_ERROR) on a socket of the host.
async function callMs(sock: { takeError(): Promise<number> }, n = 50): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await sock.takeError();
    xs.push(performance.now() - t0);
  }
  return median(xs);
}

/** The qemu backend's figures, on one kernel, taken side by side in one run. */
export async function benchQemu(series = "6.12", rounds = 3): Promise<string[]> {
  const accel = await chooseAccel();
  const kernel = await resolveKernel(series);
  const dir = mkdtempSync(join(tmpdir(), "sockprobe-bench-qemu-"));
  const lines = [
    `VM hosts, --backend qemu on ${kernel.release} (${accel.accel.toUpperCase()}; 1 CPU, 1024 MiB each; median of ${rounds})`,
  ];
  try {
    const bare = await bareInitramfs(dir);
    const bareMs: number[] = [];
    const labMs: number[] = [];
    const cycleMs: number[] = [];
    let agentMs = 0;
    for (let i = 0; i < rounds; i++) {
      bareMs.push(await bareBootMs(kernel, bare, accel.accel, { memoryMiB: 1024, cpus: 1 }));
      const t0 = performance.now();
      const lab = await createLab({ backend: "qemu", qemu: { kernel }, name: "bench" });
      try {
        const [kang] = await Promise.all([lab.addHost("kang"), lab.addHost("kodos")]);
        labMs.push(performance.now() - t0);
        if (i === 0) agentMs = await callMs(await (kang as NonNullable<typeof kang>).socket());
        const t1 = performance.now();
        await lab.powerCycle("kodos");
        cycleMs.push(performance.now() - t1);
      } finally {
        await lab.close();
      }
    }
    const local = await createLab({ name: "bench" });
    let localMs: number;
    try {
      localMs = await callMs(await (await local.addHost("kang")).socket());
    } finally {
      await local.close();
    }
    const ratio = median(labMs) / median(bareMs);
    lines.push(
      `  2-VM lab to both agents ready (booted in parallel) ${s(median(labMs))} against one bare boot ${s(median(bareMs))}: ${ratio.toFixed(2)}x (goal <= 1.5x: ${ratio <= 1.5 ? "met" : "missed"})`,
      `  power cycle (QMP system_reset) to agent ready and configured: ${s(median(cycleMs))}`,
      `  one getsockopt(SO_ERROR) through a guest's agent ${us(agentMs)} against in-process on netns ${us(localMs)}: ${(agentMs / localMs).toFixed(0)}x`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return lines;
}
