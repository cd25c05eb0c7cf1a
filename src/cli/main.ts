#!/usr/bin/env node
// The sockprobe command line: run, list, explain.
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { which } from "../lab/tools.js";
import { diffCommand } from "../report/diff.js";
import { clip } from "../report/escape.js";
import { reportCommand } from "../report/html.js";
import { writeJunit } from "../report/junit.js";
import { formatProgress, formatStory, formatTable } from "../runner/format.js";
import { buildReport, toolVersion, writeReport } from "../runner/report.js";
import { type Progress, runScenarios } from "../runner/run-many.js";
import { runScenario } from "../runner/run-scenario.js";
import { findScenario, SCENARIOS } from "../scenarios/index.js";
import type { Scenario } from "../scenarios/scenario.js";
import { tuneCommand } from "../tune/index.js";

const HELP = `sockprobe: what the Linux kernel really does to TCP connections when things go wrong

usage:
  sockprobe run [NAME...] [--jobs N] [--json FILE] [--junit FILE] [--evidence DIR] [--agent]
                        run scenarios (all by default) in parallel labs on the netns
                        backend and print what this kernel did; exit 0 when every
                        verdict passes, 1 otherwise, 2 on bad usage
  sockprobe list        name every scenario with its question and seed
  sockprobe explain NAME
                        run one scenario and tell its story: the question, what the
                        seed says, what this kernel did, the system calls of every
                        host on one clock, the packets and the TCP states
  sockprobe report FILE.json --html OUT.html [--tune TUNE.json]
                        one self-contained page: the summary, a ladder diagram of every
                        scenario (hosts, syscalls, packets, states, faults on one clock)
                        and predicted against measured times (with --tune, also the rows
                        of sockprobe tune --verify --json TUNE.json)
  sockprobe diff BASE.json NEW.json
                        list every behavior that changed between two reports (a verdict,
                        an errno, revents, a count, a timing outside its tolerance, a
                        scenario added or missing); exit 0 when nothing changed, 1 when
                        something did, 2 on unreadable or mismatched input
  sockprobe tune [FILE] [--verify] [--json ...]
                        what the sysctls in force (or FILE, as sysctl -p takes it) mean
                        for connections; --verify applies them to lab hosts and prints
                        predicted against measured (see: sockprobe tune --help)
  sockprobe version     print the version

options for run:
  --jobs N              at most N scenarios at once (default: all)
  --json FILE           write the versioned JSON report to FILE (schema/report.schema.json)
  --junit FILE          write JUnit XML to FILE, for CI systems
  --evidence DIR        keep packet captures (pcap) under DIR
  --no-trace            do not record TCP states from tracepoints
  --agent               reach each host's sockets through the JSON-lines agent, as the
                        VM backends do, instead of in-process
`;

/** Bad usage: the message says what was wrong and how to fix it. */
class UsageError extends Error {}

// Not root: run again inside a user namespace where we are, if the kernel allows it; the exit
// code of that run is ours. Undefined means: go on here.
function ensurePrivileges(argv: readonly string[]): number | undefined {
  if (process.getuid?.() === 0) return undefined;
  const unshare = which("unshare");
  if (!process.env.SOCKPROBE_USERNS && unshare) {
    const probe = spawnSync(unshare, ["--user", "--map-root-user", "--net", "true"], { stdio: "ignore" });
    if (probe.status === 0) {
      const self = [process.execPath, ...process.execArgv, process.argv[1] as string, ...argv];
      const r = spawnSync(unshare, ["--user", "--map-root-user", "--net", "--mount", ...self], {
        stdio: "inherit",
        env: { ...process.env, SOCKPROBE_USERNS: "1" },
      });
      return r.status ?? 1;
    }
  }
  throw new UsageError(
    "sockprobe needs root to build its lab of network namespaces: run it as root (sudo), or allow unprivileged user namespaces (sysctl user.max_user_namespaces > 0, and kernel.unprivileged_userns_clone=1 where it exists) so that it can run inside one",
  );
}

/** A checked `run` command line. */
interface RunArgs {
  scenarios: Scenario[];
  jobs?: number;
  json?: string;
  junit?: string;
  evidence?: string;
  trace: boolean;
  agent: boolean;
}

