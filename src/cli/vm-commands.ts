// The commands that boot kernels: `run --kernel`, `kernels`, and `matrix`.
import { existsSync, writeFileSync } from "node:fs";
import { release as hostRelease } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { formatMatrix, renderMatrixHtml } from "../report/matrix.js";
import { readReport } from "../report/schema.js";
import { buildMatrix, type KernelRun, matrixPasses } from "../runner/matrix.js";
import { runOnKernel } from "../runner/on-kernel.js";
import { checkOutputDirectory, checkOutputFile } from "../runner/outputs.js";
import type { Report, ReportScenario } from "../runner/report.js";
import { findScenario, SCENARIOS } from "../scenarios/index.js";
import { GuestDiedError } from "../vm/guest-run.js";
import { cachedKernels, KERNEL_CONFIG, type Kernel, kernelLabel, resolveKernel } from "../vm/kernels.js";
import { qemuBinary } from "../vm/qemu.js";

/** Bad usage of a VM command: exit 2. */
export class VmUsageError extends Error {}
Object.defineProperty(VmUsageError.prototype, "name", { value: "VmUsageError" });

/** `sockprobe kernels [--config] [--fetch SERIES...]`. */
export async function kernelsCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { config: { type: "boolean" }, fetch: { type: "string", multiple: true } },
  });
  if (values.config) {
    console.log("# A self-built kernel for `sockprobe run --kernel PATH` needs these, =y (or =m with --modules DIR):");
    for (const [opt, why] of KERNEL_CONFIG) console.log(`${`${opt}=y`.padEnd(32)} # ${why}`);
    return 0;
  }
  for (const series of values.fetch ?? []) {
    const k = await resolveKernel(series, { log: (l) => console.error(l) });
    console.error(`${series}: ${k.release} in the cache`);
  }
  const cached = cachedKernels();
  if (cached.length === 0) {
    console.log("no kernel in the cache yet: `sockprobe run --kernel 6.12` (or `kernels --fetch 6.12`) fetches one");
    return 0;
  }
  for (const k of cached) {
    const from = k.source.kind === "debian" ? `${k.source.package} ${k.source.packageVersion}` : "a path";
    console.log(`${kernelLabel(k).padEnd(12)} ${k.release.padEnd(28)} ${from}\n${" ".repeat(13)}${k.image}`);
  }
  return 0;
}

/** What `run --kernel` takes beyond `run`'s own options. */
export interface KernelRunArgs {
  readonly kernel: string;
  readonly modules?: string;
  readonly scenarios: readonly string[];
  readonly jobs?: number;
  readonly json?: string;
  readonly junit?: string;
  readonly evidence?: string;
  readonly trace: boolean;
  readonly agent: boolean;
}

/** `sockprobe run --kernel K`: the run inside a guest booted on K; exit as the guest's run did. */
export async function runOnKernelCommand(a: KernelRunArgs): Promise<number> {
  qemuBinary();
  const r = await runOnKernel({
    kernel: a.kernel,
    ...(a.modules ? { modules: a.modules } : {}),
    scenarios: a.scenarios,
    ...(a.jobs ? { jobs: a.jobs } : {}),
    ...(a.json ? { json: a.json } : {}),
    ...(a.junit ? { junit: a.junit } : {}),
    ...(a.evidence ? { evidence: a.evidence } : {}),
    trace: a.trace,
    agent: a.agent,
    onStdout: (l) => console.log(l),
    onStderr: (l) => console.error(l),
  });
  if (r.report?.boot) {
    const b = r.report.boot;
    console.log(
      `kernel ${r.report.kernel.release} booted in ${(b.bootMs / 1000).toFixed(1)} s under ${b.accel.toUpperCase()} (${b.accelWhy}); QEMU ${b.qemu}, ${b.cpus} CPUs, ${b.memoryMiB} MiB`,
    );
  }
  return r.exitCode;
}

/** The file name a kernel's report gets in the matrix folder. */
function reportName(label: string): string {
  return `${label.replace(/[^A-Za-z0-9.+-]+/g, "-")}.json`;
}

// Replaces each retried scenario's entry with its last attempt, and recounts.
function merge(report: Report, retry: Report): Report {
  const byName = new Map(retry.scenarios.map((s) => [s.name, s]));
  const scenarios = report.scenarios.map((s) => byName.get(s.name) ?? s);
  const count = (v: ReportScenario["verdict"]) => scenarios.filter((s) => s.verdict === v).length;
  return {
    ...report,
    scenarios,
    summary: { pass: count("pass"), fail: count("fail"), error: count("error"), skip: count("skip") },
  };
}

