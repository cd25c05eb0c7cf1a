// Predicted against measured: every timing check of a run (and rows from `sockprobe tune --verify`)
// as a point, its tolerance as an error bar around the prediction, on a symmetric-log scale so
// that a 0 ms prediction and a 900 s one share a picture.
import type { Report, ReportScenario } from "../runner/report.js";
import { clip, escapeHtml as esc } from "./escape.js";

/** One predicted-vs-measured row, as `sockprobe tune --verify` gives them; a null (a count, a skipped probe) is not plotted. */
export interface PredictedVsMeasured {
  readonly label: string;
  readonly predictedMs: number | null;
  readonly measuredMs: number | null;
  readonly toleranceMs: number | null;
  readonly pass: boolean;
}

/** A row of the plot and where it came from. */
export interface PlotRow {
  readonly label: string;
  readonly predictedMs: number;
  readonly measuredMs: number;
  readonly toleranceMs: number;
  readonly pass: boolean;
  readonly source: "check" | "tune";
  /** The scenario section it links to, for checks. */
  readonly anchor?: string;
}

/** Every timing check of the report, labelled "scenario: check". */
export function timingRows(report: Report, anchorOf: (s: ReportScenario) => string | undefined): PlotRow[] {
  return report.scenarios.flatMap((s) =>
    (s.checks ?? [])
      .filter((c) => c.timing !== undefined)
      .map((c) => ({
        label: `${s.name}: ${c.label}`,
        predictedMs: c.timing?.expectedMs ?? 0,
        measuredMs: c.timing?.observedMs ?? 0,
        toleranceMs: c.timing?.toleranceMs ?? 0,
        pass: c.pass,
        source: "check" as const,
        anchor: anchorOf(s),
      })),
  );
}

// The scale: linear below 1 ms, logarithmic above, continuous at 0.
const C_MS = 1;
const sl = (v: number) => Math.sign(v) * Math.log10(1 + Math.abs(v) / C_MS);

/** A duration as a tick label. */
function tickText(ms: number): string {
  if (ms === 0) return "0";
  if (ms < 1000) return `${ms} ms`;
  return `${ms / 1000} s`;
}

function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (Math.abs(ms) < 10) return `${ms.toFixed(2)} ms`;
  if (Math.abs(ms) < 1000) return `${ms.toFixed(0)} ms`;
  return `${(ms / 1000).toFixed(Math.abs(ms) < 10_000 ? 3 : 1)} s`;
}

interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}
const overlaps = (a: Box, b: Box) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

/** The tune rows that can be plotted, and the labels of those that cannot (no time on one side). */
export function tuneRows(rows: readonly PredictedVsMeasured[]): { rows: PlotRow[]; unplotted: string[] } {
  const ok = (v: number | null): v is number => typeof v === "number" && Number.isFinite(v);
  const out: PlotRow[] = [];
  const unplotted: string[] = [];
  for (const r of rows) {
    if (ok(r.predictedMs) && ok(r.measuredMs)) {
      out.push({
        label: r.label,
        predictedMs: r.predictedMs,
        measuredMs: r.measuredMs,
        toleranceMs: ok(r.toleranceMs) ? r.toleranceMs : 0,
        pass: r.pass,
        source: "tune",
      });
    } else {
      unplotted.push(r.label);
    }
  }
  return { rows: out, unplotted };
}

