// What the running kernel has, read where sockprobe runs: its release, the sysctls the model's rules
// are detected by, and the fields of the tracepoints it reads.
import { existsSync, readFileSync } from "node:fs";
import { release } from "node:os";
import { type KernelFacts, probedSysctls, probedTracepoints } from "../model/kernel.js";

/** The fields a tracepoint's format lists, or undefined where tracefs does not show it. */
export function tracepointFields(
  event: string,
  roots = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"],
): string[] | undefined {
  for (const root of roots) {
    try {
      const text = readFileSync(`${root}/events/${event}/format`, "utf8");
      return [...text.matchAll(/field:[^;]*?\b(\w+)(\[[^\]]*\])?;/g)].map((m) => m[1] as string);
    } catch {}
  }
  return undefined;
}

/** Facts of this process's kernel. Sysctls under net.* exist alike in every network namespace. */
export function localKernelFacts(): KernelFacts {
  const sysctls = new Map(probedSysctls().map((k) => [k, existsSync(`/proc/sys/${k.replaceAll(".", "/")}`)]));
  const fields = new Map<string, readonly string[]>();
  for (const tp of probedTracepoints()) {
    const f = tracepointFields(tp);
    if (f) fields.set(tp, f);
  }
  return { release: release(), sysctls, tracepointFields: fields };
}
