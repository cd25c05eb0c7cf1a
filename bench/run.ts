// `npm run bench [-- SECTION...]`: figures side by side, taken in one run, never asserted as timed tests.
import { benchSys } from "./sys.js";

type Section = () => Promise<string[]>;

const fmtNs = (ns: number) => (ns >= 10_000 ? `${(ns / 1000).toFixed(1)} µs` : `${ns.toFixed(0)} ns`);

const SECTIONS: Record<string, Section> = {
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
