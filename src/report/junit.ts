// JUnit XML for CI systems: one test case per scenario, failures with their messages.
import { writeFileSync } from "node:fs";
import type { Report } from "../runner/report.js";
// The HTML page's escaper already makes XML-safe text (SVG is XML): one escaper for both.
import { escapeHtml as xmlEscape } from "./escape.js";

/** The report as a JUnit testsuite document. */
export function renderJunit(report: Report): string {
  const s = report.summary;
  const secs = (ms: number) => (ms / 1000).toFixed(3);
  const cases = report.scenarios.map((sc) => {
    const checks = sc.checks
      .map((c) => `${c.pass ? "ok  " : "FAIL"} ${c.label}: expected ${c.expected}, observed ${c.observed}`)
      .join("\n");
    const body =
      sc.verdict === "fail"
        ? `<failure message="${xmlEscape(sc.reason ?? "failed")}" type="KernelBehavior">${xmlEscape(checks)}</failure>`
        : sc.verdict === "error"
          ? `<error message="${xmlEscape(sc.reason ?? "error")}" type="ScenarioError">${xmlEscape(checks)}</error>`
          : sc.verdict === "skip"
            ? `<skipped message="${xmlEscape(sc.reason ?? "skipped")}"/>`
            : "";
    const out = `<system-out>${xmlEscape([`question: ${sc.question}`, `seed: ${sc.seed}`, checks, ...sc.story].join("\n"))}</system-out>`;
    return `    <testcase name="${xmlEscape(sc.name)}" classname="sockprobe.${xmlEscape(report.backend)}" time="${secs(sc.durationMs)}">${body}${out}</testcase>`;
  });
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites name="sockprobe" tests="${report.scenarios.length}" failures="${s.fail}" errors="${s.error}" skipped="${s.skip}" time="${secs(report.durationMs)}">`,
    `  <testsuite name="sockprobe ${xmlEscape(report.kernel.release)}" tests="${report.scenarios.length}" failures="${s.fail}" errors="${s.error}" skipped="${s.skip}" time="${secs(report.durationMs)}" timestamp="${xmlEscape(report.createdAt)}" hostname="${xmlEscape(report.machine.hostname)}">`,
    ...cases,
    "  </testsuite>",
    "</testsuites>",
    "",
  ].join("\n");
}

/** Writes the JUnit file. */
export function writeJunit(file: string, report: Report): void {
  writeFileSync(file, renderJunit(report));
}
