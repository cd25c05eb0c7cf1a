// What a person reads: the summary table, and the story of one scenario.
import { formatPacket, relativeSeq } from "../evidence/capture.js";
import { formatTraceEvent } from "../evidence/tracepoints.js";
import { clip } from "../report/escape.js";
import type { ScenarioResult } from "../scenarios/scenario.js";
import { formatEntry } from "../sys/transcript.js";

/** A finished scenario as one progress line: verdict, name, time, and how far the run is. */
export function formatProgress(r: ScenarioResult, done: number, total: number): string {
  return `${r.verdict.padEnd(5)} ${r.name} (${(r.durationMs / 1000).toFixed(1)} s)  [${done}/${total}]`;
}

/** The end-of-run table: scenario, question, expected, observed, verdict, time. */
export function formatTable(results: readonly ScenarioResult[], width = process.stdout.columns ?? 200): string {
  const wide = width >= 160;
  const cols = wide
    ? { name: 26, question: 44, expected: 40, observed: 40 }
    : { name: 26, question: 30, expected: 24, observed: 24 };
  const row = (cells: string[]) => cells.join("  ");
  const lines = [
    row([
      "scenario".padEnd(cols.name),
      "question".padEnd(cols.question),
      "expected".padEnd(cols.expected),
      "observed".padEnd(cols.observed),
      "verdict",
      "  time",
    ]),
  ];
  for (const r of results) {
    lines.push(
      row([
        clip(r.name, cols.name).padEnd(cols.name),
        clip(r.question, cols.question).padEnd(cols.question),
        clip(r.expected, cols.expected).padEnd(cols.expected),
        clip(r.observed, cols.observed).padEnd(cols.observed),
        r.verdict.toUpperCase().padEnd(7),
        `${(r.durationMs / 1000).toFixed(1).padStart(5)} s`,
      ]),
    );
  }
  const failed = results.filter((r) => r.verdict !== "pass");
  for (const r of failed) lines.push("", `${r.verdict.toUpperCase()} ${r.name}: ${r.reason ?? ""}`);
  const n = (v: string) => results.filter((r) => r.verdict === v).length;
  lines.push("", `${n("pass")} passed, ${n("fail")} failed, ${n("error")} errors, ${n("skip")} skipped`);
  return lines.join("\n");
}

/** The whole story of one scenario: question, the seed, what this kernel did, with its evidence. */
export function formatStory(r: ScenarioResult): string {
  const out: string[] = [];
  out.push(`${r.name}  (seed ${r.seed})`, "", `Question: ${r.question}`, "", `The seed says: ${r.seedSays}`);
  if (r.linux) out.push("", `On Linux: ${r.linux}`);
  out.push("", `What this kernel did: ${r.verdict.toUpperCase()}${r.reason ? ` (${r.reason})` : ""}`);
  for (const c of r.checks)
    out.push(`  ${c.pass ? "ok  " : "FAIL"}  ${c.label}: expected ${c.expected}, observed ${c.observed}`);
  const obs = Object.entries(r.observations);
  if (obs.length) {
    out.push("", "Observations:");
    for (const [k, v] of obs) out.push(`  ${k}: ${v.value}${v.unit ? ` ${v.unit}` : ""}`);
  }
  if (r.story.length) out.push("", "Story:", ...r.story.map((s) => `  ${s}`));
  const sysctls = Object.entries(r.hostSysctls).filter(([, v]) => Object.keys(v).length);
  if (sysctls.length) {
    out.push("", "Sysctls in force:");
    for (const [host, v] of sysctls) for (const [k, val] of Object.entries(v)) out.push(`  ${host}: ${k} = ${val}`);
  }
  const width = Math.max(4, ...r.evidence.transcript.map((e) => e.host.length));
  const events = [
    ...r.evidence.transcript.map((e) => ({ at: e.atUs, line: formatEntry(e, width) })),
    ...r.evidence.faults.map((f) => ({
      at: f.atUs,
      line: `${"".padEnd(width)} ${(f.atUs / 1e6).toFixed(6).padStart(12)}  *** ${f.fault} ${f.hosts.join(", ")}${f.detail ? ` (${f.detail})` : ""}`,
    })),
  ].sort((a, b) => a.at - b.at);
  out.push("", "System calls, every host on one clock (like truss -d):", ...events.map((e) => `  ${e.line}`));
  if (r.evidence.packets.length) {
    out.push("", "Packets (each host's switch port; seq relative):");
    for (const p of relativeSeq(r.evidence.packets)) out.push(`  ${formatPacket(p)}`);
  }
  if (r.evidence.states.length) {
    out.push("", "TCP states and resets (tracepoints):");
    for (const e of r.evidence.states)
      out.push(`  ${formatTraceEvent({ ...e, atNs: BigInt(Math.round(e.atUs * 1000)) }, 0n)}`);
  } else {
    out.push(
      "",
      `TCP states: ${r.evidence.trace.available ? "none recorded" : `unavailable (${r.evidence.trace.reason ?? "tracefs"})`}`,
    );
  }
  if (r.evidence.pcapFiles.length)
    out.push("", "Capture files (open with Wireshark):", ...r.evidence.pcapFiles.map((f) => `  ${f}`));
  return out.join("\n");
}
