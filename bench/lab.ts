// The lab's own costs: creating and tearing down a 2-host lab, and the seed 004 (004_41db9c39b506eeca.txt) program 2A loop
// through the lab's public API against the seed's Python and the same loop in C, each in a lab host.
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createLab } from "../src/lab/create.js";
import type { Host } from "../src/lab/host.js";
import { run } from "../src/proc/exec.js";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** Median ms to create a lab with two hosts and close it. */
export async function labCreateTeardownMs(rounds = 20): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    const lab = await createLab({ name: "bench" });
    await lab.addHost("kang");
    await lab.addHost("kodos");
    await lab.close();
    times.push(performance.now() - t0);
  }
  return median(times);
}

// ns per iteration of 2A with the lab's HostSocket calls, on one host (as the seed, over loopback).
async function loop2aLab(host: Host, n: number): Promise<number> {
  const listener = await host.socket();
  await listener.bind("127.0.0.1", 0);
  await listener.listen(16);
  const { port } = await listener.localAddress();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const c = await host.socket();
    await c.connectAsync("127.0.0.1", port, { timeoutMs: 2000 });
    const sc = await listener.acceptAsync({ timeoutMs: 2000 });
    await sc.close();
    await c.close();
  }
  const t1 = process.hrtime.bigint();
  await listener.close();
  return Number(t1 - t0) / n;
}

/** 2A loop rates: lab API, Python, C; each on a fresh host of its own. ns per iteration, medians of `rounds`. */
export async function loop2a(n = 5000, rounds = 3): Promise<{ lab: number; python: number; c: number }> {
  const dir = mkdtempSync(join(tmpdir(), "sockprobe-bench-"));
  const cBin = join(dir, "loop2a");
  execFileSync("cc", ["-O2", "-o", cBin, fileURLToPath(new URL("./loop2a.c", import.meta.url))]);
  const py = fileURLToPath(new URL("./python_2a.py", import.meta.url));
  const lab = await createLab({ name: "bench2a" });
  const out = { lab: [] as number[], python: [] as number[], c: [] as number[] };
  try {
    for (let r = 0; r < rounds; r++) {
      const hosts = await Promise.all(["a", "b", "c"].map((x) => lab.addHost(`${x}${r}`)));
      const [hl, hp, hc] = hosts as [Host, Host, Host];
      const path = (h: Host) => (h as unknown as { netnsPath: string }).netnsPath;
      out.python.push(
        JSON.parse((await run(["python3", py, String(n)], { netns: path(hp), timeoutMs: 300_000 })).stdout).loop2a,
      );
      out.c.push(JSON.parse((await run([cBin, String(n)], { netns: path(hc), timeoutMs: 300_000 })).stdout).loop2a);
      out.lab.push(await loop2aLab(hl, n));
    }
  } finally {
    await lab.close();
  }
  return { lab: median(out.lab), python: median(out.python), c: median(out.c) };
}
