// `sockprobe tune --verify`: the sysctls applied to lab hosts, one probe per prediction, each in a
// lab of its own and all in parallel; predicted (src/model/) against measured, with a verdict.
import type { Host, HostSocket } from "../lab/host.js";
import type { Fault } from "../lab/lab.js";
import { SysctlError, writeSysctl } from "../lab/sysctl.js";
import {
  acceptQueueCapacity,
  type Expectation,
  humanMs,
  retransmissionDeath,
  timerChainExpectation,
} from "../model/tcp.js";
import { finWait2Lifetime, keepaliveDeath, keepaliveTimerDelays } from "../model/timers.js";
import { type Progress, runScenarios } from "../runner/run-many.js";
import type { Scenario, ScenarioContext, ScenarioResult } from "../scenarios/scenario.js";
import { kangAndKodos, rowGone, SERVER_PORT, waitForRow } from "../scenarios/steps.js";
import { POLLIN, POLLOUT, POLLRDHUP } from "../sys/constants.js";
import { SysError } from "../sys/errors.js";
import { Netns } from "../sys/socket.js";
import type { Kernel } from "../vm/kernels.js";
import { LAN_RTT_MS, lanRtoMs, synGiveUp, type TuneSettings } from "./model.js";
import { type LineProblem, SysctlFileError } from "./parse.js";

/** One probe's outcome, as the report's plot takes it. */
export interface VerifyRow {
  readonly label: string;
  /** The model's expectation in ms; null for a count (the accept queue: see `predicted`). */
  readonly predictedMs: number | null;
  /** What the kernel did, in ms; null when not run, not reached, or a count. */
  readonly measuredMs: number | null;
  readonly toleranceMs: number | null;
  /** The verdict passed or the probe was skipped (exit 0 allows skips): `verdict` tells which. */
  readonly pass: boolean;
  readonly verdict: "pass" | "fail" | "skip";
  /** The unit of `predicted`, `measured` and `tolerance`. */
  readonly unit: "ms" | "connections";
  readonly predicted: number;
  readonly measured: number | null;
  readonly tolerance: number;
  /** For deaths: the errno the model expects, and the one the kernel gave. */
  readonly expectedErrno?: string;
  readonly observedErrno?: string;
  /** The model's arithmetic behind the prediction. */
  readonly why: string;
  /** Why it was skipped, or what failed. */
  readonly reason?: string;
}

/** How the probes run. */
export interface VerifyOptions {
  /** Applied to every lab host (key to value), checked by checkSysctls() first. */
  readonly sysctls: Readonly<Record<string, string>>;
  /** The settings the predictions use: resolveSettings() of the same values. */
  readonly settings: TuneSettings;
  /** Probes predicted to take longer are skipped. */
  readonly maxSeconds: number;
  /** The listen() backlog of the accept-queue probe. */
  readonly backlog: number;
  /** Also probe a socket with this TCP_USER_TIMEOUT. */
  readonly userTimeoutMs?: number;
  readonly progress?: Progress;
  /** Hosts that are VMs booting this kernel (--backend qemu); netns by default. */
  readonly qemu?: { readonly kernel: Kernel };
}

// The port every probe's server listens on.
const PORT = SERVER_PORT;
// Shorter than the first SYN retransmission (1 s): a connect() that gets no SYN-ACK by then was dropped.
const CONNECT_WAIT_MS = 700;
// Set-up (namespaces, links, handshakes) on a loaded 2-core machine, on top of each probe's own bound.
const SETUP_MS = 15_000;

/** What a probe measured, filled in as it runs. */
interface Measurement {
  expectation?: Expectation;
  measured?: number;
  observedErrno?: string;
}

/** One prediction and the scenario that measures it. */
interface Probe {
  readonly label: string;
  readonly unit: "ms" | "connections";
  /** The prediction before anything is measured (a LAN RTO assumed), for --max-seconds and the bound. */
  readonly planned: Expectation;
  readonly expectedErrno?: string;
  readonly scenario: Scenario;
  readonly record: Measurement;
}

/** Sysctls a lab host can take, and the ones left out with why. */
export interface CheckedSysctls {
  /** Key to value as the kernel read it back. */
  readonly values: Record<string, string>;
  readonly left: ReadonlyArray<{ readonly key: string; readonly line?: number; readonly reason: string }>;
}

// A lab host's only link is eth0; per-link keys of other interfaces have nothing to apply to.
const PER_LINK = /^(net\.ipv[46]\.(?:conf|neigh))\.([^.]+)\.(.+)$/;

