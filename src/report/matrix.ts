// The matrix as people read it: a table whose columns are the kernels and whose rows are what
// differs between them, each with its explanation; and the same as one self-contained page.
import type { Matrix, MatrixVerdict } from "../runner/matrix.js";
import { clip, escapeHtml as esc } from "./escape.js";

function summaryText(s: Readonly<Record<MatrixVerdict, number>>): string {
  const parts = (["pass", "flaky", "fail", "error", "skip"] as const)
    .filter((v) => s[v] > 0)
    .map((v) => `${s[v]} ${v}`);
  return parts.join(", ") || "nothing ran";
}

function pad(text: string, width: number): string {
  const t = clip(text, width - 1);
  return t + " ".repeat(Math.max(0, width - t.length));
}

/** The terminal table: verdicts per kernel, then every difference with its explanation. */
export function formatMatrix(m: Matrix, width = 200): string {
  const labels = m.kernels.map((k) => k.label);
  const cell = (s: Matrix["scenarios"][number], l: string) => {
    const r = s.results[l];
    return r?.verdict === "flaky" ? `flaky (${r.attempts} tries)` : (r?.verdict ?? "-");
  };
  const values = [
    ...m.differences.flatMap((d) => Object.values(d.values)),
    ...m.kernels.map((k) => summaryText(k.summary)),
    ...m.scenarios.flatMap((s) => labels.map((l) => cell(s, l))),
  ];
  const col = Math.min(28, Math.max(12, ...[...labels, ...values].map((v) => v.length + 2)));
  const first = 44;
  const lines: string[] = [];
  lines.push(pad("", first) + labels.map((l) => pad(l, col)).join(""));
  lines.push(pad("verdicts", first) + m.kernels.map((k) => pad(summaryText(k.summary), col)).join(""));
  for (const s of m.scenarios) {
    const vs = labels.map((l) => s.results[l]?.verdict ?? "-");
    if (new Set(vs).size === 1 && vs[0] === "pass") continue;
    lines.push(
      pad(`  ${s.name}`, first) +
        vs
          .map((v, i) => pad(v === "flaky" ? `flaky (${s.results[labels[i] as string]?.attempts} tries)` : v, col))
          .join(""),
    );
  }
  lines.push("");
  if (m.differences.length === 0) {
    lines.push("no check or observation differs between these kernels");
  } else {
    lines.push(
      `${m.differences.length} difference${m.differences.length === 1 ? "" : "s"} between the kernels (${m.summary.unexplained} unexplained):`,
    );
    lines.push(pad("scenario: what", first) + labels.map((l) => pad(l, col)).join("") + "why");
    const whyWidth = Math.max(30, width - first - col * labels.length);
    for (const d of m.differences) {
      lines.push(
        pad(`${d.scenario}: ${d.what}`, first) +
          labels.map((l) => pad(d.values[l] ?? "-", col)).join("") +
          clip(`${d.explained ? "" : "UNEXPLAINED "}${d.explanation}`, whyWidth),
      );
    }
  }
  const s = m.summary;
  lines.push("");
  lines.push(
    `${s.pass} passed, ${s.fail} failed, ${s.error} errors, ${s.skip} skipped, ${s.flaky} flaky across ${m.kernels.length} kernels; ${s.differences} differences, ${s.unexplained} unexplained`,
  );
  return lines.join("\n");
}

/** One self-contained page: the kernels, the verdicts and the differences. */
export function renderMatrixHtml(m: Matrix): string {
  const labels = m.kernels.map((k) => k.label);
  const th = labels.map((l) => `<th>${esc(l)}</th>`).join("");
  const verdictRows = m.scenarios
    .map(
      (s) =>
        `<tr><td>${esc(s.name)}</td>${labels
          .map((l) => {
            const r = s.results[l];
            return r
              ? `<td class="${esc(r.verdict)}" title="${esc(r.reason ?? "")}">${esc(r.verdict)}${r.attempts > 1 ? ` (${r.attempts} tries)` : ""}</td>`
              : "<td>-</td>";
          })
          .join("")}</tr>`,
    )
    .join("\n");
  const diffRows = m.differences
    .map(
      (d) =>
        `<tr class="${d.explained ? "explained" : "unexplained"}"><td>${esc(d.scenario)}</td><td>${esc(d.what)}</td>${labels
          .map(
            (l) =>
              `<td>${esc(d.values[l] ?? "-")}${d.expected?.[l] && d.expected[l] !== d.values[l] ? `<br><span class="muted">expected ${esc(d.expected[l])}</span>` : ""}</td>`,
          )
          .join(
            "",
          )}<td>${d.explained ? "" : "<strong>unexplained</strong>: "}${esc(d.explanation.replace(/^unexplained: /, ""))}</td></tr>`,
    )
    .join("\n");
  const s = m.summary;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>sockprobe matrix: ${esc(labels.join(", "))}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
.pass{background:#e6f4ea}.fail,.error{background:#fce8e6}.flaky{background:#fef7e0}.skip{background:#eee}
tr.unexplained{background:#fce8e6}.muted{color:#777;font-size:90%}
</style></head><body>
<h1>sockprobe matrix</h1>
<p>${s.pass} passed, ${s.fail} failed, ${s.error} errors, ${s.skip} skipped, ${s.flaky} flaky across ${m.kernels.length} kernels; ${s.differences} differences, ${s.unexplained} unexplained. Made ${esc(m.createdAt)}.</p>
<h2>Kernels</h2>
<table><tr><th>kernel</th><th>release</th><th>report</th><th>verdicts</th></tr>
${m.kernels.map((k) => `<tr><td>${esc(k.label)}</td><td>${esc(k.release)}</td><td>${esc(k.report)}</td><td>${esc(summaryText(k.summary))}</td></tr>`).join("\n")}
</table>
<h2>Verdicts</h2>
<table><tr><th>scenario</th>${th}</tr>
${verdictRows}
</table>
<h2>What differs between the kernels</h2>
${m.differences.length === 0 ? "<p>No check or observation differs.</p>" : `<table><tr><th>scenario</th><th>what</th>${th}<th>why</th></tr>\n${diffRows}\n</table>`}
</body></html>
`;
}