function parseRunArgs(args: string[]): RunArgs {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      jobs: { type: "string" },
      json: { type: "string" },
      junit: { type: "string" },
      evidence: { type: "string" },
      "no-trace": { type: "boolean" },
      agent: { type: "boolean" },
    },
  });
  const out: RunArgs = {
    scenarios: positionals.length ? positionals.map(findScenario) : [...SCENARIOS],
    trace: !values["no-trace"],
    agent: values.agent === true,
  };
  if (values.jobs !== undefined) {
    const jobs = Number(values.jobs);
    if (!Number.isInteger(jobs) || jobs < 1)
      throw new UsageError(`--jobs takes a whole number >= 1, got ${JSON.stringify(values.jobs)}`);
    out.jobs = jobs;
  }
  if (values.json !== undefined) out.json = values.json;
  if (values.junit !== undefined) out.junit = values.junit;
  if (values.evidence !== undefined) out.evidence = values.evidence;
  return out;
}

function progress(): Progress {
  const tty = process.stderr.isTTY;
  const show = (text: string) => {
    if (tty) process.stderr.write(`\r\x1b[K${clip(text, (process.stderr.columns ?? 100) - 1)}`);
  };
  return {
    started(_name, running) {
      show(`running: ${running.join(", ")}`);
    },
    finished(r, done, total, running) {
      process.stderr.write(`${tty ? "\r\x1b[K" : ""}${formatProgress(r, done, total)}\n`);
      if (running.length) show(`running: ${running.join(", ")}`);
      else if (tty) process.stderr.write("\r\x1b[K");
    },
  };
}

async function run(a: RunArgs): Promise<number> {
  const { scenarios, jobs } = a;
  const started = performance.now();
  const results = await runScenarios(scenarios, {
    ...(jobs ? { jobs } : {}),
    ...(a.evidence ? { captureDir: a.evidence } : {}),
    trace: a.trace,
    ...(a.agent ? { control: "agent" as const } : {}),
    progress: progress(),
  });
  const durationMs = performance.now() - started;
  console.log(formatTable(results));
  console.log(`wall time ${(durationMs / 1000).toFixed(1)} s for ${results.length} scenarios`);
  const report = buildReport(results, durationMs);
  if (a.json) writeReport(a.json, report);
  if (a.junit) writeJunit(a.junit, report);
  return results.every((r) => r.verdict === "pass") ? 0 : 1;
}

async function explain(scenario: Scenario): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "sockprobe-explain-"));
  const r = await runScenario(scenario, { captureDir: dir, trace: true });
  console.log(formatStory(r));
  return r.verdict === "pass" ? 0 : 1;
}

function list(): number {
  for (const s of SCENARIOS) console.log(`${s.name}\n    ${s.question}\n    seed: ${s.seed}\n`);
  return 0;
}

/** Runs one command line; returns the exit code (0 ok, 1 a failed check, 2 bad usage). */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(HELP);
        return 0;
      case "version":
      case "--version":
        console.log(toolVersion());
        return 0;
      case "list":
        return list();
      case "diff":
        return diffCommand(rest);
      case "report":
        return await reportCommand(rest);
      case "tune":
        // Reading sysctls needs nothing; measuring them builds labs.
        return (rest.includes("--verify") ? ensurePrivileges(argv) : undefined) ?? (await tuneCommand(rest));
      // Usage is checked before anything is built, and before re-running in a user namespace.
      case "run": {
        const parsed = parseRunArgs(rest);
        return ensurePrivileges(argv) ?? (await run(parsed));
      }
      case "explain": {
        if (rest.length !== 1) {
          throw new UsageError(
            "explain takes one scenario name, e.g. `sockprobe explain peer-power-off` (see `sockprobe list`)",
          );
        }
        const scenario = findScenario(rest[0] as string);
        return ensurePrivileges(argv) ?? (await explain(scenario));
      }
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}; try \`sockprobe help\``);
    }
  } catch (e) {
    const err = e as Error & { code?: string };
    const usage =
      e instanceof UsageError || err.name === "UnknownScenarioError" || err.code?.startsWith("ERR_PARSE_ARGS");
    console.error(`sockprobe: ${err.message}`);
    return usage ? 2 : 1;
  }
}

// Ctrl-C: exit at once; the exit hooks remove what a lab made outside its namespaces, the kernel the rest.
process.on("SIGINT", () => {
  process.stderr.write("\nsockprobe: interrupted\n");
  process.exit(130);
});
process.on("SIGTERM", () => process.exit(143));

process.exitCode = await main(process.argv.slice(2));