/**
 * Writes each sysctl into a throwaway network namespace (never the machine's), to find the values
 * this kernel refuses before any lab is built. Keys a new namespace does not have or may not set
 * (and `-` lines the kernel refuses) are left out with the reason; a refused value is a
 * SysctlFileError naming the line.
 */
export function checkSysctls(
  file: string,
  lines: ReadonlyArray<{ key: string; value: string; line?: number; ignoreErrors?: boolean }>,
): CheckedSysctls {
  const ns = Netns.create();
  const values: Record<string, string> = {};
  const left: Array<{ key: string; line?: number; reason: string }> = [];
  const problems: LineProblem[] = [];
  try {
    for (const l of lines) {
      const at = l.line === undefined ? {} : { line: l.line };
      const link = PER_LINK.exec(l.key);
      if (link && !["all", "default", "lo", "eth0"].includes(link[2] as string)) {
        left.push({ key: l.key, ...at, reason: `no interface ${link[2]} on a lab host (its link is eth0)` });
        continue;
      }
      // eth0 does not exist in the throwaway namespace: its template, `default`, stands in for it.
      const template = link?.[2] === "eth0" ? `${link[1]}.default.${link[3]}` : undefined;
      try {
        const got = writeSysctl(ns, template ?? l.key, l.value);
        values[l.key] = template ? l.value : got;
      } catch (e) {
        if (!(e instanceof SysctlError)) throw e;
        const code = (e.cause as { code?: string } | undefined)?.code;
        if (code === "ENOENT") left.push({ key: l.key, ...at, reason: "a new network namespace has no such key" });
        // tcp_set_default_congestion_control() and others: only the machine's own namespace may.
        else if (code === "EPERM")
          left.push({
            key: l.key,
            ...at,
            reason: `a network namespace other than the machine's may not set ${l.value} (EPERM)`,
          });
        else if (l.ignoreErrors) left.push({ key: l.key, ...at, reason: `the kernel refused ${l.value} (${code})` });
        else
          problems.push({
            line: l.line ?? 0,
            message: `the kernel refused ${l.key} = ${l.value} (${code ?? "error"}); prefix the line with - to skip it`,
          });
      }
    }
  } finally {
    ns.close();
  }
  if (problems.length > 0) throw new SysctlFileError(file, problems);
  return { values, left };
}

// The dead peer's neighbour entry is made permanent on the host that probes it: ARP for it then never
// fails, so only TCP's timers decide (a same-LAN peer's failed ARP ends things sooner, with EHOSTUNREACH).
async function pinNeighbour(host: Host, peer: Host): Promise<void> {
  const p = host.spawn(["ip", "neigh", "replace", peer.ipv4, "lladdr", peer.mac, "dev", "eth0", "nud", "permanent"]);
  const { code } = await p.exited;
  if (code !== 0) throw new Error(`ip neigh replace ${peer.ipv4} on ${host.name} exited with ${code}`);
}

const timersOf = async (s: HostSocket) => {
  const i = await s.tcpInfo();
  return { rtoMs: Number(i.rto) / 1000, srttMs: Number(i.rtt) / 1000 };
};

// Waits (bounded) for the death of kang's connection, reads its error, records both in `record`
// (the time from `fromUs`) and checks them against ETIMEDOUT after `e`.
async function awaitDeath(
  ctx: ScenarioContext,
  sock: HostSocket,
  label: string,
  e: Expectation,
  fromUs: number,
  record: Measurement,
): Promise<void> {
  const woke = await ctx.pollNames("kang", sock, POLLIN | POLLRDHUP, e.ms + e.toleranceMs + 3000);
  const read = await ctx.attempt("kang", "read", () => sock.read(1024));
  record.measured = (woke.atUs - fromUs) / 1000;
  record.observedErrno = read.ok ? `${(read.value as Buffer).length} bytes read` : (read.code ?? "error");
  ctx.expectErrno(read, "ETIMEDOUT", { headline: true });
  ctx.expectTime(label, e, record.measured, { headline: true });
}

// A timed probe: its scenario fills `record` with the expectation it refines and what it measured.
function timedProbe(
  name: string,
  faults: readonly Fault[],
  label: string,
  planned: Expectation,
  expectedErrno: string | undefined,
  run: (ctx: ScenarioContext, record: Measurement) => Promise<void>,
): Probe {
  const record: Measurement = {};
  return {
    label,
    unit: "ms",
    planned,
    ...(expectedErrno ? { expectedErrno } : {}),
    record,
    scenario: scenario(name, faults, label, planned, (ctx) => run(ctx, record)),
  };
}

