// `npm run bench [-- SECTION...]`: figures side by side, taken in one run, never asserted as timed tests.

import { runScenarios } from "../src/runner/run-many.js";
import { runScenario } from "../src/runner/run-scenario.js";
import { SCENARIOS } from "../src/scenarios/index.js";
import { labCreateTeardownMs, loop2a } from "./lab.js";
import { benchQemu } from "./qemu.js";
import { benchSys } from "./sys.js";
import { benchVm } from "./vm.js";

type Section = () => Promise<string[]>;

const fmtNs = (ns: number) => (ns >= 10_000 ? `${(ns / 1000).toFixed(1)} µs` : `${ns.toFixed(0)} ns`);

const SECTIONS: Record<string, Section> = {
  async run() {
    // Each scenario alone first, for the longest; then all of them at once, as `sockprobe run` does.
    const alone: Array<[string, number]> = [];
    for (const s of SCENARIOS) alone.push([s.name, (await runScenario(s, { trace: true })).durationMs]);
    const [longestName, longestMs] = alone.reduce((a, b) => (b[1] > a[1] ? b : a));
    const t0 = performance.now();
    const results = await runScenarios(SCENARIOS, { trace: true });
    const wallMs = performance.now() - t0;
    const ratio = wallMs / longestMs;
    return [
      `full run: ${SCENARIOS.length} scenarios in parallel labs`,
      `  longest scenario alone (${longestName})   ${(longestMs / 1000).toFixed(2)} s`,
      `  full run wall time                        ${(wallMs / 1000).toFixed(2)} s  (${results.filter((r) => r.verdict === "pass").length}/${results.length} passed)`,
      `  ratio                                     ${ratio.toFixed(2)}x (goal <= 1.5x: ${ratio <= 1.5 ? "met" : "missed"})`,
      `  sum of scenarios alone                    ${(alone.reduce((a, b) => a + b[1], 0) / 1000).toFixed(2)} s`,
    ];
  },
  async lab() {
    const createMs = await labCreateTeardownMs();
    const r = await loop2a();
    const rate = (ns: number) => `${(1e9 / ns).toFixed(0)}/s`;
    return [
      "lab: netns backend",
      `  create a 2-host lab and tear it down (median of 20)   ${createMs.toFixed(1)} ms  (goal < 150 ms: ${createMs < 150 ? "met" : "missed"})`,
      "  seed 004 (004_41db9c39b506eeca.txt) program 2A loop, one iteration = connect + accept + close server + close client:",
      `    through the lab's HostSocket API   ${fmtNs(r.lab).padStart(9)}  ${rate(r.lab).padStart(8)}  ${(r.python / r.lab).toFixed(2)}x Python (goal >= 1.5x: ${r.python / r.lab >= 1.5 ? "met" : "missed"})`,
      `    the seed's Python                  ${fmtNs(r.python).padStart(9)}  ${rate(r.python).padStart(8)}  1.00x`,
      `    the same loop in C                 ${fmtNs(r.c).padStart(9)}  ${rate(r.c).padStart(8)}  ${(r.python / r.c).toFixed(2)}x Python`,
    ];
  },
  async vm() {
    return benchVm();
  },
  async qemu() {
    return benchQemu();
  },
  async sys() {
    const rows = await benchSys();
    return [
      "syscall layer: cost per call (median of 3 alternating runs), sockprobe (src/sys/) vs Python socket module",
      `  ${"call".padEnd(40)} ${"sockprobe".padStart(10)} ${"python".padStart(10)}  python/sockprobe`,
      ...rows.map((r) => {
        if (r.pythonNs === undefined) return `  ${r.name.padEnd(40)} ${fmtNs(r.nodeNs).padStart(10)}`;
        const ratio = r.pythonNs / r.nodeNs;
        const verdict = ratio >= 1 ? "goal met: at least as fast" : "goal missed";
        return `  ${r.name.padEnd(40)} ${fmtNs(r.nodeNs).padStart(10)} ${fmtNs(r.pythonNs).padStart(10)}  ${ratio.toFixed(2)}x (${verdict})`;
      }),
    ];
  },
};

const wanted = process.argv.slice(2);
for (const name of wanted) {
  if (!(name in SECTIONS)) {
    console.error(`unknown benchmark section ${JSON.stringify(name)}; known: ${Object.keys(SECTIONS).join(", ")}`);
    process.exit(2);
  }
}
for (const name of wanted.length ? wanted : Object.keys(SECTIONS)) {
  const lines = await (SECTIONS[name] as Section)();
  console.log(lines.join("\n"));
}
