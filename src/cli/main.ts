#!/usr/bin/env node
// The sockprobe command line: run, list, explain.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { constants as osConstants, release, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { which } from "../proc/tools.js";
import { clip } from "../report/escape.js";
import { writeJunit } from "../report/junit.js";
import { formatProgress, formatStory, formatTable } from "../runner/format.js";
import {
  checkDistinct,
  checkOutputDirectory,
  checkOutputFile,
  OutputPathError,
  privateDirectory,
} from "../runner/outputs.js";
import { buildReport, toolVersion, writeReport } from "../runner/report.js";
import { type Progress, runScenarios } from "../runner/run-many.js";
import { runScenario } from "../runner/run-scenario.js";
import { findScenario, SCENARIOS } from "../scenarios/index.js";
import type { Scenario } from "../scenarios/scenario.js";

const HELP = `sockprobe: what the Linux kernel really does to TCP connections when things go wrong

usage:
  sockprobe run [NAME...] [--backend netns|qemu|vagrant] [--kernel K [--modules DIR]]
                [--vagrant-dir DIR] [--jobs N] [--json FILE] [--junit FILE]
                [--evidence DIR] [--agent]
                        run scenarios (all by default) in parallel labs and print what
                        the kernel did; exit 0 when every verdict passes, 1 otherwise,
                        2 on bad usage
  sockprobe list        name every scenario with its question and seed
  sockprobe explain NAME [--backend netns|qemu] [--kernel K]
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
  sockprobe kernels [--fetch SERIES...] [--config]
                        list the kernels in the cache; --fetch a Debian series into it;
                        --config: the options a self-built kernel needs
  sockprobe matrix --kernel K1 --kernel K2 ... [NAME...] [--no-host] [--out DIR]
                [--baseline DIR] [--retries N] [--html FILE] [--jobs N] [--backend qemu]
  sockprobe matrix --from REPORT.json... [--out DIR] [--baseline DIR] [--html FILE]
                        the suite on every kernel (the host's too unless --no-host), one
                        report each plus matrix.json; prints what differs between the
                        kernels, each difference explained by the model or flagged;
                        --retries reruns failures and counts those that pass as flaky;
                        exit 0 when every scenario passes everywhere, 1 otherwise, 2 on
                        bad input
  sockprobe accel       print kvm or tcg: how a VM runs on this machine (the Vagrantfile
                        asks, to choose libvirt's driver)
  sockprobe version     print the version

options for run:
  --jobs N              at most N scenarios at once (default: all)
  --json FILE           write the versioned JSON report to FILE (schema/report.schema.json)
  --junit FILE          write JUnit XML to FILE, for CI systems
  --evidence DIR        keep packet captures (pcap) under DIR; with --json or --junit
                        and no --evidence, packets are captured for the report into a
                        temporary directory removed at exit
  --no-trace            do not record TCP states from tracepoints
  --agent               reach each host's sockets through the JSON-lines agent, as the
                        VM backends do, instead of in-process
  --backend B           netns (default): each host a network namespace on a bridge,
                        all on one kernel; qemu: each host a QEMU VM booting --kernel,
                        its NIC a tap on the lab's bridge, powered off, reset, paused
                        and crashed through QMP (one scenario at a time by default);
                        vagrant: the running machines of vagrant/'s Vagrantfile (kang,
                        kodos), reached over vagrant ssh, faults through the provider
  --vagrant-dir DIR     with --backend vagrant: the folder of the Vagrantfile
  --kernel K            the kernel to run on: host (default, the running kernel), a
                        Debian series such as 6.1 or 6.12 (fetched once into
                        ~/.cache/sockprobe), or a kernel image (bzImage, vmlinuz), booted
                        in QEMU with this machine's root shared read-only; on netns the
                        whole lab runs inside that one guest, on qemu every host boots it
  --modules DIR         with --kernel PATH: its modules (DIR/lib/modules/RELEASE)
`;

// Errors of bad input from the commands loaded on demand (each loads only what it needs, which
// matters most in a guest under TCG, where compiling modules dominates start-up).
const INPUT_ERRORS = new Set(["VmUsageError", "KernelError", "BootError", "ReportError", "VagrantError"]);

