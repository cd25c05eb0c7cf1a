// What the running kernel has, read where sockprobe runs: its release, every net.* sysctl it has,
// and the fields of its TCP tracepoints. The model's rules are detected from these (src/model/kernel.ts).
import { readdirSync, readFileSync } from "node:fs";
import { release } from "node:os";
import { join } from "node:path";

/** What a kernel has, as the model reads it. */
export interface KernelFacts {
  /** `uname -r`: `6.12.117+deb12-amd64`. */
  readonly release: string;
  /** Every `net.ipv4.*` and `net.core.*` sysctl it has, by key. */
  readonly sysctls: ReadonlySet<string>;
  /** Fields of each `tcp/*` tracepoint, where tracefs shows their format. */
  readonly tracepointFields: ReadonlyMap<string, readonly string[]>;
}

const TRACEFS = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/** The fields a tracepoint format lists. */
export function formatFields(format: string): string[] {
  return [...format.matchAll(/field:[^;]*?\b(\w+)(\[[^\]]*\])?;/g)].map((m) => m[1] as string);
}

/** How facts are read: this machine's files, or a host's through its agent. */
export interface FactsReader {
  readonly release: string;
  readdir(path: string): Promise<string[]>;
  readFile(path: string): Promise<string>;
}

const orNothing = async <T>(p: Promise<T>, nothing: T): Promise<T> => p.catch(() => nothing);

/** Facts of the kernel `io` reads from. Sysctls under net.* exist alike in every network namespace. */
export async function kernelFactsFrom(io: FactsReader): Promise<KernelFacts> {
  const sysctls = new Set<string>();
  for (const group of ["ipv4", "core"]) {
    for (const k of await orNothing(io.readdir(`/proc/sys/net/${group}`), [])) sysctls.add(`net.${group}.${k}`);
  }
  const fields = new Map<string, readonly string[]>();
  for (const root of TRACEFS) {
    const dir = join(root, "events", "tcp");
    for (const event of await orNothing(io.readdir(dir), [])) {
      const format = await orNothing(io.readFile(join(dir, event, "format")), undefined);
      if (format !== undefined) fields.set(`tcp/${event}`, formatFields(format));
    }
    if (fields.size) break;
  }
  return { release: io.release, sysctls, tracepointFields: fields };
}

/** Facts of this process's kernel. */
export function localKernelFacts(): Promise<KernelFacts> {
  return kernelFactsFrom({
    release: release(),
    readdir: async (p) => readdirSync(p),
    readFile: async (p) => readFileSync(p, "utf8"),
  });
}
