// The JSON report: versioned, self-describing, and what `sockprobe diff` compares across kernels.
import { readFileSync, writeFileSync } from "node:fs";
import { hostname, machine, release, version } from "node:os";
import type { ScenarioResult } from "../scenarios/scenario.js";
import type { BootInfo } from "../vm/guest-run.js";

/** Bumped whenever a field changes meaning or goes away. */
export const REPORT_VERSION = 1;

/** One scenario as the report keeps it. */
export type ReportScenario = Omit<ScenarioResult, "evidence"> & {
  readonly evidence: {
    readonly transcript: ScenarioResult["evidence"]["transcript"];
    readonly faults: ScenarioResult["evidence"]["faults"];
    readonly packets: ScenarioResult["evidence"]["packets"];
    readonly states: ReadonlyArray<Record<string, unknown>>;
    readonly pcapFiles: readonly string[];
    readonly trace: { readonly available: boolean; readonly reason?: string };
  };
};

/** A whole run. */
export interface Report {
  readonly format: "sockprobe-report";
  readonly version: number;
  readonly createdAt: string;
  readonly tool: { readonly name: "sockprobe"; readonly version: string };
  readonly kernel: { readonly release: string; readonly version: string; readonly machine: string };
  readonly machine: { readonly hostname: string };
  readonly backend: "netns" | "qemu" | "vagrant";
  readonly durationMs: number;
  readonly summary: { readonly pass: number; readonly fail: number; readonly error: number; readonly skip: number };
  readonly scenarios: readonly ReportScenario[];
  /** How the guest booted, when the run was made on a kernel under test (`--kernel`). */
  readonly boot?: BootInfo;
  /** The vagrant backend's provider, Vagrantfile folder, and each machine's box and kernel. */
  readonly vagrant?: {
    readonly provider: string;
    readonly dir: string;
    readonly machines: ReadonlyArray<{ readonly name: string; readonly box: string; readonly kernel: string }>;
  };
}

/** sockprobe's own version, from package.json. */
export function toolVersion(): string {
  return (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string })
    .version;
}

/** Builds the report of a run. */
export function buildReport(
  results: readonly ScenarioResult[],
  durationMs: number,
  backend: Report["backend"] = "netns",
  /** The hosts' kernel, when it is not this machine's (VM hosts). */
  kernel?: { release: string; version: string },
): Report {
  const count = (v: ScenarioResult["verdict"]) => results.filter((r) => r.verdict === v).length;
  return {
    format: "sockprobe-report",
    version: REPORT_VERSION,
    createdAt: new Date().toISOString(),
    tool: { name: "sockprobe", version: toolVersion() },
    kernel: { release: kernel?.release ?? release(), version: kernel?.version ?? version(), machine: machine() },
    machine: { hostname: hostname() },
    backend,
    durationMs: Math.round(durationMs),
    summary: { pass: count("pass"), fail: count("fail"), error: count("error"), skip: count("skip") },
    scenarios: results.map((r) => ({
      ...r,
      durationMs: Math.round(r.durationMs),
      evidence: {
        ...r.evidence,
        // Tracepoint times are kept on the lab's clock; the monotonic ns (a BigInt) is not portable JSON.
        states: r.evidence.states.map(({ atNs: _atNs, raw: _raw, fields: _fields, ...rest }) => rest),
      },
    })),
  };
}

/** Writes the report as JSON. */
export function writeReport(file: string, report: Report): void {
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
}
