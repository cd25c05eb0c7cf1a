// `sockprobe run --kernel K`: the same run, inside a guest booted on K. The guest writes its report
// and evidence into its own tmpfs; they come back over the job channel and land where the user asked,
// with how the guest booted added to the report.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { chooseAccel } from "../vm/accel.js";
import { type BootInfo, GUEST_OUT, runInGuest } from "../vm/guest-run.js";
import { type Kernel, resolveKernel } from "../vm/kernels.js";
import type { Report } from "./report.js";

/** What to run on which kernel, and where its outputs go. */
export interface KernelRunOptions {
  /** `6.12`, or a path to a kernel image. */
  readonly kernel: string | Kernel;
  readonly modules?: string;
  readonly scenarios: readonly string[];
  readonly jobs?: number;
  readonly trace?: boolean;
  readonly agent?: boolean;
  readonly json?: string;
  readonly junit?: string;
  readonly evidence?: string;
  readonly memoryMiB?: number;
  readonly cpus?: number;
  /** More kernel command line. */
  readonly append?: string;
  readonly onStdout?: (line: string) => void;
  readonly onStderr?: (line: string) => void;
  readonly signal?: AbortSignal;
}

/** The guest's exit code (0 all pass, 1 some did not, 2 bad usage) and its report. */
export interface KernelRunResult {
  readonly exitCode: number;
  readonly report?: Report & { readonly boot: BootInfo };
  readonly kernel: Kernel;
}

const GUEST_EVIDENCE = `${GUEST_OUT}/evidence`;

/** Rewrites the guest's evidence paths to where the files landed on the host. */
function relocate(report: Report, evidence: string | undefined): Report {
  return {
    ...report,
    scenarios: report.scenarios.map((s) => ({
      ...s,
      evidence: {
        ...s.evidence,
        pcapFiles: evidence
          ? s.evidence.pcapFiles.map((f) =>
              f.startsWith(`${GUEST_EVIDENCE}/`) ? join(evidence, f.slice(GUEST_EVIDENCE.length + 1)) : f,
            )
          : [],
      },
    })),
  };
}

/** Boots the kernel, runs the scenarios inside it, and writes the report, JUnit and evidence on the host. */
export async function runOnKernel(o: KernelRunOptions): Promise<KernelRunResult> {
  const kernel =
    typeof o.kernel === "string"
      ? await resolveKernel(o.kernel, {
          ...(o.modules ? { modules: o.modules } : {}),
          ...(o.onStderr ? { log: o.onStderr } : {}),
        })
      : o.kernel;
  const args = [
    "run",
    ...o.scenarios,
    // Under TCG the guest's own work is slow and its scenarios would starve each other's timers.
    ...(o.jobs ? ["--jobs", String(o.jobs)] : (await chooseAccel()).accel === "tcg" ? ["--jobs", "1"] : []),
    ...(o.trace === false ? ["--no-trace"] : []),
    ...(o.agent ? ["--agent"] : []),
    "--json",
    `${GUEST_OUT}/report.json`,
    ...(o.junit ? ["--junit", `${GUEST_OUT}/junit.xml`] : []),
    ...(o.evidence ? ["--evidence", GUEST_EVIDENCE] : []),
  ];
  const r = await runInGuest({
    kernel,
    args,
    ...(o.memoryMiB ? { memoryMiB: o.memoryMiB } : {}),
    ...(o.cpus ? { cpus: o.cpus } : {}),
    ...(o.append ? { append: o.append } : {}),
    ...(o.onStdout ? { onStdout: o.onStdout } : {}),
    ...(o.onStderr ? { onStderr: o.onStderr } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  const evidence = o.evidence ? resolve(o.evidence) : undefined;
  if (evidence) {
    for (const [path, bytes] of r.files) {
      if (!path.startsWith("evidence/")) continue;
      const dest = join(evidence, path.slice("evidence/".length));
      mkdirSync(dirname(dest), { recursive: true });
      writeFileSync(dest, bytes);
    }
  }
  const junit = r.files.get("junit.xml");
  if (o.junit && junit) writeFileSync(o.junit, junit);
  const raw = r.files.get("report.json");
  if (!raw) return { exitCode: r.exitCode, kernel };
  const report = { ...relocate(JSON.parse(raw.toString("utf8")) as Report, evidence), boot: r.boot };
  if (o.json) writeFileSync(o.json, `${JSON.stringify(report, null, 2)}\n`);
  return { exitCode: r.exitCode, report, kernel };
}
