// Cost per call through src/sys/ against Python's socket module doing the same work, in one run.
// Both sides run as processes inside a fresh namespace of their own (through nsenter), so neither
// pays for switching namespaces and TIME_WAIT from one never burdens the other.
import { fileURLToPath } from "node:url";
import { run } from "../src/proc/exec.js";
import { Netns } from "../src/sys/index.js";

/** One benchmark figure: ns per operation for both sides (run.ts prints their ratio). */
export interface Comparison {
  name: string;
  nodeNs: number;
  pythonNs?: number;
}

async function inFreshNamespace(argv: string[]): Promise<Record<string, number>> {
  const ns = Netns.create();
  try {
    return JSON.parse((await run(argv, { netns: ns.path, timeoutMs: 600_000 })).stdout) as Record<string, number>;
  } finally {
    ns.close();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** Runs both sides `rounds` times, alternating so that machine load hits both alike; medians. */
export async function benchSys(calls = 200_000, loops = 5_000, rounds = 3): Promise<Comparison[]> {
  const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
  const py: Array<Record<string, number>> = [];
  const node: Array<Record<string, number>> = [];
  for (let i = 0; i < rounds; i++) {
    py.push(await inFreshNamespace(["python3", here("./python_sys.py"), String(calls), String(loops)]));
    node.push(
      await inFreshNamespace([process.execPath, "--import=tsx", here("./sys-worker.ts"), String(calls), String(loops)]),
    );
  }
  const m = (runs: Array<Record<string, number>>, key: string) => median(runs.map((r) => r[key] as number));
  return [
    { name: "getsockopt(TCP_NODELAY)", nodeNs: m(node, "getsockopt"), pythonNs: m(py, "getsockopt") },
    {
      name: "connect+accept+close (loopback)",
      nodeNs: m(node, "connectAcceptClose"),
      pythonNs: m(py, "connectAcceptClose"),
    },
    { name: "  same, sockets made by setns (lab path)", nodeNs: m(node, "connectAcceptCloseAt") },
  ];
}
