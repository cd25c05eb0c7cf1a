// What a scenario is, and the context it runs in: steps whose expectations sit beside them,
// each check recorded with what was expected and what the kernel did.
import type { Packet } from "../evidence/capture.js";
import type { HostSocket } from "../lab/host.js";
import { type Backend, FAULTS, type Fault, type FaultEvent, type Lab, type StateEvent } from "../lab/lab.js";
import { KERNEL_RULES, type KernelFacts, type RuleId, ruleApplies, ruleText } from "../model/kernel.js";
import { type Expectation, humanMs } from "../model/tcp.js";
import { SysError } from "../sys/errors.js";
import type { TranscriptEntry } from "../sys/transcript.js";

/** One behavior of the kernel, as a question with an expected answer. */
export interface Scenario {
  /** kebab-case, as `sockprobe run NAME` takes it. */
  readonly name: string;
  /** The seed file it comes from, and where in it. */
  readonly seed: string;
  /** The question, in one sentence. */
  readonly question: string;
  /** What the seed reports. */
  readonly seedSays: string;
  /** Where Linux differs from the seed, and why. */
  readonly linux?: string;
  /**
   * The faults it gives (Lab method names): on a backend that cannot give one, the runner skips the
   * scenario with the reason instead of running half of it. A call to a fault not declared here fails.
   */
  readonly faults: readonly Fault[];
  /**
   * The backends it can run on, where not all: what the others cannot give it (`why`) is the
   * reason the runner skips it there.
   */
  readonly backends?: { readonly only: readonly Backend[]; readonly why: string };
  /** A bound on the whole run, derived from the scenario's own sysctls. */
  readonly timeoutMs: number;
  readonly run: (ctx: ScenarioContext) => Promise<void>;
}

/** One judged comparison. */
export interface Check {
  readonly label: string;
  readonly pass: boolean;
  readonly expected: string;
  readonly observed: string;
  /** When the kernel did it, on the lab's clock (µs). */
  readonly atUs?: number;
  /** Shown in the summary table. */
  readonly headline: boolean;
  /** The failure sentence, e.g. "expected ECONNRESET from read on kang, got 0 (EOF) at +1.204 s". */
  readonly message?: string;
  /** For timing checks: the model's value, the measurement and the tolerance, in ms. */
  readonly timing?: { readonly expectedMs: number; readonly observedMs: number; readonly toleranceMs: number };
}

/** A value recorded for comparison across runs and kernels, judged or not. */
export interface Observation {
  readonly value: string | number | boolean;
  readonly unit?: string;
  /** For timings: how far a later run may land from this value before it counts as a change. */
  readonly toleranceMs?: number;
}

/** The result of one call made by a host: its value, or its errno, and when. */
export interface Outcome<T = unknown> {
  readonly host: string;
  readonly call: string;
  /** When the call was made: the kernel acted between this and atUs. */
  readonly startUs: number;
  readonly atUs: number;
  readonly ok: boolean;
  readonly value?: T;
  /** errno name (ECONNRESET) or the error's code. */
  readonly code?: string;
  readonly error?: Error;
}

/** Everything a run produced. */
export interface ScenarioResult {
  readonly name: string;
  readonly seed: string;
  readonly question: string;
  readonly seedSays: string;
  readonly linux?: string;
  readonly verdict: "pass" | "fail" | "error" | "skip";
  readonly reason?: string;
  readonly expected: string;
  readonly observed: string;
  readonly checks: readonly Check[];
  readonly observations: Readonly<Record<string, Observation>>;
  readonly story: readonly string[];
  readonly durationMs: number;
  readonly hostSysctls: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** The lab's hosts, so addresses in packets and states can be named. */
  readonly hosts: ReadonlyArray<{
    readonly name: string;
    readonly ipv4: string;
    readonly ipv6: string;
    readonly mac: string;
  }>;
  /** What the model read of the kernel: the rules it applied (and whether they held) and the values it used. */
  readonly kernelModel: KernelModelUse;
  readonly evidence: {
    readonly transcript: readonly TranscriptEntry[];
    readonly packets: readonly Packet[];
    readonly states: readonly StateEvent[];
    readonly faults: readonly FaultEvent[];
    readonly pcapFiles: readonly string[];
    readonly trace: { readonly available: boolean; readonly reason?: string };
  };
}

/** How an outcome reads in a message: "0 (EOF)", "21", "ECONNRESET". */
export function describeOutcome(o: Outcome): string {
  if (!o.ok) return o.code ?? String(o.error);
  const v = o.value;
  if (Buffer.isBuffer(v)) return v.length === 0 ? "0 (EOF)" : `${v.length} bytes`;
  if (v === undefined) return "ok";
  if (Array.isArray(v)) return v.length ? v.join("|") : "nothing";
  if (typeof v === "object" && v !== null && "outcomes" in v) {
    const names = (v as { outcomes: Array<{ names: string[] }> }).outcomes[0]?.names ?? [];
    return names.length ? names.join("|") : "nothing (timeout)";
  }
  return String(v);
}