/** `sockprobe matrix`: the suite on every kernel named, the differences explained. */
export async function matrixCommand(
  args: string[],
  runHost: (names: readonly string[]) => Promise<Report>,
  runQemu?: (names: readonly string[], kernel: Kernel) => Promise<Report>,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      kernel: { type: "string", multiple: true },
      "no-host": { type: "boolean" },
      out: { type: "string" },
      baseline: { type: "string" },
      retries: { type: "string" },
      html: { type: "string" },
      from: { type: "string", multiple: true },
      jobs: { type: "string" },
      backend: { type: "string" },
    },
  });
  const backend = values.backend ?? "netns";
  if (backend !== "netns" && backend !== "qemu")
    throw new VmUsageError(`unknown backend ${JSON.stringify(backend)}: use netns (the default) or qemu`);
  const retries = values.retries === undefined ? 0 : Number(values.retries);
  if (!Number.isInteger(retries) || retries < 0)
    throw new VmUsageError(`--retries takes a whole number >= 0, got ${JSON.stringify(values.retries)}`);
  const jobs = values.jobs === undefined ? undefined : Number(values.jobs);
  if (jobs !== undefined && (!Number.isInteger(jobs) || jobs < 1))
    throw new VmUsageError(`--jobs takes a whole number >= 1, got ${JSON.stringify(values.jobs)}`);
  const out = resolve(values.out ?? "sockprobe-matrix");
  if (values.html) checkOutputFile("--html", values.html);
  if (values.baseline && !existsSync(join(values.baseline, "matrix.json"))) {
    throw new VmUsageError(
      `--baseline ${values.baseline} holds no matrix.json: give the --out folder of an earlier matrix run`,
    );
  }
  const baselineOf = (file: string): Report | undefined => {
    if (!values.baseline) return undefined;
    const p = join(values.baseline, file);
    return existsSync(p) ? readReport(p) : undefined;
  };
  let runs: KernelRun[];
  if (values.from?.length) {
    if (values.kernel?.length)
      throw new VmUsageError("--from builds the matrix from reports made elsewhere: give either --from or --kernel");
    runs = values.from.map((f) => {
      const report = readReport(f);
      const boot = (report as { boot?: { kernel: { spec: string } } }).boot;
      const label = boot ? kernelLabel({ release: report.kernel.release }) : `host ${report.kernel.release}`;
      return { label, reportFile: resolve(f), report, attempts: {} };
    });
    checkOutputDirectory("--out", out);
  } else {
    const names = positionals.map((n) => findScenario(n).name);
    const kernelSpecs = values.kernel ?? [];
    if (kernelSpecs.length === 0 && values["no-host"])
      throw new VmUsageError("matrix needs at least one kernel: --kernel 6.1 --kernel 6.12 …");
    if (backend === "qemu" && !values["no-host"])
      throw new VmUsageError(
        "matrix --backend qemu boots every kernel in each host: add --no-host (the host's column is a netns run)",
      );
    if (kernelSpecs.includes("host"))
      throw new VmUsageError("the host's kernel is in the matrix unless --no-host: name only kernels to boot");
    if (kernelSpecs.length) qemuBinary();
    checkOutputDirectory("--out", out);
    // Every kernel is resolved (fetched) before anything runs: a bad name fails at once.
    const kernels: Kernel[] = [];
    for (const spec of kernelSpecs) kernels.push(await resolveKernel(spec, { log: (l) => console.error(l) }));
    runs = [];
    const all = names.length ? names : SCENARIOS.map((s) => s.name);
    const columns: Array<{ label: string; go: (only: readonly string[]) => Promise<Report> }> = [];
    if (!values["no-host"])
      columns.push({ label: `host ${hostRelease().replace(/-.*$/, "")}`, go: (only) => runHost(only) });
    for (const k of kernels) {
      columns.push({
        label: kernelLabel(k),
        go: async (only) => {
          // On qemu every host of every lab boots k; the run is made here.
          if (backend === "qemu" && runQemu) return runQemu(only, k);
          const once = () =>
            runOnKernel({
              kernel: k,
              scenarios: only,
              ...(jobs ? { jobs } : {}),
              onStderr: (l) => console.error(`[${kernelLabel(k)}] ${l}`),
            });
          // A guest that dies under the suite (a TCG guest kernel has panicked here once in dozens of
          // runs) is booted again once; a second death ends the matrix with the reason.
          const r = await once().catch((e: Error) => {
            if (!(e instanceof GuestDiedError)) throw e;
            console.error(`[${kernelLabel(k)}] ${e.message}; booting it again`);
            return once();
          });
          if (!r.report) throw new Error(`${k.release}: the guest wrote no report (exit ${r.exitCode})`);
          return r.report;
        },
      });
    }
    for (const c of columns) {
      let report = await c.go(all);
      const attempts: Record<string, ReportScenario["verdict"][]> = Object.fromEntries(
        report.scenarios.map((s) => [s.name, [s.verdict]]),
      );
      for (let i = 0; i < retries; i++) {
        const failing = report.scenarios
          .filter((s) => s.verdict === "fail" || s.verdict === "error")
          .map((s) => s.name);
        if (failing.length === 0) break;
        console.error(`[${c.label}] retrying ${failing.join(", ")} (${i + 1} of ${retries})`);
        const again = await c.go(failing);
        for (const s of again.scenarios) attempts[s.name]?.push(s.verdict);
        report = merge(report, again);
      }
      const file = reportName(c.label);
      writeFileSync(join(out, file), `${JSON.stringify(report, null, 2)}\n`);
      runs.push({ label: c.label, reportFile: file, report, attempts });
    }
  }
  const baseline = values.baseline
    ? Object.fromEntries(
        runs.flatMap((r) => {
          const b = baselineOf(reportName(r.label));
          return b ? [[r.label, b]] : [];
        }),
      )
    : undefined;
  const matrix = buildMatrix(runs, baseline);
  writeFileSync(join(out, "matrix.json"), `${JSON.stringify(matrix, null, 2)}\n`);
  if (values.html) writeFileSync(values.html, renderMatrixHtml(matrix));
  console.log(formatMatrix(matrix, process.stdout.columns ?? 200));
  if (matrix.baseline) {
    for (const [label, changes] of Object.entries(matrix.baseline)) {
      console.log(
        `\nagainst its baseline, ${label}: ${changes.length === 0 ? "no behavior changed" : `${changes.length} changes`}`,
      );
      for (const c of changes)
        console.log(
          `  ${c.kind.padEnd(11)} ${c.scenario}  ${c.what}${c.base !== undefined ? `: ${c.base}` : ""}${c.now !== undefined ? ` -> ${c.now}` : ""}`,
        );
    }
  }
  console.log(`\nreports and matrix.json in ${out}${values.html ? `; page ${values.html}` : ""}`);
  return matrixPasses(matrix) ? 0 : 1;
}
