// Runs one scenario in a lab of its own, with evidence, under a bound, and turns it into a result.
import { join } from "node:path";
import type { Packet } from "../evidence/capture.js";
import type { TraceEvent } from "../evidence/tracepoints.js";
import { type CreateLabOptions, createLab } from "../lab/create.js";
import { isUnsupportedFault, UnsupportedFaultError } from "../lab/lab.js";
import { type Scenario, ScenarioContext, type ScenarioResult } from "../scenarios/scenario.js";
import { makeDirectory } from "./outputs.js";

/**
 * How much slower than real hardware this machine runs sockprobe's own work: a guest under TCG
 * (SOCKPROBE_SLOWDOWN, set by the VM that runs it) spawns programs and builds labs several times
 * slower, while its timers, and so the kernel behavior the checks time, keep real time. Only the
 * bound on a whole scenario, sockprobe's safety net, is stretched by it; no check's tolerance is.
 */
export function slowdown(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.SOCKPROBE_SLOWDOWN);
  return Number.isFinite(n) && n >= 1 ? n : 1;
}

/** What evidence to keep. */
export interface RunOptions {
  /** Capture packets on every host's switch port into pcap files under this directory. */
  readonly captureDir?: string;
  /** Record TCP state changes from tracepoints (where tracefs is available). */
  readonly trace?: boolean;
  /** Reach host sockets in-process (default) or through an agent in each host. */
  readonly control?: "in-process" | "agent";
  /** The lab's backend (netns by default). */
  readonly backend?: CreateLabOptions["backend"];
  /** The qemu backend's kernel and VM size. */
  readonly qemu?: CreateLabOptions["qemu"];
  /** The vagrant backend's Vagrantfile folder. */
  readonly vagrantDir?: string;
}

/**
 * Runs a scenario; never throws for what the kernel did: failures and errors become the verdict. A
 * scenario needing a fault the backend cannot give is skipped before it runs, with the reason; one
 * that meets UnsupportedFaultError anyway is skipped with that reason too.
 */
export async function runScenario(scenario: Scenario, options: RunOptions = {}): Promise<ScenarioResult> {
  const started = performance.now();
  const lab = await createLab({
    name: scenario.name.slice(0, 15).replace(/-+$/, ""),
    ...(options.control ? { control: options.control } : {}),
    ...(options.backend ? { backend: options.backend } : {}),
    ...(options.qemu ? { qemu: options.qemu } : {}),
    ...(options.vagrantDir ? { vagrantDir: options.vagrantDir } : {}),
  });
  const ctx = new ScenarioContext(lab, scenario, await lab.kernelFacts());
  const unsupported =
    scenario.backends && !scenario.backends.only.includes(lab.backend)
      ? new UnsupportedFaultError(lab.backend, "run", scenario.backends.why)
      : scenario.faults.map((f) => lab.unsupported(f)).find((e) => e !== undefined);
  let skipped: string | undefined;
  let error: Error | undefined;
  let timedOut = false;
  let traceStatus: { available: boolean; reason?: string } = { available: false, reason: "not requested" };
  let packets: Packet[] = [];
  let pcapFiles: string[] = [];
  let states: Array<TraceEvent & { atUs: number }> = [];
  try {
    // Decided before anything runs: a scenario is never run half on a backend without its faults.
    if (unsupported) throw unsupported;
    // Made here, one component at a time: a recursive mkdir spins for ever on a path under /proc.
    if (options.captureDir) await lab.startCapture(makeDirectory(join(options.captureDir, scenario.name)));
    if (options.trace) traceStatus = await lab.startTrace();
    const boundMs = Math.round((lab.boundFor?.(scenario.timeoutMs) ?? scenario.timeoutMs) * slowdown());
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        reject(new Error(`the scenario did not finish within its bound of ${boundMs} ms`));
      }, boundMs);
    });
    try {
      await Promise.race([scenario.run(ctx), bound]);
    } finally {
      clearTimeout(timer);
    }
  } catch (e) {
    if (isUnsupportedFault(e)) skipped = e.message;
    else error = e as Error;
  } finally {
    try {
      if (options.captureDir) ({ packets, files: pcapFiles } = await lab.stopCapture());
      if (options.trace) states = await lab.stopTrace();
    } catch (e) {
      error ??= e as Error;
    }
    await lab.close();
  }
  const failed = ctx.checks.filter((c) => !c.pass);
  const [verdict, reason]: [ScenarioResult["verdict"], string?] = skipped
    ? ["skip", skipped]
    : error
      ? ["error", `${timedOut ? "" : `${error.name}: `}${error.message}`]
      : failed.length > 0
        ? ["fail", failed.map((c) => c.message ?? c.label).join("; ")]
        : ctx.checks.length === 0
          ? ["error", "the scenario made no check"]
          : ["pass"];
  const headline = ctx.checks.filter((c) => c.headline);
  const shown = headline.length > 0 ? headline : ctx.checks.slice(0, 1);
  return {
    name: scenario.name,
    seed: scenario.seed,
    question: scenario.question,
    seedSays: scenario.seedSays,
    ...(scenario.linux ? { linux: scenario.linux } : {}),
    verdict,
    ...(reason ? { reason } : {}),
    expected: shown.map((c) => `${c.label}: ${c.expected}`).join("; "),
    observed: shown.map((c) => `${c.label}: ${c.observed}`).join("; "),
    checks: ctx.checks,
    observations: ctx.observations,
    story: ctx.story,
    durationMs: performance.now() - started,
    hostSysctls: Object.fromEntries(lab.hosts().map((h) => [h.name, h.sysctls])),
    kernelModel: ctx.kernelModel(),
    hosts: lab.hosts().map((h) => ({ name: h.name, ipv4: h.ipv4, ipv6: h.ipv6, mac: h.mac })),
    evidence: {
      transcript: lab.transcript.entries,
      packets,
      states,
      faults: lab.faults,
      pcapFiles,
      trace: traceStatus,
    },
  };
}
