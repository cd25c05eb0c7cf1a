// The cross-kernel matrix: the same scenarios on several kernels, every check and observation that
// differs between them in one table, each difference explained by the model's kernel rules or
// flagged as unexplained; flakes (a failure that passes on a retry) counted apart from failures.
import { humanMs } from "../model/tcp.js";
import { diffReports, keyedChecks, showObservation } from "../report/diff.js";
import type { Report, ReportScenario } from "./report.js";

/** Where a scenario ended on one kernel, over its attempts. */
export type MatrixVerdict = "pass" | "fail" | "error" | "skip" | "flaky";

/** One kernel's column. */
export interface MatrixKernel {
  /** Column heading: `6.12.117`, `host 6.18.44`. */
  readonly label: string;
  readonly release: string;
  /** The report file, relative to matrix.json. */
  readonly report: string;
  readonly summary: Readonly<Record<MatrixVerdict, number>>;
}

/** A row: one check or observation whose value differs between kernels. */
export interface MatrixDifference {
  readonly scenario: string;
  readonly kind: "verdict" | "check" | "observation";
  readonly what: string;
  /** The value on each kernel, by label; absent where it was not made. */
  readonly values: Readonly<Record<string, string>>;
  /** What the model expected on each kernel, where the row is a judged check. */
  readonly expected?: Readonly<Record<string, string>>;
  readonly explained: boolean;
  readonly explanation: string;
}

/** matrix.json. */
export interface Matrix {
  readonly format: "sockprobe-matrix";
  readonly version: 1;
  readonly createdAt: string;
  readonly kernels: readonly MatrixKernel[];
  /** Per scenario, per kernel label: its verdict over attempts and how many attempts it took. */
  readonly scenarios: ReadonlyArray<{
    readonly name: string;
    readonly results: Readonly<
      Record<string, { readonly verdict: MatrixVerdict; readonly attempts: number; readonly reason?: string }>
    >;
  }>;
  readonly differences: readonly MatrixDifference[];
  /** Per kernel label, the changes from its baseline report (`--baseline`). */
  readonly baseline?: Readonly<Record<string, ReturnType<typeof diffReports>>>;
  readonly summary: {
    readonly pass: number;
    readonly fail: number;
    readonly error: number;
    readonly skip: number;
    readonly flaky: number;
    readonly differences: number;
    readonly unexplained: number;
  };
}

/** A kernel's final report, and for each scenario the verdicts of its attempts, first to last. */
export interface KernelRun {
  readonly label: string;
  readonly reportFile: string;
  readonly report: Report;
  readonly attempts: Readonly<Record<string, readonly ReportScenario["verdict"][]>>;
}

/** pass, fail, … from the attempts: a failure that passed on a later attempt is flaky. */
export function finalVerdict(attempts: readonly ReportScenario["verdict"][]): MatrixVerdict {
  const last = attempts.at(-1) ?? "error";
  if (last === "pass" && attempts.length > 1) return "flaky";
  return last;
}

type Rules = Readonly<Record<string, { readonly applies: boolean; readonly text: string }>>;

// The rules and values the model read on this kernel for this scenario.
function kernelModel(s: ReportScenario | undefined): { rules: Rules; values: Readonly<Record<string, string>> } {
  const k = (s as { kernelModel?: { rules?: Rules; values?: Record<string, string> } } | undefined)?.kernelModel;
  return { rules: k?.rules ?? {}, values: k?.values ?? {} };
}

// Why the kernels differ for a scenario, as far as the model knows: rules that apply on some and not
// others, and values (sysctl defaults, sizes) it read differently.
function modelDifferences(scenarios: ReadonlyArray<ReportScenario | undefined>, labels: readonly string[]): string[] {
  const out: string[] = [];
  const models = scenarios.map(kernelModel);
  const ruleIds = new Set(models.flatMap((m) => Object.keys(m.rules)));
  for (const id of ruleIds) {
    const on = models.map((m) => m.rules[id]);
    if (new Set(on.map((r) => r?.applies)).size > 1) {
      const text = on.find((r) => r)?.text ?? id;
      const where = labels.filter((_, i) => on[i]?.applies).join(", ");
      out.push(`${text} (applies on ${where || "none"})`);
    }
  }
  const keys = new Set(models.flatMap((m) => Object.keys(m.values)));
  for (const key of keys) {
    const vals = models.map((m) => m.values[key]);
    if (new Set(vals).size > 1)
      out.push(`${key} is ${labels.map((l, i) => `${vals[i] ?? "absent"} on ${l}`).join(", ")}`);
  }
  return out;
}

function checkValue(
  s: ReportScenario | undefined,
  key: string,
): { observed?: string; expected?: string; pass?: boolean } {
  if (!s) return {};
  const c = keyedChecks(s.checks).get(key);
  if (!c) return {};
  return {
    observed: c.timing ? humanMs(c.timing.observedMs) : c.observed,
    expected: c.expected,
    pass: c.pass,
  };
}

