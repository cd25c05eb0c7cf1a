// `sockprobe report FILE.json --html OUT.html`: one self-contained page that makes a run visible at
// a glance: a summary, then per scenario its question, checks and ladder diagram, and a plot of
// predicted against measured times. Inline CSS and SVG only, and a policy that forbids any request.
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { checkOutputFile, OutputPathError } from "../runner/outputs.js";
import type { Report, ReportScenario } from "../runner/report.js";
import { formatEntry } from "../sys/transcript.js";
import { escapeHtml as esc, slug } from "./escape.js";
import { scenarioLadder } from "./ladder.js";
import { type PredictedVsMeasured, renderPlot, timingRows, tuneRows } from "./plot.js";
import { ReportError, readReport } from "./schema.js";

/** The shape of a `tune --verify` row that renderHtml plots. */
export type { PredictedVsMeasured } from "./plot.js";

/** What renderHtml adds to the report. */
export interface HtmlOptions {
  /** Rows from `sockprobe tune --verify`, plotted with the timing checks. */
  readonly predictedVsMeasured?: readonly PredictedVsMeasured[];
  /** Beyond this many items a ladder keeps only its first and last halves. */
  readonly maxLadderItems?: number;
}

const VERDICTS = ["pass", "fail", "error", "skip"] as const;

function verdictBadge(v: string): string {
  const known = (VERDICTS as readonly string[]).includes(v) ? v : "unknown";
  return `<span class="verdict ${known}">${esc(v)}</span>`;
}

