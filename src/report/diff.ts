// Baseline diff: every behavior that changed between two reports, for nightly kernel regression runs.

import { humanMs } from "../model/tcp.js";
import type { Report, ReportScenario } from "../runner/report.js";
import type { Check, Observation } from "../scenarios/scenario.js";
import { ReportError, readReport } from "./schema.js";

/** One change between the baseline and the new run. */
export interface Change {
  readonly scenario: string;
  readonly kind: "added" | "missing" | "verdict" | "check" | "timing" | "observation";
  readonly what: string;
  readonly base?: string;
  readonly now?: string;
}

/** Checks by label; a repeated label (two reads on kang) gets `#n`, so the n-th pairs with the n-th. */
export function keyedChecks(checks: readonly Check[]): Map<string, Check> {
  const seen = new Map<string, number>();
  const out = new Map<string, Check>();
  for (const c of checks) {
    const n = (seen.get(c.label) ?? 0) + 1;
    seen.set(c.label, n);
    out.set(n === 1 ? c.label : `${c.label} #${n}`, c);
  }
  return out;
}

function compareChecks(name: string, base: readonly Check[], now: readonly Check[], out: Change[]): void {
  const b = keyedChecks(base);
  const n = keyedChecks(now);
  for (const [label, cb] of b) {
    const cn = n.get(label);
    if (!cn) {
      out.push({ scenario: name, kind: "check", what: `${label}: check no longer made`, base: cb.observed });
      continue;
    }
    if (cb.timing && cn.timing) {
      // A timing changed when the new measurement left the tolerance around the old one.
      const tol = Math.max(cb.timing.toleranceMs, cn.timing.toleranceMs);
      if (Math.abs(cn.timing.observedMs - cb.timing.observedMs) > tol) {
        out.push({
          scenario: name,
          kind: "timing",
          what: `${label} (tolerance ± ${humanMs(tol)})`,
          base: humanMs(cb.timing.observedMs),
          now: humanMs(cn.timing.observedMs),
        });
      }
    } else if (cb.observed !== cn.observed) {
      out.push({ scenario: name, kind: "check", what: label, base: cb.observed, now: cn.observed });
    }
    if (cb.pass !== cn.pass && !(cb.timing && cn.timing)) {
      // A changed expectation with the same observation (a model change) still counts.
      if (cb.observed === cn.observed)
        out.push({
          scenario: name,
          kind: "check",
          what: `${label}: verdict`,
          base: cb.pass ? "pass" : "fail",
          now: cn.pass ? "pass" : "fail",
        });
    }
  }
  for (const [label, cn] of n)
    if (!b.has(label)) out.push({ scenario: name, kind: "check", what: `${label}: new check`, now: cn.observed });
}

/** An observation as a table shows it: `4096 ms`. */
export function showObservation(o: Observation): string {
  return `${o.value}${o.unit ? ` ${o.unit}` : ""}`;
}

function compareObservations(
  name: string,
  base: Readonly<Record<string, Observation>>,
  now: Readonly<Record<string, Observation>>,
  out: Change[],
): void {
  for (const [key, ob] of Object.entries(base)) {
    const on = now[key];
    if (!on) {
      out.push({ scenario: name, kind: "observation", what: `${key}: no longer observed`, base: showObservation(ob) });
      continue;
    }
    const tol = Math.max(ob.toleranceMs ?? -1, on.toleranceMs ?? -1);
    const changed =
      tol >= 0 && typeof ob.value === "number" && typeof on.value === "number"
        ? Math.abs(on.value - ob.value) > tol
        : on.value !== ob.value;
    if (changed)
      out.push({
        scenario: name,
        kind: "observation",
        what: tol >= 0 ? `${key} (tolerance ± ${tol} ms)` : key,
        base: showObservation(ob),
        now: showObservation(on),
      });
  }
  for (const [key, on] of Object.entries(now))
    if (!(key in base))
      out.push({ scenario: name, kind: "observation", what: `${key}: newly observed`, now: showObservation(on) });
}

/** Every change from `base` to `now`. Times inside their tolerance are no change. */
export function diffReports(base: Report, now: Report): Change[] {
  if (base.backend !== now.backend) {
    throw new ReportError(
      `the reports come from different backends (${base.backend} and ${now.backend}): compare runs of one backend`,
    );
  }
  const out: Change[] = [];
  const byName = (r: Report) => new Map<string, ReportScenario>(r.scenarios.map((s) => [s.name, s]));
  const b = byName(base);
  const n = byName(now);
  for (const [name, sb] of b) {
    const sn = n.get(name);
    if (!sn) {
      out.push({ scenario: name, kind: "missing", what: "scenario missing from the new run", base: sb.verdict });
      continue;
    }
    if (sb.verdict !== sn.verdict)
      out.push({ scenario: name, kind: "verdict", what: "verdict", base: sb.verdict, now: sn.verdict });
    compareChecks(name, sb.checks, sn.checks, out);
    compareObservations(name, sb.observations, sn.observations, out);
  }
  for (const [name, sn] of n)
    if (!b.has(name)) out.push({ scenario: name, kind: "added", what: "scenario added", now: sn.verdict });
  return out;
}

/** The changes as lines a person reads in a nightly log. */
export function formatChanges(changes: readonly Change[], base: Report, now: Report): string {
  const head = `${base.kernel.release} (${base.createdAt}) -> ${now.kernel.release} (${now.createdAt})`;
  if (changes.length === 0) return `${head}\nno behavior changed`;
  const lines = changes.map((c) => {
    const arrow =
      c.base !== undefined && c.now !== undefined
        ? `: ${c.base} -> ${c.now}`
        : c.base !== undefined
          ? ` (was ${c.base})`
          : c.now !== undefined
            ? ` (${c.now})`
            : "";
    return `${c.kind.padEnd(11)} ${c.scenario}  ${c.what}${arrow}`;
  });
  return [head, ...lines, `${changes.length} change${changes.length === 1 ? "" : "s"}`].join("\n");
}

/** `sockprobe diff BASE.json NEW.json`: 0 nothing changed, 1 something did, 2 unreadable or mismatched input. */
export function diffCommand(args: readonly string[], io = { out: process.stdout, err: process.stderr }): number {
  if (args.length !== 2) {
    io.err.write("sockprobe: diff takes two reports: sockprobe diff BASE.json NEW.json\n");
    return 2;
  }
  try {
    const base = readReport(args[0] as string);
    const now = readReport(args[1] as string);
    const changes = diffReports(base, now);
    io.out.write(`${formatChanges(changes, base, now)}\n`);
    return changes.length === 0 ? 0 : 1;
  } catch (e) {
    if (!(e instanceof ReportError)) throw e;
    io.err.write(`sockprobe: ${e.message}\n`);
    return 2;
  }
}