function scenario(
  name: string,
  faults: readonly Fault[],
  label: string,
  planned: Expectation,
  run: Scenario["run"],
): Scenario {
  return {
    name,
    faults,
    seed: "sockprobe tune --verify",
    question: `Does this kernel give ${label} what the model predicts?`,
    seedSays: `predicted ${humanMs(planned.ms)} ± ${humanMs(planned.toleranceMs)}`,
    timeoutMs: planned.ms + planned.toleranceMs + SETUP_MS,
    run,
  };
}

/** The probes for these settings; each predicts before it runs (LAN RTO) and again from the RTO it measures. */
function planProbes(opts: VerifyOptions): Probe[] {
  const s = opts.settings;
  const sysctls = opts.sysctls;
  const lan = { rtoMs: lanRtoMs(s.rtoMinMs), srttMs: LAN_RTT_MS };
  const probes: Probe[] = [];
  const both = { kang: { sysctls }, kodos: { sysctls } };

  const deathBySending = (userTimeoutMs?: number): Probe => {
    const label = userTimeoutMs
      ? `retransmission death (TCP_USER_TIMEOUT=${userTimeoutMs} ms)`
      : `retransmission death (tcp_retries2=${s.retries2})`;
    const model = (t: { rtoMs: number; srttMs: number }) =>
      retransmissionDeath({
        ...t,
        retries2: s.retries2,
        rtoMaxMs: s.rtoMaxMs,
        ...(userTimeoutMs ? { userTimeoutMs } : {}),
      });
    const plannedDeath = model(lan);
    const planned = timerChainExpectation(plannedDeath.intervals, plannedDeath.why);
    const name = userTimeoutMs ? "tune-usertimeo" : "tune-retrans";
    return timedProbe(name, ["powerOff"], label, planned, "ETIMEDOUT", async (ctx, record) => {
      const { lab } = ctx;
      const { kang, kodos, listener } = await kangAndKodos(lab, both);
      const sock = await kang.connect(kodos.ipv4, PORT);
      await listener.acceptAsync({ timeoutMs: 2000 });
      if (userTimeoutMs) await sock.setOption("TCP_USER_TIMEOUT", userTimeoutMs);
      const timers = await timersOf(sock);
      ctx.observe("RTO before the fault", timers.rtoMs, "ms");
      const d = model(timers);
      const e = timerChainExpectation(d.intervals, d.why);
      record.expectation = e;
      await pinNeighbour(kang, kodos);
      await lab.powerOff(kodos);
      ctx.say("kodos loses power; kang writes one byte");
      const sent = await ctx.attempt("kang", "write", () => sock.write("\n"));
      ctx.expectOk(sent, 1);
      await awaitDeath(ctx, sock, label, e, sent.atUs, record);
      ctx.expectEqual("retransmissions", d.retransmissions, Number((await sock.tcpInfo()).total_retrans));
    });
  };
  probes.push(deathBySending());
  if (opts.userTimeoutMs) probes.push(deathBySending(opts.userTimeoutMs));

  {
    const label = `keepalive death (${s.keepaliveTimeS} s + ${s.keepaliveIntvlS} s × ${s.keepaliveProbes})`;
    const k = keepaliveDeath({ idleS: s.keepaliveTimeS, intvlS: s.keepaliveIntvlS, cnt: s.keepaliveProbes });
    const planned = timerChainExpectation(keepaliveTimerDelays(k), k.why);
    probes.push(
      timedProbe("tune-keepalive", ["powerOff"], label, planned, "ETIMEDOUT", async (ctx, record) => {
        const { lab } = ctx;
        const { kang, kodos, listener } = await kangAndKodos(lab, both);
        // Set before connect(), the keepalive timer is armed when the SYN-ACK arrives: the last segment received.
        const sock = await kang.socket();
        await sock.setOption("SO_KEEPALIVE", 1);
        const conn = await ctx.attempt("kang", "connect", () =>
          sock.connectAsync(kodos.ipv4, PORT, { timeoutMs: 2000 }),
        );
        ctx.expectOk(conn);
        await listener.acceptAsync({ timeoutMs: 2000 });
        await pinNeighbour(kang, kodos);
        await lab.powerOff(kodos);
        ctx.say("kodos loses power; kang's socket stays idle with SO_KEEPALIVE on");
        await awaitDeath(ctx, sock, label, planned, conn.atUs, record);
        ctx.expectEqual("keepalive probes sent", k.probes, Number((await sock.tcpInfo()).probes));
      }),
    );
  }

  {
    const label = `SYN give-up (tcp_syn_retries=${s.synRetries})`;
    const g = synGiveUp({ synRetries: s.synRetries, linearTimeouts: s.synLinearTimeouts, rtoMaxMs: s.rtoMaxMs });
    const planned = timerChainExpectation(g.intervals, g.why);
    probes.push(
      timedProbe("tune-syn", ["powerOff"], label, planned, "ETIMEDOUT", async (ctx, record) => {
        const { lab } = ctx;
        const kang = await lab.addHost("kang", { sysctls });
        const ghost = await lab.addHost("ghost", { sysctls });
        await pinNeighbour(kang, ghost);
        await lab.powerOff(ghost);
        ctx.say("ghost is powered off; kang connects to its address");
        const sock = await kang.socket();
        // connect() as a program makes it, then a poll: the give-up is timed by when poll returned.
        const started = await ctx.attempt("kang", "connect", () => sock.connect(ghost.ipv4, PORT));
        ctx.expectErrno(started, "EINPROGRESS");
        const woke = await ctx.pollNames("kang", sock, POLLOUT, planned.ms + planned.toleranceMs + 3000);
        // The handshake's outcome is its pending error, as a program reads it after POLLOUT.
        const conn = await ctx.attempt("kang", "connect", async () => {
          const err = await sock.takeError();
          if (err !== 0) throw new SysError(err, "connect");
        });
        record.measured = (woke.atUs - started.atUs) / 1000;
        record.observedErrno = conn.ok ? "connected" : (conn.code ?? "error");
        ctx.expectErrno(conn, "ETIMEDOUT", { headline: true });
        ctx.expectTime(label, planned, record.measured, { headline: true });
        ctx.expectEqual("SYN retransmissions", g.retransmissions, Number((await sock.tcpInfo()).total_retrans));
      }),
    );
  }

  {
    const label = `FIN_WAIT2 lifetime (tcp_fin_timeout=${s.finTimeoutS})`;
    const model = (rtoMs: number) => finWait2Lifetime({ finTimeoutS: s.finTimeoutS, rtoMs });
    const l = model(lan.rtoMs);
    const planned = timerChainExpectation(l.timersMs, l.why);
    probes.push(
      timedProbe("tune-finwait2", [], label, planned, undefined, async (ctx, record) => {
        const { lab } = ctx;
        const { kang, kodos, listener } = await kangAndKodos(lab, both);
        const client = await kang.connect(kodos.ipv4, PORT);
        const server = await listener.acceptAsync({ timeoutMs: 2000 });
        const { port } = await client.localAddress();
        const lifetime = model((await timersOf(server)).rtoMs);
        const e = timerChainExpectation(lifetime.timersMs, lifetime.why);
        record.expectation = e;
        const of = (r: { local: { port: number }; peer: { port: number } }) =>
          r.local.port === PORT && r.peer.port === port;
        const startUs = ctx.now();
        const closed = await ctx.attempt("kodos", "close", () => server.close());
        ctx.expectOk(closed);
        ctx.say("kodos closes its socket; kang keeps its end open in CLOSE_WAIT");
        const seenUs = ctx.now();
        const fw2 = await waitForRow(kodos, (r) => of(r) && r.state === "FIN_WAIT2", 1000);
        ctx.expectEqual("kodos's state after close", "FIN_WAIT2", fw2?.state ?? "none");
        // Look often only near the end: ss every 5 ms for a minute would load the machine.
        const gone = await rowGone(kodos, of, e.ms + e.toleranceMs * 2 + 3000, () => ctx.now(), {
          seenUs,
          sparseUntilUs: startUs + (e.ms - e.toleranceMs - 500) * 1000,
        });
        record.measured = (gone.atUs - startUs) / 1000;
        ctx.expectThat("kodos's orphan removed", gone.cleared, "gone", gone.cleared ? "gone" : "still there");
        // The table is read by running ss: the time between two looks widens the tolerance.
        const seen = { ...e, toleranceMs: e.toleranceMs + Math.ceil(gone.uncertaintyUs / 1000) };
        ctx.expectTime(label, seen, record.measured, { headline: true });
        ctx.expectEqual("kang's state", "CLOSE_WAIT", (await client.tcpInfo()).stateName);
      }),
    );
  }

  {
    const capacity = acceptQueueCapacity(opts.backlog, s.somaxconn);
    const label = `accept-queue capacity (backlog ${opts.backlog}, somaxconn ${s.somaxconn})`;
    const why = `min(backlog ${opts.backlog}, net.core.somaxconn ${s.somaxconn}) + 1 = ${capacity} connections complete with nobody calling accept(); the next SYN is dropped`;
    // Not a timing: `planned` carries the count, exact, and a bound on the time it takes.
    const planned: Expectation = { ms: capacity, toleranceMs: 0, why };
    const record: Measurement = {};
    probes.push({
      label,
      unit: "connections",
      planned,
      record,
      scenario: {
        ...scenario("tune-acceptq", [], label, { ms: 0, toleranceMs: 0, why }, async (ctx) => {
          const { lab } = ctx;
          const { kang, kodos } = await kangAndKodos(lab, { ...both, backlog: opts.backlog });
          let completed = 0;
          let refusedInARow = 0;
          for (let i = 0; i < capacity + 2 && refusedInARow < 2; i++) {
            try {
              await kang.connect(kodos.ipv4, PORT, { timeoutMs: CONNECT_WAIT_MS });
              completed++;
              refusedInARow = 0;
            } catch {
              refusedInARow++;
            }
          }
          record.measured = completed;
          ctx.say(`${completed} connect() calls completed within ${CONNECT_WAIT_MS} ms each; nobody accepted`);
          ctx.expectEqual("connections completed", capacity, completed, { headline: true });
          const row = (await kodos.sockets()).find((r) => r.state === "LISTEN" && r.local.port === PORT);
          ctx.expectEqual("accept queue length (ss Recv-Q)", capacity, row?.recvQ ?? -1);
        }),
        seedSays: why,
        timeoutMs: SETUP_MS + capacity * 50 + 2 * CONNECT_WAIT_MS,
      },
    });
  }
  return probes;
}