/** Whether an expected result names an errno (ECONNRESET) rather than a value. */
export const isErrnoName = (want: string): boolean => /^E[A-Z]+$/.test(want);

const at = (us: number) => `+${(us / 1e6).toFixed(3)} s`;

const FAULT_NAMES: ReadonlySet<string> = new Set(FAULTS);

/**
 * The lab as a scenario sees it: a fault it did not declare rejects with an error naming it, so that
 * what a scenario declares stays what it does, and a backend's skip is decided before the run.
 */
export function declaredFaultsOnly(lab: Lab, scenario: Pick<Scenario, "name" | "faults">): Lab {
  const declared: ReadonlySet<string> = new Set(scenario.faults);
  return new Proxy(lab, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (typeof prop === "string" && FAULT_NAMES.has(prop) && !declared.has(prop)) {
        return () =>
          Promise.reject(
            new Error(
              `scenario ${scenario.name} calls lab.${prop}() without declaring it: add "${prop}" to its faults, so that a backend without it skips the scenario instead of running half of it`,
            ),
          );
      }
      return value.bind(target);
    },
  });
}

/** The kernel rules a scenario's model applied and the kernel-dependent values it used: what the matrix explains differences with. */
export interface KernelModelUse {
  readonly release: string;
  readonly rules: Readonly<Record<string, { readonly applies: boolean | null; readonly text: string }>>;
  readonly values: Readonly<Record<string, string>>;
}

/** The scenario's view of a run. */
export class ScenarioContext {
  readonly checks: Check[] = [];
  readonly observations: Record<string, Observation> = {};
  readonly story: string[] = [];
  /** The lab; given the scenario, only the faults it declares. */
  readonly lab: Lab;
  /** The kernel the scenario runs on; the runner reads it from the lab before the run. */
  kernel: KernelFacts;
  readonly #rules: Record<string, { applies: boolean | null; text: string }> = {};
  readonly #values: Record<string, string> = {};

  constructor(lab: Lab, scenario?: Pick<Scenario, "name" | "faults">, kernel?: KernelFacts) {
    this.lab = scenario ? declaredFaultsOnly(lab, scenario) : lab;
    this.kernel = kernel ?? { release: "unknown", sysctls: new Set(), tracepointFields: new Map() };
  }

  /**
   * Whether a kernel rule holds on this kernel (undefined where it cannot be told), recorded so that
   * reports and the matrix say which rules an expectation came from.
   */
  rule(id: RuleId): boolean | undefined {
    const applies = ruleApplies(KERNEL_RULES[id], this.kernel);
    this.#rules[id] = { applies: applies ?? null, text: ruleText(id) };
    return applies;
  }

  /** A kernel-dependent value the model used (a sysctl's default, a size measured on this kernel), recorded likewise. */
  kernelValue(key: string, value: string | number): void {
    this.#values[key] = String(value);
  }