/** Bad usage: the message says what was wrong and how to fix it. */
class UsageError extends Error {}

// The run made again inside a user namespace, while it runs: our signals are forwarded to it.
let userNsRun: ChildProcess | undefined;

// Not root: run again inside a user namespace where we are, if the kernel allows it; the exit
// code of that run is ours. Undefined means: go on here. The run is waited for asynchronously, so
// that a signal reaches onSignal, which hands it on.
async function ensurePrivileges(argv: readonly string[]): Promise<number | undefined> {
  if (process.getuid?.() === 0) return undefined;
  const unshare = which("unshare");
  if (!process.env.SOCKPROBE_USERNS && unshare) {
    const probe = spawnSync(unshare, ["--user", "--map-root-user", "--net", "true"], {
      stdio: "ignore",
      timeout: 10_000,
    });
    if (probe.status === 0) {
      const self = [process.execPath, ...process.execArgv, process.argv[1] as string, ...argv];
      const child = spawn(unshare, ["--user", "--map-root-user", "--net", "--mount", ...self], {
        stdio: "inherit",
        env: { ...process.env, SOCKPROBE_USERNS: "1" },
      });
      userNsRun = child;
      try {
        const [code, signal] = (await new Promise((resolve, reject) => {
          child.once("error", reject);
          child.once("exit", (...r) => resolve(r));
        })) as [number | null, NodeJS.Signals | null];
        return code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0);
      } finally {
        userNsRun = undefined;
      }
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
  /** `host` (the default), a Debian series, or a kernel image to boot and run inside. */
  kernel: string;
  modules?: string;
  backend: "netns" | "qemu" | "vagrant";
  vagrantDir?: string;
}

type LabSetup = import("../runner/lab-setup.js").LabSetup;

function parseBackend(value: string | undefined): "netns" | "qemu" | "vagrant" {
  if (value === undefined || value === "netns" || value === "qemu" || value === "vagrant") return value ?? "netns";
  throw new UsageError(`unknown backend ${JSON.stringify(value)}: use netns (the default), qemu or vagrant`);
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
      kernel: { type: "string" },
      modules: { type: "string" },
      backend: { type: "string" },
      "vagrant-dir": { type: "string" },
    },
  });
  const out: RunArgs = {
    scenarios: positionals.length ? positionals.map(findScenario) : [...SCENARIOS],
    trace: !values["no-trace"],
    agent: values.agent === true,
    kernel: values.kernel ?? "host",
    backend: parseBackend(values.backend),
  };
  if (out.backend !== "netns" && out.agent)
    throw new UsageError(`--agent is how the ${out.backend} backend always reaches its hosts: drop it`);
  if (values["vagrant-dir"] !== undefined) {
    if (out.backend !== "vagrant") throw new UsageError("--vagrant-dir goes with --backend vagrant");
    out.vagrantDir = values["vagrant-dir"];
  }
  if (out.backend === "vagrant" && values.kernel !== undefined)
    throw new UsageError("--kernel does not go with --backend vagrant: the machines run their box's kernel");
  if (values.modules !== undefined) {
    if (out.kernel === "host")
      throw new UsageError("--modules goes with --kernel PATH: the modules of a kernel image to boot");
    out.modules = values.modules;
  }
  if (values.jobs !== undefined) {
    const jobs = Number(values.jobs);
    if (!Number.isInteger(jobs) || jobs < 1)
      throw new UsageError(`--jobs takes a whole number >= 1, got ${JSON.stringify(values.jobs)}`);
    out.jobs = jobs;
  }
  if (values.json !== undefined) out.json = values.json;
  if (values.junit !== undefined) out.junit = values.junit;
  if (values.evidence !== undefined) out.evidence = values.evidence;
  checkRunOutputs(out);
  return out;
}

// Every path a run writes, checked before any lab is built: a run that could only fail at its
// end is refused at once. --evidence DIR is made here, one component at a time (see outputs.ts).
function checkRunOutputs(a: RunArgs): void {
  checkDistinct([
    ["--json", a.json],
    ["--junit", a.junit],
  ]);
  if (a.json !== undefined) checkOutputFile("--json", a.json);
  if (a.junit !== undefined) checkOutputFile("--junit", a.junit);
  if (a.evidence !== undefined) checkOutputDirectory("--evidence", a.evidence);
}

