// Runs many scenarios in parallel labs: they spend most of their time waiting on kernel timers,
// so running them side by side brings the whole run close to its longest scenario.
import type { Scenario, ScenarioResult } from "../scenarios/scenario.js";
import { type RunOptions, runScenario } from "./run-scenario.js";

/** Progress events, for a terminal line or plain log lines. */
export interface Progress {
  started(name: string, running: readonly string[]): void;
  finished(result: ScenarioResult, done: number, total: number, running: readonly string[]): void;
}

/** Runs the scenarios, at most `jobs` at once; results in the given order. */
export async function runScenarios(
  scenarios: readonly Scenario[],
  options: RunOptions & { jobs?: number; progress?: Progress } = {},
): Promise<ScenarioResult[]> {
  const jobs = Math.max(1, options.jobs ?? scenarios.length);
  const results: ScenarioResult[] = new Array(scenarios.length);
  const running = new Set<string>();
  let next = 0;
  let done = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      const s = scenarios[i];
      if (!s) return;
      running.add(s.name);
      options.progress?.started(s.name, [...running]);
      const r = await runScenario(s, options);
      running.delete(s.name);
      results[i] = r;
      done++;
      options.progress?.finished(r, done, scenarios.length, [...running]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, scenarios.length) }, worker));
  return results;
}