function seconds(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return "?";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

function atText(us: number | undefined): string {
  return us === undefined ? "" : `+${(us / 1e6).toFixed(3)} s`;
}

// Anchors are unique even if two scenarios share a name.
function anchors(report: Report): Map<ReportScenario, string> {
  const seen = new Set<string>();
  const out = new Map<ReportScenario, string>();
  for (const s of report.scenarios) {
    let id = `scenario-${slug(s.name)}`;
    for (let n = 2; seen.has(id); n++) id = `scenario-${slug(s.name)}-${n}`;
    seen.add(id);
    out.set(s, id);
  }
  return out;
}

// A question's answer, said once: what this kernel did for each headline check, with the expected
// value beside it only where it differs (a timing within its tolerance, a failed check).
function answer(s: ReportScenario): string {
  const checks = s.checks ?? [];
  const headline = checks.filter((c) => c.headline);
  const shown = headline.length > 0 ? headline : checks.slice(0, 1);
  if (shown.length === 0) return `<span class="muted">${esc(s.reason ?? "no check was made")}</span>`;
  const items = shown.map((c) => {
    const expected = c.expected === c.observed ? "" : ` <span class="expected">expected ${esc(c.expected)}</span>`;
    return `<li class="${c.pass ? "pass" : "fail"}">${esc(c.label)}: <b>${esc(c.observed)}</b>${expected}</li>`;
  });
  return `<ul class="answer">${items.join("")}</ul>`;
}

function summaryTable(report: Report, ids: Map<ReportScenario, string>): string {
  const rows = report.scenarios.map(
    (s) =>
      `<tr class="${esc(s.verdict)}"><td><a href="#${ids.get(s)}">${esc(s.name)}</a></td><td>${esc(s.question)}</td><td>${answer(s)}</td><td>${verdictBadge(s.verdict)}</td><td class="num">${esc(seconds(s.durationMs))}</td></tr>`,
  );
  return `<table class="summary"><thead><tr><th>scenario</th><th>question</th><th>what this kernel did <span class="muted small">(expected, where it differs)</span></th><th>verdict</th><th>time</th></tr></thead><tbody>
${rows.join("\n")}
</tbody></table>`;
}

function checksTable(s: ReportScenario): string {
  if (!s.checks?.length) return `<p class="muted">No checks were made.</p>`;
  const rows = s.checks.map((c, i) => {
    const cls = c.pass ? "pass" : "fail";
    const msg = c.pass
      ? ""
      : `<tr class="fail message"><td></td><td colspan="5">${esc(c.message ?? `expected ${c.expected}, got ${c.observed}`)}</td></tr>`;
    return `<tr class="${cls}${c.headline ? " headline" : ""}"><td class="num">${i + 1}</td><td>${esc(c.label)}${c.timing ? ' <span class="tag">timing</span>' : ""}</td><td>${esc(c.expected)}</td><td>${esc(c.observed)}</td><td class="num">${esc(atText(c.atUs))}</td><td>${verdictBadge(c.pass ? "pass" : "fail")}</td></tr>${msg}`;
  });
  return `<table class="checks"><thead><tr><th>#</th><th>check</th><th>expected</th><th>observed</th><th>at</th><th>verdict</th></tr></thead><tbody>
${rows.join("\n")}
</tbody></table>`;
}

const LEGEND = `<div class="legend"><span><i class="k syn"></i>SYN</span><span><i class="k ack"></i>ACK</span><span><i class="k data"></i>data</span><span><i class="k fin"></i>FIN</span><span><i class="k rst"></i>RST</span><span><i class="k arp"></i>ARP</span><span><i class="k lost"></i>✕ never seen at the receiver</span><span><i class="k state"></i>TCP state</span><span><i class="k blocked"></i>blocked in a call</span><span><i class="k fault"></i>fault</span><span><i class="k down"></i>host down</span><span><i class="k break"></i>time skipped</span></div>`;

function scenarioSection(s: ReportScenario, id: string, options: HtmlOptions): string {
  const ev = s.evidence;
  const ladder = scenarioLadder(s, options.maxLadderItems !== undefined ? { maxItems: options.maxLadderItems } : {});
  const evidenceNotes = [
    ev?.packets?.length
      ? ""
      : "no packets in this report: `sockprobe run --json FILE` captures them (and `--evidence DIR` keeps the pcap files)",
    ev?.trace?.available
      ? ""
      : `no TCP states: tracepoints ${ev?.trace?.reason ? `unavailable (${ev.trace.reason})` : "not recorded"}`,
    ...ladder.notes,
  ].filter(Boolean);
  const story = s.story?.length
    ? `<h3>Story</h3><ol class="story">${s.story.map((l) => `<li>${esc(l)}</li>`).join("")}</ol>`
    : "";
  const observations = Object.entries(s.observations ?? {});
  const obs = observations.length
    ? `<details><summary>Observations (${observations.length})</summary><table class="obs"><tbody>${observations
        .map(
          ([k, o]) =>
            `<tr><td>${esc(k)}</td><td>${esc(`${String(o.value)}${o.unit ? ` ${o.unit}` : ""}${o.toleranceMs !== undefined ? ` ± ${o.toleranceMs} ms` : ""}`)}</td></tr>`,
        )
        .join("")}</tbody></table></details>`
    : "";
  const transcript = ev?.transcript?.length
    ? `<details><summary>Transcript: every call on one clock (${ev.transcript.length})</summary><pre class="transcript">${esc(
        [...ev.transcript]
          .sort((a, b) => a.atUs - b.atUs)
          .map((e) => formatEntry(e))
          .join("\n"),
      )}</pre></details>`
    : "";
  const files = ev?.pcapFiles?.length
    ? `<details><summary>Packet captures</summary><ul>${ev.pcapFiles.map((f) => `<li><code>${esc(f)}</code></li>`).join("")}</ul></details>`
    : "";
  return `<section class="scenario ${esc(s.verdict)}" id="${id}">
<h2>${esc(s.name)} ${verdictBadge(s.verdict)} <span class="muted small">${esc(seconds(s.durationMs))}</span></h2>
<dl class="about">
<dt>Question</dt><dd>${esc(s.question)}</dd>
<dt>Seed</dt><dd>${esc(s.seed)}</dd>
<dt>The seed says</dt><dd>${esc(s.seedSays)}</dd>
${s.linux ? `<dt>What Linux does</dt><dd>${esc(s.linux)}</dd>` : ""}
${s.reason ? `<dt>Why ${esc(s.verdict)}</dt><dd class="reason">${esc(s.reason)}</dd>` : ""}
</dl>
<h3>Checks</h3>
${checksTable(s)}
${story}
<h3>Ladder</h3>
<p class="muted small">One column per host; time flows down on the lab's clock (seconds on the left). Calls and TCP states sit on their host's column, packets cross between them from the time the sender's switch port saw them to the time the receiver's did. Hover for details.</p>
${LEGEND}
<div class="ladder-wrap">${ladder.svg}</div>
${evidenceNotes.length ? `<ul class="notes">${evidenceNotes.map((n) => `<li>${esc(n)}</li>`).join("")}</ul>` : ""}
${obs}
${transcript}
${files}
<p class="top"><a href="#top">↑ summary</a></p>
</section>`;
}

const CSS = `
:root{--pass:#15803d;--fail:#dc2626;--error:#c2410c;--skip:#6b7280;--ink:#1f2937;--muted:#6b7280;--line:#e5e7eb}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--ink);margin:0 auto;padding:16px 24px 48px;max-width:1500px}
h1{margin:0 0 4px;font-size:24px}h2{margin:0 0 8px;font-size:20px;display:flex;gap:10px;align-items:center}h3{font-size:15px;margin:18px 0 6px}
a{color:#1d4ed8}
.muted{color:var(--muted)}.small{font-size:12px;font-weight:normal}
code,pre,.mono{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12px}
.meta{display:flex;flex-wrap:wrap;gap:4px 18px;margin:6px 0 10px;color:#374151}
.meta b{font-weight:600}
.totals span{margin-right:12px}
table{border-collapse:collapse;margin:6px 0 10px}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f9fafb;font-weight:600;font-size:13px}
td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
table.summary td:first-child{white-space:nowrap}
table.summary td:nth-child(3){font-size:12.5px}
ul.answer{margin:0;padding-left:16px}ul.answer li.fail{color:var(--fail)}ul.answer .expected{color:var(--muted)}
table.summary tr.fail td,table.summary tr.error td{background:#fef2f2}
.verdict{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-weight:600;font-size:12px;text-transform:uppercase;letter-spacing:.03em}
.verdict.pass{background:var(--pass)}.verdict.fail{background:var(--fail)}.verdict.error{background:var(--error)}.verdict.skip,.verdict.unknown{background:var(--skip)}
table.checks tr.fail td{background:#fef2f2}
table.checks tr.message td{color:var(--fail);font-size:12.5px;border-bottom:2px solid #fecaca}
table.checks tr.headline td:nth-child(2){font-weight:600}
.tag{font-size:11px;color:#6b21a8;background:#f3e8ff;border-radius:6px;padding:0 5px}
section.scenario{border-top:3px solid var(--line);margin-top:28px;padding-top:14px}
section.scenario.fail{border-top-color:var(--fail)}section.scenario.error{border-top-color:var(--error)}section.scenario.pass{border-top-color:var(--pass)}
dl.about{display:grid;grid-template-columns:max-content 1fr;gap:4px 14px;margin:0}
dl.about dt{font-weight:600;color:#374151}dl.about dd{margin:0;max-width:110ch}
dd.reason{color:var(--fail)}
ol.story{margin:0;padding-left:22px;font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px}
.notes{font-size:12px;color:var(--muted);margin:4px 0}
.ladder-wrap{overflow-x:auto;border:1px solid var(--line);border-radius:6px;background:#fff}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;color:#374151;margin:4px 0 6px}
.legend i.k{display:inline-block;width:22px;height:0;border-top:2px solid;vertical-align:middle;margin-right:5px}
.legend i.syn{border-color:#15803d}.legend i.ack{border-color:#6b7280}.legend i.data{border-color:#1d4ed8}.legend i.fin{border-color:#7c3aed}.legend i.rst{border-color:#dc2626;border-top-width:3px}.legend i.arp{border-color:#9ca3af;border-top:1px dashed}.legend i.lost{border-color:#6b7280;border-top-style:dotted}
.legend i.state{height:12px;border:1px solid #93c5fd;background:#eff6ff;border-radius:6px}.legend i.blocked{width:6px;height:14px;border:0;background:#bfdbfe}.legend i.fault{border-color:#ea580c;border-top-style:dashed}.legend i.down{width:10px;height:14px;border:0;background:repeating-linear-gradient(45deg,#fde68a 0 3px,#fff7ed 3px 6px)}.legend i.break{height:10px;border:0;background:#f3f4f6;border-top:1px solid #d1d5db;border-bottom:1px solid #d1d5db}
svg.ladder{display:block;font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:11px}
svg.ladder text{white-space:pre;paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round;fill:#1f2937}
svg.ladder .hname{font-weight:700;font-size:13px;font-family:system-ui,sans-serif}
svg.ladder .haddr{fill:#6b7280;font-size:10.5px}
svg.ladder .lifeline{stroke:#9ca3af;stroke-width:1.5;fill:none}
svg.ladder .host-column.elsewhere .lifeline{stroke-dasharray:3 3}
svg.ladder .axis text{fill:#9ca3af;font-size:10px}
svg.ladder .break rect{fill:#f3f4f6}
svg.ladder .break path{fill:none;stroke:#9ca3af}
svg.ladder .break text{fill:#4b5563;font-style:italic;stroke:#f3f4f6}
svg.ladder .omitted rect{fill:#fef3c7}
svg.ladder .omitted text{fill:#92400e;stroke:#fef3c7;font-weight:600}
svg.ladder .call circle{fill:#4b5563}
svg.ladder .call text{fill:#111827}
svg.ladder text.err{fill:#dc2626;font-weight:600}
svg.ladder text.soft{fill:#b45309}
svg.ladder text.repeat{fill:#6b7280;font-style:italic}
svg.ladder .blocked{fill:#bfdbfe}
svg.ladder .state rect{fill:#eff6ff;stroke:#93c5fd}
svg.ladder .state text{fill:#1e3a8a;stroke:#eff6ff}
svg.ladder .state circle{fill:#2563eb}
svg.ladder .reset rect{fill:#fef2f2;stroke:#fca5a5}
svg.ladder .reset text{fill:#b91c1c;stroke:#fef2f2;font-weight:600}
svg.ladder .reset circle{fill:#dc2626}
svg.ladder .retrans rect{fill:#fff7ed;stroke:#fdba74}
svg.ladder .retrans text{fill:#9a3412;stroke:#fff7ed}
svg.ladder .retrans circle{fill:#ea580c}
svg.ladder .packet line{stroke-width:1.6}
svg.ladder .packet.thin line{stroke-width:.9;stroke-dasharray:4 2}
svg.ladder .packet.lost line{stroke-dasharray:2 3}
svg.ladder .packet .cross{stroke:#dc2626;stroke-width:2;fill:none}
svg.ladder .packet.syn line{stroke:#15803d}svg.ladder text.syn{fill:#166534}
svg.ladder .packet.ack line{stroke:#6b7280}svg.ladder text.ack{fill:#4b5563}
svg.ladder .packet.data line{stroke:#1d4ed8}svg.ladder text.data{fill:#1e40af}
svg.ladder .packet.fin line{stroke:#7c3aed}svg.ladder text.fin{fill:#6d28d9}
svg.ladder .packet.rst line{stroke:#dc2626;stroke-width:2.4}svg.ladder text.rst{fill:#b91c1c;font-weight:700}
svg.ladder .packet.arp line{stroke:#9ca3af}svg.ladder text.arp{fill:#6b7280;font-size:10px}
svg.ladder .packet.other line{stroke:#0891b2}svg.ladder text.other{fill:#0e7490}
svg.ladder marker.syn path{fill:#15803d}svg.ladder marker.ack path{fill:#6b7280}svg.ladder marker.data path{fill:#1d4ed8}svg.ladder marker.fin path{fill:#7c3aed}svg.ladder marker.rst path{fill:#dc2626}svg.ladder marker.arp path{fill:#9ca3af}svg.ladder marker.other path{fill:#0891b2}
svg.ladder .fault line{stroke:#ea580c;stroke-width:1.5;stroke-dasharray:6 3}
svg.ladder .fault text{fill:#c2410c;font-weight:700;font-family:system-ui,sans-serif;font-size:12px}
svg.ladder .fault .down{fill:url(#hatch);stroke:#f59e0b;stroke-width:.5}
svg.ladder .hatch-bg{fill:#fff7ed}svg.ladder .hatch-line{stroke:#fbbf24;stroke-width:3}
.plot-wrap{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
figure.plot{margin:0}
figure.plot figcaption{max-width:640px;font-size:12px;color:var(--muted)}
svg.timing-plot{display:block;font-family:system-ui,sans-serif;font-size:11px;background:#fff}
svg.timing-plot .frame{fill:none;stroke:#d1d5db}
svg.timing-plot line.grid{stroke:#e5e7eb}svg.timing-plot line.minor{stroke:#f3f4f6}
svg.timing-plot .tick{fill:#6b7280}svg.timing-plot .tick.minor{fill:#9ca3af;font-size:10px}
svg.timing-plot .axis-title{fill:#374151;font-size:12px}
svg.timing-plot .diagonal{stroke:#9ca3af;stroke-width:1.2;stroke-dasharray:5 4}
svg.timing-plot .errbar{stroke-width:1.5}
svg.timing-plot .point.pass .errbar{stroke:#86efac}svg.timing-plot .point.fail .errbar{stroke:#fca5a5}
svg.timing-plot .point.pass .dot{fill:#15803d}svg.timing-plot .point.fail .dot{fill:#dc2626;stroke:#7f1d1d;stroke-width:1.5}
svg.timing-plot .plabel text{font-weight:700;paint-order:stroke;stroke:#fff;stroke-width:3px}
svg.timing-plot .plabel.pass text{fill:#166534}svg.timing-plot .plabel.fail text{fill:#b91c1c}
svg.timing-plot .leader{stroke:#9ca3af;stroke-width:.8}
table.timings tr.fail td{background:#fef2f2}
pre.transcript{max-height:360px;overflow:auto;background:#f9fafb;padding:8px;border-radius:6px}
p.top{font-size:12px}
`;

/** The whole page for a report, as one string of HTML with everything inline. */
export function renderHtml(report: Report, options: HtmlOptions = {}): string {
  const ids = anchors(report);
  const k = report.kernel ?? { release: "?", version: "?", machine: "?" };
  const sm = report.summary ?? { pass: 0, fail: 0, error: 0, skip: 0 };
  const tune = tuneRows(options.predictedVsMeasured ?? []);
  const rows = [
    // By scenario, not by name: two scenarios of one name have two anchors.
    ...timingRows(report, (s) => ids.get(s)),
    ...tune.rows,
  ];
  const title = `sockprobe report: ${report.scenarios.length} scenario${report.scenarios.length === 1 ? "" : "s"} on Linux ${k.release}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="${esc(`${report.tool?.name ?? "sockprobe"} ${report.tool?.version ?? ""}`.trim())}">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<header id="top">
<h1>sockprobe report</h1>
<div class="meta">
<span><b>kernel</b> Linux ${esc(k.release)} <span class="muted">${esc(k.version)}</span> ${esc(k.machine)}</span>
<span><b>machine</b> ${esc(report.machine?.hostname ?? "?")}</span>
<span><b>backend</b> ${esc(report.backend)}</span>
<span><b>date</b> ${esc(report.createdAt)}</span>
<span><b>run time</b> ${esc(seconds(report.durationMs))}</span>
<span><b>tool</b> ${esc(report.tool?.name ?? "sockprobe")} ${esc(report.tool?.version ?? "")}</span>
</div>
<p class="totals"><b>${report.scenarios.length}</b> scenarios: ${VERDICTS.map((v) => `<span>${verdictBadge(v)} ${Number(sm[v] ?? 0)}</span>`).join("")}</p>
</header>
<h2>Summary</h2>
${summaryTable(report, ids)}
<section id="timings" class="timings">
<h2>Predicted against measured</h2>
${renderPlot(rows, tune.unplotted)}
</section>
${report.scenarios.map((s) => scenarioSection(s, ids.get(s) as string, options)).join("\n")}
</body>
</html>
`;
}

// A message stays on one line, however long the parser's complaint.
const oneLine = (s: string) => s.replace(/\s*\n\s*/g, " ").trim();

/** Where reportCommand writes its messages; injectable so tests can read them. */
export interface ReportIo {
  readonly stderr?: (text: string) => void;
  readonly stdout?: (text: string) => void;
}

const USAGE = "usage: sockprobe report FILE.json --html OUT.html [--tune TUNE.json]";

/** `sockprobe report FILE.json --html OUT.html`: 0 when the page is written, 2 with one line on stderr otherwise. */
export async function reportCommand(args: string[], io: ReportIo = {}): Promise<number> {
  const stderr = io.stderr ?? ((t: string) => process.stderr.write(t));
  const stdout = io.stdout ?? ((t: string) => process.stdout.write(t));
  const fail = (message: string) => {
    stderr(`sockprobe report: ${oneLine(message)}\n`);
    return 2;
  };
  let values: { html?: string | undefined; tune?: string | undefined };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { html: { type: "string" }, tune: { type: "string" } },
    }));
  } catch (e) {
    return fail(`${(e as Error).message} (${USAGE})`);
  }
  if (positionals.length === 0) return fail(`name the report to read (${USAGE})`);
  if (positionals.length > 1)
    return fail(`one report at a time, got ${positionals.length}: ${positionals.join(" ")} (${USAGE})`);
  const file = positionals[0] as string;
  if (values.html === undefined || values.html === "")
    return fail(`--html OUT.html is missing: say where to write the page (${USAGE})`);
  // Where the page goes is checked before the report is read and drawn.
  try {
    checkOutputFile("--html", values.html);
  } catch (e) {
    if (e instanceof OutputPathError) return fail(e.message);
    throw e;
  }
  let report: Report;
  try {
    report = readReport(file);
  } catch (e) {
    if (e instanceof ReportError) return fail(e.message);
    throw e;
  }
  // Rows of `sockprobe tune --verify --json FILE`, plotted beside the scenarios' own timings.
  let tune: PredictedVsMeasured[] | undefined;
  if (values.tune !== undefined) {
    try {
      const rows = JSON.parse(readFileSync(values.tune, "utf8")) as unknown;
      if (!Array.isArray(rows) || !rows.every((r) => typeof r === "object" && r !== null && "label" in r)) {
        return fail(
          `${values.tune} is not what \`sockprobe tune --verify --json FILE\` writes (an array of rows with a label)`,
        );
      }
      tune = rows as PredictedVsMeasured[];
    } catch (e) {
      return fail(`cannot read ${values.tune}: ${(e as Error).message}`);
    }
  }
  let html: string;
  try {
    html = renderHtml(report, tune ? { predictedVsMeasured: tune } : {});
  } catch (e) {
    return fail(`${file} could not be drawn (a field has an unexpected shape?): ${(e as Error).message}`);
  }
  try {
    writeFileSync(values.html, html);
  } catch (e) {
    return fail(`cannot write ${values.html}: ${(e as Error).message}`);
  }
  stdout(`wrote ${values.html} (${report.scenarios.length} scenarios, ${Math.round(html.length / 1024)} KiB)\n`);
  return 0;
}