// tune --verify --json OUT builds labs, then writes OUT: checked first. Without --verify, --json
// prints to standard output. The rest of the command line is tuneCommand's to judge.
function checkTuneOutputs(args: readonly string[]): void {
  if (!args.includes("--verify")) return;
  const { values } = parseArgs({
    args: [...args],
    strict: false,
    allowPositionals: true,
    options: { json: { type: "string" } },
  });
  if (typeof values.json === "string" && !values.json.startsWith("-")) checkOutputFile("--json", values.json);
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

async function run(a: RunArgs, setup?: LabSetup): Promise<number> {
  const { scenarios } = a;
  // VM hosts share two cores under TCG: one scenario at a time unless asked.
  const jobs = a.jobs ?? (setup ? 1 : undefined);
  const started = performance.now();
  // The ladders are the point of a report: where one is written, packets are captured, into a
  // directory of our own removed at exit unless --evidence keeps them.
  const captureDir = a.evidence ?? (a.json || a.junit ? privateDirectory("sockprobe-run-") : undefined);
  process.stderr.write(
    `running ${scenarios.length} scenario${scenarios.length === 1 ? "" : "s"} on ${setup ? setup.describe : `Linux ${release()}, netns backend`}\n`,
  );
  const ran = await runScenarios(scenarios, {
    ...(setup ? setup.lab : {}),
    ...(jobs ? { jobs } : {}),
    ...(captureDir ? { captureDir } : {}),
    trace: a.trace,
    ...(a.agent ? { control: "agent" as const } : {}),
    progress: progress(),
  });
  const durationMs = performance.now() - started;
  // The report names no capture file that is gone when it is read.
  const results = a.evidence ? ran : ran.map((r) => ({ ...r, evidence: { ...r.evidence, pcapFiles: [] } }));
  console.log(formatTable(results));
  console.log(`wall time ${(durationMs / 1000).toFixed(1)} s for ${results.length} scenarios`);
  const report = buildReport(
    results,
    durationMs,
    setup ? setup.backend : "netns",
    setup ? { release: setup.release, version: setup.version } : undefined,
  );
  const written = setup?.vagrant ? { ...report, vagrant: setup.vagrant } : report;
  if (a.json) writeReport(a.json, written);
  if (a.junit) writeJunit(a.junit, written);
  return results.every((r) => r.verdict === "pass") ? 0 : 1;
}

// The host's column of a matrix: the run, in this process, as a report.
async function runHostReport(names: readonly string[]) {
  const scenarios = names.map(findScenario);
  const started = performance.now();
  const results = await runScenarios(scenarios, { trace: true, progress: progress() });
  return buildReport(results, performance.now() - started);
}

// A kernel's column of a matrix on the qemu backend: every host a VM booting it, run from here.
async function runQemuReport(names: readonly string[], kernel: import("../vm/kernels.js").Kernel) {
  const { qemuSetup } = await import("../runner/lab-setup.js");
  const setup = await qemuSetup(kernel.image, undefined, kernel);
  process.stderr.write(`${setup.describe}\n`);
  const started = performance.now();
  const results = await runScenarios(names.map(findScenario), {
    trace: true,
    ...setup.lab,
    jobs: 1,
    progress: progress(),
  });
  return buildReport(results, performance.now() - started, "qemu", { release: setup.release, version: setup.version });
}

async function explain(scenario: Scenario, setup?: LabSetup): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "sockprobe-explain-"));
  if (setup) process.stderr.write(`${setup.describe}\n`);
  const r = await runScenario(scenario, {
    captureDir: dir,
    trace: true,
    ...(setup ? setup.lab : {}),
  });
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
        return (await import("../report/diff.js")).diffCommand(rest);
      case "report":
        return await (await import("../report/html.js")).reportCommand(rest);
      case "tune":
        // Reading sysctls needs nothing; measuring them builds labs.
        checkTuneOutputs(rest);
        return (
          (rest.includes("--verify") ? await ensurePrivileges(argv) : undefined) ??
          (await (await import("../tune/index.js")).tuneCommand(rest))
        );
      // Usage is checked before anything is built, and before re-running in a user namespace.
      case "run": {
        const parsed = parseRunArgs(rest);
        if (parsed.backend !== "netns") {
          const privileged = await ensurePrivileges(argv);
          if (privileged !== undefined) return privileged;
          const setups = await import("../runner/lab-setup.js");
          return await run(
            parsed,
            parsed.backend === "qemu"
              ? await setups.qemuSetup(parsed.kernel, parsed.modules)
              : await setups.vagrantSetup(parsed.vagrantDir),
          );
        }
        // A kernel under test boots in QEMU, which needs no root: the lab runs as root in the guest.
        if (parsed.kernel !== "host")
          return await (await import("./vm-commands.js")).runOnKernelCommand({
            ...parsed,
            scenarios: parsed.scenarios.map((s) => s.name),
          });
        return (await ensurePrivileges(argv)) ?? (await run(parsed));
      }
      // For the Vagrantfile: the accelerator a VM gets here (kvm only where KVM really runs a guest).
      case "accel": {
        const a = await (await import("../vm/accel.js")).chooseAccel();
        console.log(a.accel);
        console.error(a.why);
        return 0;
      }
      case "kernels":
        return await (await import("./vm-commands.js")).kernelsCommand(rest);
      case "matrix":
        return (
          (await ensurePrivileges(argv)) ??
          (await (await import("./vm-commands.js")).matrixCommand(rest, runHostReport, runQemuReport))
        );
      case "explain": {
        const { values, positionals } = parseArgs({
          args: rest,
          allowPositionals: true,
          options: {
            backend: { type: "string" },
            kernel: { type: "string" },
            modules: { type: "string" },
            "vagrant-dir": { type: "string" },
          },
        });
        if (positionals.length !== 1) {
          throw new UsageError(
            "explain takes one scenario name, e.g. `sockprobe explain peer-power-off` (see `sockprobe list`)",
          );
        }
        const scenario = findScenario(positionals[0] as string);
        const backend = parseBackend(values.backend);
        if (backend === "netns" && values.kernel !== undefined)
          throw new UsageError("explain --kernel goes with --backend qemu: each host then boots that kernel");
        const privileged = await ensurePrivileges(argv);
        if (privileged !== undefined) return privileged;
        if (backend === "qemu") {
          const { qemuSetup } = await import("../runner/lab-setup.js");
          return await explain(scenario, await qemuSetup(values.kernel ?? "host", values.modules));
        }
        if (backend === "vagrant") {
          const { vagrantSetup } = await import("../runner/lab-setup.js");
          return await explain(scenario, await vagrantSetup(values["vagrant-dir"]));
        }
        return await explain(scenario);
      }
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}; try \`sockprobe help\``);
    }
  } catch (e) {
    const err = e as Error & { code?: string };
    const usage =
      e instanceof UsageError ||
      e instanceof OutputPathError ||
      INPUT_ERRORS.has(err.name) ||
      err.code === "ESOCKPROBE_NO_QEMU" ||
      err.name === "UnknownScenarioError" ||
      err.code?.startsWith("ERR_PARSE_ARGS");
    console.error(`sockprobe: ${err.message}`);
    return usage ? 2 : 1;
  }
}

// SIGINT (Ctrl-C) and SIGTERM end a run at once, with 130 and 143 as a shell reports them. Every
// wait of a run is asynchronous, so the handler runs promptly; process.exit runs the exit hooks,
// which release every open lab (the kernel then frees its namespaces, and its programs die with
// us), remove the tracing instance and private directories. A run made again in a user namespace
// is handed the signal and ends the same way; its exit code is then ours. A second signal, or 5 s
// without an end, kills it.
function onSignal(signal: NodeJS.Signals): void {
  const code = 128 + (osConstants.signals[signal] ?? 0);
  const child = userNsRun;
  if (child && child.exitCode === null && child.signalCode === null) {
    if (!forwarded) {
      forwarded = true;
      child.kill(signal);
      setTimeout(() => child.kill("SIGKILL"), 5000).unref();
      return;
    }
    child.kill("SIGKILL");
  }
  process.stderr.write(`\nsockprobe: ${signal === "SIGINT" ? "interrupted" : "terminated"}\n`);
  process.exit(code);
}
let forwarded = false;
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);

process.exitCode = await main(process.argv.slice(2));
