// What a run may leave behind: processes, and network namespaces someone still holds.
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import type { Test } from "tap";
import { waitUntil } from "./wait.js";

/** Every process descended from `pid`, children first. */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  const byParent = new Map<number, number[]>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      byParent.set(ppid, [...(byParent.get(ppid) ?? []), Number(d)]);
    } catch {}
  }
  const walk = (p: number) => {
    for (const c of byParent.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** Every namespace reference any process holds: its own netns and its open descriptors. */
export function heldNamespaces(): Set<string> {
  const held = new Set<string>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      held.add(readlinkSync(`/proc/${d}/ns/net`));
      for (const fd of readdirSync(`/proc/${d}/fd`)) {
        try {
          const l = readlinkSync(`/proc/${d}/fd/${fd}`);
          if (l.startsWith("net:[")) held.add(l);
        } catch {}
      }
    } catch {}
  }
  return held;
}

/**
 * The network namespaces `pid` holds by descriptor, other than ours (the machine's): a lab's
 * process may be inside one of its namespaces for a moment, holding a descriptor of its home.
 */
export function namespacesHeldBy(pid: number): string[] {
  const home = readlinkSync("/proc/self/ns/net");
  const out = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const l = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (l.startsWith("net:[") && l !== home) out.add(l);
    } catch {}
  }
  return [...out];
}

/** Whether `pid` runs (a zombie does not). */
export const alive = (pid: number): boolean => {
  try {
    return existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");
  } catch {
    return false;
  }
};

/** The name of process `pid`, or "" once it is gone. */
export function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

/** Waits, bounded, until none of `processes` runs and none of `namespaces` is held; asserts both. */
export async function expectGone(t: Test, processes: readonly number[], namespaces: readonly string[]): Promise<void> {
  const left = await waitUntil(
    "every process of the run gone",
    () => processes.filter(alive),
    (l) => l.length === 0,
    5000,
  );
  t.same(left, [], `none of its ${processes.length} processes remains`);
  const still = await waitUntil(
    "no namespace of the run held",
    () => namespaces.filter((n) => heldNamespaces().has(n)),
    (l) => l.length === 0,
    5000,
  );
  t.same(still, [], `none of its ${namespaces.length} namespaces is held: the kernel has freed them`);
}
