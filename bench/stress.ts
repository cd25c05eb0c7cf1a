// `npm run stress`: every scenario 20 times in a row, then 20 more with the other core kept busy.
// Prints each failure with its reason, and exits 1 if there was any.
import { type ChildProcess, spawn } from "node:child_process";
import { availableParallelism } from "node:os";
import { runScenarios } from "../src/runner/run-many.js";
import { SCENARIOS } from "../src/scenarios/index.js";

const rounds = Number(process.env.STRESS_ROUNDS ?? 20);
const names = process.argv.slice(2);
const scenarios = names.length ? SCENARIOS.filter((s) => names.includes(s.name)) : SCENARIOS;

// A process spinning on one core, so the runs compete for CPU the way a busy CI machine makes them.
function burner(): ChildProcess {
  return spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" });
}

let failures = 0;
for (const busy of [false, true]) {
  const burners = busy ? Array.from({ length: Math.max(1, availableParallelism() - 1) }, burner) : [];
  try {
    const failed = new Map<string, string[]>();
    const started = performance.now();
    for (let i = 0; i < rounds; i++) {
      for (const r of await runScenarios(scenarios, { trace: true })) {
        if (r.verdict !== "pass")
          failed.set(r.name, [...(failed.get(r.name) ?? []), `round ${i + 1}: ${r.verdict}: ${r.reason}`]);
      }
    }
    const n = [...failed.values()].reduce((a, b) => a + b.length, 0);
    failures += n;
    console.log(
      `${busy ? "other core busy" : "idle machine"}: ${rounds} rounds x ${scenarios.length} scenarios, ${n} failures, ${((performance.now() - started) / 1000).toFixed(0)} s`,
    );
    for (const [name, list] of failed) for (const line of list) console.log(`  ${name} ${line}`);
  } finally {
    for (const b of burners) b.kill("SIGKILL");
  }
}
process.exitCode = failures === 0 ? 0 : 1;