  /** What the model read of the kernel so far. */
  kernelModel(): KernelModelUse {
    return { release: this.kernel.release, rules: { ...this.#rules }, values: { ...this.#values } };
  }

  /** µs on the lab's clock. */
  now(): number {
    return this.lab.transcript.nowUs();
  }

  /** A line of the story `sockprobe explain` tells. */
  say(text: string): void {
    this.story.push(`${at(this.now())}  ${text}`);
  }

  /** Makes a call and keeps its result or errno, never throwing for a system error. */
  async attempt<T>(host: string, call: string, fn: () => Promise<T>): Promise<Outcome<T>> {
    // The time kept is when the answer came back: what a program would see.
    const startUs = this.now();
    try {
      const value = await fn();
      return { host, call, startUs, atUs: this.now(), ok: true, value };
    } catch (e) {
      const err = e as Error & { code?: string };
      if (!(e instanceof SysError) && err.code === undefined) throw e;
      return { host, call, startUs, atUs: this.now(), ok: false, ...(err.code ? { code: err.code } : {}), error: err };
    }
  }

  #check(c: Omit<Check, "headline"> & { headline?: boolean }): boolean {
    this.checks.push({ ...c, headline: c.headline ?? false });
    return c.pass;
  }

  /** The call failed with `code`. */
  expectErrno(o: Outcome, code: string, opts: { headline?: boolean } = {}): boolean {
    const observed = describeOutcome(o);
    const pass = !o.ok && o.code === code;
    return this.#check({
      label: `${o.call} on ${o.host}`,
      pass,
      expected: code,
      observed,
      atUs: o.atUs,
      ...opts,
      ...(pass ? {} : { message: `expected ${code} from ${o.call} on ${o.host}, got ${observed} at ${at(o.atUs)}` }),
    });
  }

  /** The call succeeded; with `value`, it returned that (a Buffer compares by length, "0 (EOF)" for end of stream). */
  expectOk(o: Outcome, value?: string | number, opts: { headline?: boolean } = {}): boolean {
    const observed = describeOutcome(o);
    const expected = value === undefined ? "success" : String(value);
    const pass = o.ok && (value === undefined || observed === String(value));
    return this.#check({
      label: `${o.call} on ${o.host}`,
      pass,
      expected,
      observed,
      atUs: o.atUs,
      ...opts,
      ...(pass
        ? {}
        : { message: `expected ${expected} from ${o.call} on ${o.host}, got ${observed} at ${at(o.atUs)}` }),
    });
  }

  /** The call gave `want`, as the model's sequences name it: an errno (ECONNRESET), or a value as describeOutcome prints it. */
  expectOutcome(o: Outcome, want: string, opts: { headline?: boolean } = {}): boolean {
    return isErrnoName(want) ? this.expectErrno(o, want, opts) : this.expectOk(o, want, opts);
  }

  /** A value equals what was expected. */
  expectEqual<T extends string | number | boolean>(
    label: string,
    expected: T,
    observed: T,
    opts: { unit?: string; headline?: boolean } = {},
  ): boolean {
    const u = opts.unit ? ` ${opts.unit}` : "";
    const pass = expected === observed;
    return this.#check({
      label,
      pass,
      expected: `${expected}${u}`,
      observed: `${observed}${u}`,
      atUs: this.now(),
      headline: opts.headline ?? false,
      ...(pass ? {} : { message: `expected ${label} to be ${expected}${u}, got ${observed}${u} at ${at(this.now())}` }),
    });
  }

  /** A condition holds; `observed` says what was seen either way. */
  expectThat(
    label: string,
    pass: boolean,
    expected: string,
    observed: string,
    opts: { headline?: boolean } = {},
  ): boolean {
    return this.#check({
      label,
      pass,
      expected,
      observed,
      atUs: this.now(),
      headline: opts.headline ?? false,
      ...(pass ? {} : { message: `expected ${label}: ${expected}, got ${observed} at ${at(this.now())}` }),
    });
  }

  /** A duration lands within the model's tolerance. */
  expectTime(label: string, e: Expectation, observedMs: number, opts: { headline?: boolean } = {}): boolean {
    const pass = Math.abs(observedMs - e.ms) <= e.toleranceMs;
    this.observe(label, Math.round(observedMs), "ms", e.toleranceMs);
    return this.#check({
      label,
      pass,
      expected: `${humanMs(e.ms)} ± ${humanMs(e.toleranceMs)}`,
      observed: humanMs(observedMs),
      atUs: this.now(),
      headline: opts.headline ?? false,
      timing: { expectedMs: e.ms, observedMs, toleranceMs: e.toleranceMs },
      ...(pass
        ? {}
        : {
            message: `expected ${label} after ${humanMs(e.ms)} ± ${humanMs(e.toleranceMs)} (${e.why}), got ${humanMs(observedMs)} at ${at(this.now())}`,
          }),
    });
  }

  /** Records a value for reports and baseline diffs. */
  observe(key: string, value: string | number | boolean, unit?: string, toleranceMs?: number): void {
    this.observations[key] = {
      value,
      ...(unit ? { unit } : {}),
      ...(toleranceMs !== undefined ? { toleranceMs } : {}),
    };
  }

  /**
   * Polls a socket and records the revents names; the wait is bounded. The outcome's time is when
   * poll returned on its waiting thread, so a busy event loop does not delay what the kernel did.
   */
  async pollNames(
    host: string,
    sock: HostSocket,
    events: number,
    timeoutMs: number,
    call = "poll",
  ): Promise<Outcome<string[]>> {
    let doneNs: number | undefined;
    const o = await this.attempt(host, call, async () => {
      const r = await sock.poll(events, timeoutMs);
      doneNs = r.doneNs;
      return r.outcomes[0]?.names ?? [];
    });
    return { ...o, atUs: this.pollDoneUs({ doneNs }, o.atUs) };
  }

  /** When a poll returned on its waiting thread, on the lab's clock; `answeredUs` (or now) if it did not say. */
  pollDoneUs(r: { doneNs?: number | undefined }, answeredUs = this.now()): number {
    return r.doneNs === undefined ? answeredUs : Math.min(answeredUs, this.lab.transcript.usAt(r.doneNs));
  }
}