/** Runs the probes (skipping those predicted past --max-seconds) and returns one row each, in order. */
export async function verifyTuning(opts: VerifyOptions): Promise<VerifyRow[]> {
  const probes = planProbes(opts);
  const tooLong = (p: Probe) => p.unit === "ms" && p.planned.ms > opts.maxSeconds * 1000;
  const run = probes.filter((p) => !tooLong(p));
  const results = await runScenarios(
    run.map((p) => p.scenario),
    {
      trace: false,
      ...(opts.progress ? { progress: opts.progress } : {}),
      // VM labs share two cores under TCG: one probe at a time.
      ...(opts.qemu ? { backend: "qemu" as const, qemu: opts.qemu, jobs: 1 } : {}),
    },
  );
  const byProbe = new Map<Probe, ScenarioResult>(run.map((p, i) => [p, results[i] as ScenarioResult]));
  return probes.map((p) => rowOf(p, byProbe.get(p), opts.maxSeconds));
}

function rowOf(p: Probe, r: ScenarioResult | undefined, maxSeconds: number): VerifyRow {
  const timing = p.unit === "ms";
  const e = p.record.expectation ?? p.planned;
  const measured = r && p.record.measured !== undefined ? Math.round(p.record.measured * 1000) / 1000 : null;
  // A probe the backend cannot give (its runner skipped it) is a skip with the runner's reason.
  const verdict = !r || r.verdict === "skip" ? "skip" : r.verdict === "pass" ? "pass" : "fail";
  const reason = !r
    ? `predicted ${humanMs(e.ms)} exceeds --max-seconds ${maxSeconds}: not run (raise --max-seconds to wait for it)`
    : verdict !== "pass"
      ? (r.reason ?? r.verdict)
      : undefined;
  // The plot's fields first, then the same in the probe's own unit, then the evidence.
  return {
    label: p.label,
    predictedMs: timing ? e.ms : null,
    measuredMs: timing ? measured : null,
    toleranceMs: timing ? e.toleranceMs : null,
    pass: verdict !== "fail",
    verdict,
    unit: p.unit,
    predicted: e.ms,
    measured,
    tolerance: e.toleranceMs,
    ...(p.expectedErrno ? { expectedErrno: p.expectedErrno } : {}),
    ...(r && p.record.observedErrno ? { observedErrno: p.record.observedErrno } : {}),
    why: e.why,
    ...(reason ? { reason } : {}),
  };
}