/** Builds the matrix from each kernel's final report and attempts. */
export function buildMatrix(runs: readonly KernelRun[], baseline?: Readonly<Record<string, Report>>): Matrix {
  const labels = runs.map((r) => r.label);
  const names = [...new Set(runs.flatMap((r) => r.report.scenarios.map((s) => s.name)))];
  const scenarioOf = (r: KernelRun, name: string) => r.report.scenarios.find((s) => s.name === name);
  const scenarios = names.map((name) => ({
    name,
    results: Object.fromEntries(
      runs.flatMap((r) => {
        const s = scenarioOf(r, name);
        if (!s) return [];
        const attempts = r.attempts[name] ?? [s.verdict];
        return [
          [
            r.label,
            { verdict: finalVerdict(attempts), attempts: attempts.length, ...(s.reason ? { reason: s.reason } : {}) },
          ],
        ];
      }),
    ),
  }));
  // Which keys differ: every kernel against the first, as `sockprobe diff` judges a change.
  const rowKeys = new Map<string, { scenario: string; kind: MatrixDifference["kind"]; what: string; key: string }>();
  const [ref, ...rest] = runs;
  if (ref) {
    for (const r of rest) {
      for (const c of diffReports(ref.report, { ...r.report, backend: ref.report.backend })) {
        if (c.kind === "added" || c.kind === "missing") continue;
        const key = c.what
          .replace(/ \(tolerance ± [^)]*\)$/, "")
          .replace(/: (verdict|new check|check no longer made|no longer observed|newly observed)$/, "");
        const kind =
          c.kind === "timing"
            ? "check"
            : c.kind === "verdict"
              ? "verdict"
              : c.kind === "check"
                ? "check"
                : "observation";
        rowKeys.set(`${c.scenario}\0${kind}\0${key}`, { scenario: c.scenario, kind, what: key, key });
      }
    }
  }
  // What counts as a difference between kernels is a behavior, not run-to-run noise:
  // - a check every kernel passed is no difference when the model expected the same everywhere, or
  //   when its expectations differ only by what each run measured (its RTT, its RTO) with no kernel
  //   rule or value telling the kernels apart; it stays, explained, when a rule does;
  // - a duration observed without a tolerance is a measurement (the checks judge timings), and an
  //   observation recorded beside a check that is no difference goes with it.
  const modelDiffers = (scenario: string) =>
    modelDifferences(
      runs.map((r) => scenarioOf(r, scenario)),
      labels,
    ).length > 0;
  const passedAlike = (scenario: string, key: string): boolean => {
    const checks = runs.map((r) => keyedChecks(scenarioOf(r, scenario)?.checks ?? []).get(key));
    if (!checks.every((c) => c?.pass)) return false;
    return checks.every((c) => c?.expected === checks[0]?.expected) || !modelDiffers(scenario);
  };
  const measurement = (scenario: string, key: string): boolean =>
    runs.every((r) => {
      const o = scenarioOf(r, scenario)?.observations[key];
      return o === undefined || (o.unit === "ms" && o.toleranceMs === undefined);
    });
  const rows = [...rowKeys.values()].filter(({ scenario, kind, key }) => {
    if (kind === "check") return !passedAlike(scenario, key);
    if (kind === "observation") {
      const hasCheck = runs.some((r) => keyedChecks(scenarioOf(r, scenario)?.checks ?? []).has(key));
      return !(hasCheck && passedAlike(scenario, key)) && !measurement(scenario, key);
    }
    return true;
  });
  const differences: MatrixDifference[] = rows.map(({ scenario, kind, what, key }) => {
    const per = runs.map((r) => scenarioOf(r, scenario));
    const values: Record<string, string> = {};
    const expected: Record<string, string> = {};
    let allPass = true;
    per.forEach((s, i) => {
      const label = labels[i] as string;
      if (!s) return;
      if (kind === "verdict") values[label] = s.verdict;
      else if (kind === "observation") {
        const o = s.observations[key];
        if (o) values[label] = showObservation(o);
      } else {
        const v = checkValue(s, key);
        if (v.observed !== undefined) values[label] = v.observed;
        if (v.expected !== undefined) expected[label] = v.expected;
        if (v.pass === false) allPass = false;
      }
    });
    const reasons = modelDifferences(per, labels);
    const predicted = kind === "check" && new Set(Object.values(expected)).size > 1 && allPass;
    const explained = reasons.length > 0 && (kind !== "check" || predicted || allPass);
    const explanation = explained
      ? `${predicted ? "predicted by the model: " : "the model reads: "}${reasons.join("; ")}`
      : kind === "check" && !allPass
        ? "unexplained: the kernel did other than the model expected"
        : "unexplained: the model knows no difference between these kernels here";
    return {
      scenario,
      kind,
      what,
      values,
      ...(kind === "check" ? { expected } : {}),
      explained,
      explanation,
    };
  });
  const counts = { pass: 0, fail: 0, error: 0, skip: 0, flaky: 0 };
  const kernels: MatrixKernel[] = runs.map((r) => {
    const summary = { pass: 0, fail: 0, error: 0, skip: 0, flaky: 0 };
    for (const s of scenarios) {
      const v = s.results[r.label]?.verdict;
      if (v) {
        summary[v]++;
        counts[v]++;
      }
    }
    return { label: r.label, release: r.report.kernel.release, report: r.reportFile, summary };
  });
  const baselineChanges = baseline
    ? Object.fromEntries(
        runs.filter((r) => baseline[r.label]).map((r) => [r.label, diffReports(baseline[r.label] as Report, r.report)]),
      )
    : undefined;
  return {
    format: "sockprobe-matrix",
    version: 1,
    createdAt: new Date().toISOString(),
    kernels,
    scenarios,
    differences,
    ...(baselineChanges ? { baseline: baselineChanges } : {}),
    summary: {
      ...counts,
      differences: differences.length,
      unexplained: differences.filter((d) => !d.explained).length,
    },
  };
}

/** Whether the matrix passes: every scenario passed on every kernel (a flake passed, and is counted apart). */
export function matrixPasses(m: Matrix): boolean {
  return m.summary.fail === 0 && m.summary.error === 0;
}