/** The plot as an SVG element followed by a table of its rows (the table numbers match the points). */
export function renderPlot(rows: readonly PlotRow[], unplotted: readonly string[] = []): string {
  const skipped = unplotted.length
    ? `<p class="muted small">Not plotted (no time predicted or measured: a count, or a probe that did not run): ${unplotted.map((l) => esc(l)).join("; ")}.</p>`
    : "";
  if (rows.length === 0) {
    return `<p class="muted">No timing checks in this report, and no rows from <code>tune --verify</code>.</p>${skipped}`;
  }
  const W = 760;
  const H = 520;
  const M = { l: 74, r: 24, t: 20, b: 56 };
  const finite = (v: number) => (Number.isFinite(v) ? v : 0);
  const hi = Math.max(
    1,
    ...rows.flatMap((r) => [
      finite(r.predictedMs) + finite(r.toleranceMs),
      finite(r.measuredMs),
      finite(r.predictedMs),
    ]),
  );
  // Durations are not negative: a tolerance reaching below 0 is cut at the frame, not drawn into it.
  const lo = Math.min(0, ...rows.flatMap((r) => [finite(r.predictedMs), finite(r.measuredMs)]));
  const top = sl(hi) * 1.06 + 0.05;
  // A little room below 0, so a point at 0 is not drawn on the frame.
  const bot = sl(lo) * 1.06 - 0.12;
  const frac = (v: number) => Math.min(1, Math.max(0, (sl(finite(v)) - bot) / (top - bot)));
  const px = (v: number) => M.l + frac(v) * (W - M.l - M.r);
  const py = (v: number) => H - M.b - frac(v) * (H - M.t - M.b);
  const out: string[] = [];
  out.push(
    `<svg class="timing-plot" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="predicted against measured times">`,
  );
  // Ticks at 0 and every power of ten the range covers.
  const ticks = [0];
  for (let t = 1; t <= hi * 1.2; t *= 10) ticks.push(t);
  if (lo < 0) for (let t = 1; -t >= lo * 1.2; t *= 10) ticks.unshift(-t);
  // Unlabelled lines at 2 and 5 of each decade, to read values between the labelled ones.
  const grid: string[] = [];
  for (let t = 1; t <= hi * 1.2; t *= 10) {
    for (const m of [2 * t, 5 * t]) {
      if (m > hi * 1.2) continue;
      // Only the measured axis has room to name the fives.
      const name =
        m === 5 * t
          ? `<text class="tick minor" x="${M.l - 6}" y="${(py(m) + 4).toFixed(1)}" text-anchor="end">${esc(tickText(m))}</text>`
          : "";
      grid.push(
        `<line class="minor" x1="${px(m).toFixed(1)}" y1="${M.t}" x2="${px(m).toFixed(1)}" y2="${H - M.b}"/><line class="minor" x1="${M.l}" y1="${py(m).toFixed(1)}" x2="${W - M.r}" y2="${py(m).toFixed(1)}"/>${name}`,
      );
    }
  }
  for (const t of ticks) {
    const gx = px(t);
    const gy = py(t);
    const label = t < 0 ? `−${tickText(-t)}` : tickText(t);
    grid.push(
      `<line class="grid" x1="${gx.toFixed(1)}" y1="${M.t}" x2="${gx.toFixed(1)}" y2="${H - M.b}"/><line class="grid" x1="${M.l}" y1="${gy.toFixed(1)}" x2="${W - M.r}" y2="${gy.toFixed(1)}"/>`,
      `<text class="tick" x="${gx.toFixed(1)}" y="${H - M.b + 16}" text-anchor="middle">${esc(label)}</text><text class="tick" x="${M.l - 6}" y="${(gy + 4).toFixed(1)}" text-anchor="end">${esc(label)}</text>`,
    );
  }
  out.push(`<g class="grid">${grid.join("")}</g>`);
  out.push(
    `<rect class="frame" x="${M.l}" y="${M.t}" width="${W - M.l - M.r}" height="${H - M.t - M.b}"/>`,
    `<line class="diagonal" x1="${px(Math.max(lo, -hi)).toFixed(1)}" y1="${py(Math.max(lo, -hi)).toFixed(1)}" x2="${px(hi * 1.2).toFixed(1)}" y2="${py(hi * 1.2).toFixed(1)}"><title>measured = predicted</title></line>`,
    `<text class="axis-title" x="${(M.l + W - M.r) / 2}" y="${H - 14}" text-anchor="middle">predicted (the model), symmetric-log scale</text>`,
    `<text class="axis-title" x="16" y="${(M.t + H - M.b) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(M.t + H - M.b) / 2})">measured</text>`,
  );
  // Points, failures last so they are on top; numbers placed where they collide with nothing.
  const placed: Box[] = rows.map((r) => ({ x: px(r.predictedMs) - 5, y: py(r.measuredMs) - 5, w: 10, h: 10 }));
  // Labels keep off the error bars too.
  const bars = rows.map((r) => ({
    x: px(r.predictedMs),
    y1: Math.min(py(r.predictedMs - r.toleranceMs), py(r.predictedMs + r.toleranceMs)),
    y2: Math.max(py(r.predictedMs - r.toleranceMs), py(r.predictedMs + r.toleranceMs)),
  }));
  const segmentsHit = (b: Box) =>
    bars.some((s) => s.x >= b.x - 5 && s.x <= b.x + b.w + 5 && s.y2 >= b.y && s.y1 <= b.y + b.h);
  const order = rows.map((_, i) => i).sort((a, b) => Number(rows[a]?.pass === false) - Number(rows[b]?.pass === false));
  const marks: string[] = [];
  const labels: string[] = [];
  for (const i of order) {
    const r = rows[i] as PlotRow;
    const x = px(r.predictedMs);
    const y = py(r.measuredMs);
    const y1 = py(r.predictedMs - r.toleranceMs);
    const y2 = py(r.predictedMs + r.toleranceMs);
    const cls = `point ${r.pass ? "pass" : "fail"} ${r.source}`;
    const tip = `${i + 1}. ${r.label}\npredicted ${fmtMs(r.predictedMs)} ± ${fmtMs(r.toleranceMs)}, measured ${fmtMs(r.measuredMs)}: ${r.pass ? "pass" : "FAIL"}`;
    const shape =
      r.source === "tune"
        ? `<path class="dot" d="M${x.toFixed(1)},${(y - 6).toFixed(1)}l6,6l-6,6l-6,-6z"/>`
        : `<circle class="dot" cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${r.pass ? 4.5 : 6}"/>`;
    marks.push(
      `<g class="${cls}" data-label="${esc(r.label)}" data-pass="${r.pass}"><title>${esc(tip)}</title><line class="errbar" x1="${x.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x.toFixed(1)}" y2="${y2.toFixed(1)}"/><line class="errbar" x1="${(x - 5).toFixed(1)}" y1="${y1.toFixed(1)}" x2="${(x + 5).toFixed(1)}" y2="${y1.toFixed(1)}"/><line class="errbar" x1="${(x - 5).toFixed(1)}" y1="${y2.toFixed(1)}" x2="${(x + 5).toFixed(1)}" y2="${y2.toFixed(1)}"/>${shape}</g>`,
    );
    // The label goes in the first free spot around the point, further out with a leader line if
    // need be; when the whole "n. scenario: check" fits nowhere, the number alone does.
    const short = String(i + 1);
    const long = `${short}. ${clip(r.label, 54)}`;
    const h = 13;
    let spot: Box | undefined;
    let name = long;
    let lead = false;
    for (const candidate of [long, short]) {
      const w = candidate.length * 6.2 + 6;
      for (let ring = 0; ring < 10 && !spot; ring++) {
        const d = 8 + ring * 12;
        for (const [dx, dy] of [
          [d, -d],
          [d, d],
          [-d - w, -d],
          [-d - w, d],
          [d, 0],
          [-d - w, 0],
          [-w / 2, -d - h],
          [-w / 2, d + h],
        ] as const) {
          const b = { x: x + dx, y: y + dy - h / 2, w, h };
          if (b.x < M.l + 2 || b.x + b.w > W - M.r - 2 || b.y < M.t + 2 || b.y + b.h > H - M.b - 2) continue;
          if (placed.some((p, j) => overlaps(p, b) && j !== i)) continue;
          if (segmentsHit(b)) continue;
          spot = b;
          name = candidate;
          lead = ring > 0;
          break;
        }
      }
      if (spot) break;
    }
    spot ??= { x: x + 8, y: y - 14, w: short.length * 6.2 + 6, h };
    placed.push(spot);
    const cx = spot.x + spot.w / 2;
    const cy = spot.y + spot.h / 2;
    labels.push(
      `<g class="plabel ${r.pass ? "pass" : "fail"}">${lead ? `<line class="leader" x1="${x.toFixed(1)}" y1="${y.toFixed(1)}" x2="${cx.toFixed(1)}" y2="${cy.toFixed(1)}"/>` : ""}<text x="${(spot.x + 3).toFixed(1)}" y="${(cy + 4).toFixed(1)}">${esc(name)}</text></g>`,
    );
  }
  out.push(...marks, ...labels, "</svg>");
  const table = rows
    .map((r, i) => {
      const dev = r.measuredMs - r.predictedMs;
      const name = r.anchor ? `<a href="#${r.anchor}">${esc(r.label)}</a>` : esc(r.label);
      return `<tr class="${r.pass ? "pass" : "fail"}"><td class="num">${i + 1}</td><td>${name}${r.source === "tune" ? ' <span class="tag">tune --verify</span>' : ""}</td><td class="num">${esc(fmtMs(r.predictedMs))}</td><td class="num">± ${esc(fmtMs(r.toleranceMs))}</td><td class="num">${esc(fmtMs(r.measuredMs))}</td><td class="num">${dev >= 0 ? "+" : "−"}${esc(fmtMs(Math.abs(dev)))}</td><td><span class="verdict ${r.pass ? "pass" : "fail"}">${r.pass ? "pass" : "fail"}</span></td></tr>`;
    })
    .join("\n");
  return `<div class="plot-wrap"><figure class="plot">${out.join("\n")}<figcaption>Each point is one timing: x the prediction, y the measurement; the bar is the prediction ± its tolerance, so a point inside its bar passes. The grey line is measured = predicted. Circles are checks, diamonds rows from <code>tune --verify</code>; failures are red.</figcaption></figure>
<table class="timings"><thead><tr><th>#</th><th>timing</th><th>predicted</th><th>tolerance</th><th>measured</th><th>off by</th><th>verdict</th></tr></thead><tbody>
${table}
</tbody></table></div>${skipped}`;
}
