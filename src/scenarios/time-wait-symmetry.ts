// TIME_WAIT symmetry: closing the server's end first (2A) or the client's (2B) in a tight loop over
// 127.0.0.1; who keeps the TIME_WAIT, and when the client runs out of ports.
import type { SocketRow } from "../evidence/socket-table.js";
import type { Host, HostSocket } from "../lab/host.js";
import {
  connectWithRangeInTimeWait,
  firstPassPorts,
  portRangeSize,
  QUEUE_DEFAULTS,
  type TwReuseWindow,
  twExhaustion,
  twReuseWindow,
} from "../model/queues.js";
import { humanMs, timeWaitCapacityPerMinute, tolerance } from "../model/tcp.js";
import type { Outcome, Scenario, ScenarioContext } from "./scenario.js";

// The seed's server port.
const PORT = 1234;
// A narrowed ephemeral range (low end even, so the first-pass ports are the even ones): 100 ports, few
// enough that a TCG guest runs every variant within the bound.
const LOW = 40_000;
const HIGH = 40_099;
const PORTS = portRangeSize(LOW, HIGH);
// More iterations than there are ports: a loop that survives them would survive for ever.
const ITERATIONS = 2 * PORTS + 1;
const SMALL_TW_BUCKETS = 50;
// How often a stopped 2B retries its connect while waiting for tcp_tw_reuse_delay.
const RETRY_MS = 10;
// How long a stopped 2B without reuse keeps trying: past any take-over rule.
const NO_REUSE_WAIT_MS = 1500;

type Order = "server-first" | "client-first";

interface Variant {
  readonly name: string;
  readonly host: string;
  readonly order: Order;
  readonly reuse: number;
  /** "lo" connects over 127.0.0.1 as the seed does; "own" over the host's own lab address. */
  readonly via: "lo" | "own";
  readonly maxTwBuckets?: number;
}

const VARIANTS: readonly Variant[] = [
  { name: "2A, tcp_tw_reuse=0", host: "twa", order: "server-first", reuse: 0, via: "lo" },
  { name: "2B, tcp_tw_reuse=0", host: "twb0", order: "client-first", reuse: 0, via: "lo" },
  { name: "2B, tcp_tw_reuse=1", host: "twb1", order: "client-first", reuse: 1, via: "lo" },
  { name: "2B, tcp_tw_reuse=2", host: "twb2", order: "client-first", reuse: 2, via: "lo" },
  { name: "2B, tcp_tw_reuse=2, own address", host: "twb2own", order: "client-first", reuse: 2, via: "own" },
  {
    name: `2B, tcp_max_tw_buckets=${SMALL_TW_BUCKETS}`,
    host: "twcap",
    order: "client-first",
    reuse: 0,
    via: "lo",
    maxTwBuckets: SMALL_TW_BUCKETS,
  },
];

/** One pass of the loop, on the lab's clock (µs). */
interface Iteration {
  /** The connect() call: made, answered. */
  readonly connectStartUs: number;
  readonly connectAtUs: number;
  /** The first close() was made here; the second returned at twUs: the TIME_WAIT was entered (and the FIN stamped) in between. */
  readonly closeFromUs: number;
  readonly twUs: number;
}

/** The seed's loop: connect, accept, two closes in the given order; bounded by ITERATIONS and by each wait. */
async function seedLoop(ctx: ScenarioContext, h: Host, address: string, order: Order) {
  const server = await h.socket();
  await server.setOption("SO_REUSEADDR", 1);
  await server.bind(address, PORT);
  await server.listen(16);
  const iterations: Iteration[] = [];
  let failed: Outcome | undefined;
  const startUs = ctx.now();
  while (iterations.length < ITERATIONS) {
    const c = await h.socket();
    const o = await ctx.attempt(h.name, "connect", () => c.connectAsync(address, PORT, { timeoutMs: 2000 }));
    if (!o.ok) {
      failed = o;
      await c.close();
      break;
    }
    const sc = await server.acceptAsync({ timeoutMs: 2000 });
    const closeFromUs = ctx.now();
    if (order === "server-first") {
      await sc.close();
      await c.close();
    } else {
      await c.close();
      await sc.close();
    }
    // The second close completes the exchange: the first closer's socket is in TIME_WAIT from here.
    iterations.push({ connectStartUs: o.startUs, connectAtUs: o.atUs, closeFromUs, twUs: ctx.now() });
  }
  const done = iterations.length;
  const firstTwUs = iterations[0]?.twUs ?? startUs;
  const rangeUsedUs = iterations[PORTS - 1]?.twUs ?? ctx.now();
  return {
    server,
    done,
    failed,
    iterations,
    firstTwUs,
    rangeUsedMs: (rangeUsedUs - firstTwUs) / 1000,
    loopMs: (ctx.now() - startUs) / 1000,
  };
}

/**
 * Retries connect until the kernel lets it take over a TIME_WAIT, or until a connect() made at
 * untilUs or later was refused too: the retries share the event loop with the next variant's loop,
 * so they stop on what the kernel answered after that moment, never on a clock that ran out while
 * they waited their turn. The last refusal and the take-over, on the lab's clock.
 */
async function retryUntilReuse(ctx: ScenarioContext, h: Host, address: string, untilUs: number) {
  const c: HostSocket = await h.socket();
  const firstTryUs = ctx.now();
  let last: Outcome | undefined;
  // The last refusal, by when its connect() was made: the kernel refused no earlier than that.
  let refusedStartUs: number | undefined;
  for (;;) {
    last = await ctx.attempt(h.name, "connect (retry)", () => c.connectAsync(address, PORT, { timeoutMs: 2000 }));
    if (last.ok) return { takenUs: last.atUs, refusedStartUs, firstTryUs, last };
    if (last.code !== "EADDRNOTAVAIL") break;
    refusedStartUs = last.startUs;
    if (last.startUs >= untilUs) break;
    await new Promise((r) => setTimeout(r, RETRY_MS));
  }
  return { takenUs: undefined, refusedStartUs, firstTryUs, last };
}

export const scenario: Scenario = {
  name: "time-wait-symmetry",
  seed: "004_41db9c39b506eeca.txt (TCP Puzzles, 2: TIME-WAIT symmetry, programs 2A and 2B)",
  question:
    "Looping connect/accept/close over 127.0.0.1, why does closing the server's end first (2A) run for ever while closing the client's first (2B) stops, and what do tcp_tw_reuse and tcp_max_tw_buckets change?",
  seedSays:
    "2A creates an infinite number of short-lived connections; 2B, the same with the two close() calls swapped, quickly hangs rather than exiting with an error. tcp_tw_reuse=1 is suggested as a fix; at tcp_max_tw_buckets=2000 2B works, at 50k it slows down then stops, at 64k it breaks.",
  linux:
    "The first closer keeps the TIME_WAIT. In 2A that is the server's socket (127.0.0.1:1234 to the client's port), which never makes a client port look busy: connect() keeps drawing from the even half of the range (__inet_hash_connect's first pass) and the next SYN from a port with a server-side TIME_WAIT takes it over (tcp_timewait_state_process accepts a SYN with a newer timestamp or sequence), so 2A runs for ever with at most half the range in TIME_WAIT. In 2B the TIME_WAIT sits on the client's port; once every port of the range holds one toward 127.0.0.1:1234, connect() fails at once with EADDRNOTAVAIL (port selection comes before any SYN, so nothing hangs on this kernel). tcp_tw_reuse=1, or 2 (the default: only when an address is loopback, here 127.0.0.1; a host's own address over lo does not count) lets connect() take over a TIME_WAIT, but only one older than tcp_tw_reuse_delay (1000 ms, Linux 6.14+; before, once the 1 Hz monotonic clock has passed the second of its FIN, 0 to 1000 ms by phase); a connect() that finds every port in TIME_WAIT takes over the oldest if it may, so a loop that uses the range faster than that still stops. Beyond tcp_max_tw_buckets a closing socket skips TIME_WAIT altogether, so a small limit keeps 2B going.",
  faults: [],
  // Measured on qemu under TCG: a loop iteration through a guest's agent takes tens of ms, so 2B
  // uses its 100 ports slower than tcp_tw_reuse_delay frees them and never stops.
  backends: {
    only: ["netns"],
    why: "the seed's loop turns on running faster than TIME_WAITs expire or may be taken over (about 1 s); through a VM's agent each call takes milliseconds (tens under TCG), so 2B never exhausts its ports. The loop is one host talking to itself over 127.0.0.1: netns runs it on any kernel (--kernel)",
  },
  timeoutMs: 15_000,
  async run(ctx) {
    const { lab } = ctx;
    // CLOCK_MONOTONIC in ms for a time on the lab's clock: the whole-second rule reads that clock.
    const originMs = Number(lab.transcript.originNs) / 1e6;
    const mono = (us: number) => originMs + us / 1000;
    const labUs = (ms: number) => (ms - originMs) * 1000;
    const results = new Map<string, Awaited<ReturnType<typeof seedLoop>> & { host: Host; address: string }>();
    const tables = new Map<string, { clientSide: SocketRow[]; serverRows: SocketRow[] }>();
    const retries = new Map<string, ReturnType<typeof retryUntilReuse>>();
    // Linux 6.14+ counts the take-over delay in ms (tcp_tw_reuse_delay); before, the 1 Hz clock decides.
    const hasDelay = ctx.rule("tw-reuse-delay-ms") === true;
    let delayMs: number | undefined;
    const windowOf = (v: Variant, it: Iteration) =>
      twReuseWindow({
        reuse: v.reuse,
        loopbackAddress: v.via === "lo",
        delayMs,
        fromMs: mono(it.closeFromUs),
        toMs: mono(it.twUs),
      });
    for (const v of VARIANTS) {
      const h = await lab.addHost(v.host, {
        sysctls: {
          "net.ipv4.ip_local_port_range": `${LOW} ${HIGH}`,
          "net.ipv4.tcp_tw_reuse": v.reuse,
          ...(v.maxTwBuckets !== undefined ? { "net.ipv4.tcp_max_tw_buckets": v.maxTwBuckets } : {}),
        },
      });
      if (hasDelay && delayMs === undefined) delayMs = Number(await h.sysctl("net.ipv4.tcp_tw_reuse_delay"));
      const address = v.via === "lo" ? "127.0.0.1" : h.ipv4;
      const r = await seedLoop(ctx, h, address, v.order);
      results.set(v.name, { ...r, host: h, address });
      // The table now, before a TIME_WAIT expires or is taken over.
      const rows = (await h.sockets()).filter((x) => x.state === "TIME_WAIT");
      const serverRows = rows.filter((x) => x.local.port === PORT);
      const clientSide = rows.filter((x) => x.peer.port === PORT && x.local.port >= LOW && x.local.port <= HIGH);
      tables.set(v.name, { clientSide, serverRows });
      // A stopped loop starts retrying at once, so that the first success dates the reuse: the
      // oldest TIME_WAIT (the one of the connection PORTS back) is the first that may be taken over.
      const oldest = r.iterations[r.done - PORTS];
      if (r.failed && oldest) {
        const w = windowOf(v, oldest);
        // Past the window plus the check's slack a refusal is an answer; without reuse, past NO_REUSE_WAIT_MS.
        const untilUs = Number.isFinite(w.latestMs)
          ? labUs(w.latestMs) + tolerance(w.latestMs - mono(oldest.twUs)) * 1000
          : r.firstTwUs + NO_REUSE_WAIT_MS * 1000;
        retries.set(v.name, retryUntilReuse(ctx, h, address, untilUs));
      }
      ctx.say(
        `${v.name} on ${address}: ${r.done} iterations in ${Math.round(r.loopMs)} ms${r.failed ? `, then connect failed with ${r.failed.code}` : ""}; TIME_WAIT: ${serverRows.length} server side, ${clientSide.length} client side`,
      );
    }
    ctx.kernelValue("tcp_tw_reuse_delay", delayMs ?? "absent: the next whole monotonic second");
    const delayText =
      delayMs === undefined
        ? "the next whole second of the monotonic clock after its FIN (0 to 1000 ms)"
        : `tcp_tw_reuse_delay=${delayMs} ms`;

    const defaultsPorts = portRangeSize(...QUEUE_DEFAULTS.ip_local_port_range);
    const b0 = results.get("2B, tcp_tw_reuse=0");
    const rate = b0 ? Math.round((PORTS * 1000) / Math.max(b0.rangeUsedMs, 1)) : 0;
    ctx.observe("2B loop rate here", rate, "connections/s");
    ctx.observe(
      "2B without reuse, default range: connections per minute (model)",
      timeWaitCapacityPerMinute(...QUEUE_DEFAULTS.ip_local_port_range),
    );
    // Before 6.14 a TIME_WAIT may be taken over once per monotonic second: in the long run, as a 1000 ms delay.
    ctx.observe(
      "2B with tcp_tw_reuse 1 or 2 (loopback), default range and delay: sustainable rate (model)",
      twExhaustion({ ports: defaultsPorts, reuse: true, rangeUsedInMs: 0, delayMs: delayMs ?? 1000 })
        .sustainablePerSecond,
      "connections/s",
    );
    ctx.say(
      `defaults: a range of ${defaultsPorts} ports; without reuse 2B stops after ${defaultsPorts} connections and then manages ${timeWaitCapacityPerMinute(...QUEUE_DEFAULTS.ip_local_port_range)} per minute; with the default tcp_tw_reuse=2 on 127.0.0.1 a connect() that finds every port in TIME_WAIT takes over the oldest once ${delayText} has passed, so 2B stops only if it uses the range before that (this loop ran at ${rate}/s)`,
    );

    // Where the TIME_WAITs are, and how many, before anything expired or was taken over.
    for (const v of VARIANTS) {
      const r = results.get(v.name);
      const t = tables.get(v.name);
      if (!r || !t) continue;
      const serverSide = t.serverRows;
      const clientSide = t.clientSide;
      ctx.observe(`${v.name}: iterations`, r.done);
      ctx.observe(`${v.name}: TIME_WAIT server side`, serverSide.length);
      ctx.observe(`${v.name}: TIME_WAIT client side`, clientSide.length);
      if (v.order === "server-first") {
        ctx.expectEqual(`${v.name}: iterations (more than the ${PORTS} ports)`, ITERATIONS, r.done, { headline: true });
        const half = firstPassPorts(LOW, HIGH);
        ctx.expectThat(
          `${v.name}: TIME_WAITs on the server's side`,
          serverSide.length > 0 &&
            serverSide.length <= half.count &&
            serverSide.every((x) => x.peer.port % 2 === half.parity),
          `1 to ${half.count}, all toward ${half.parity ? "odd" : "even"} client ports (the first-pass half of the range)`,
          `${serverSide.length}, ${serverSide.filter((x) => x.peer.port % 2 === half.parity).length} of them toward ${half.parity ? "odd" : "even"} ports`,
          { headline: true },
        );
        ctx.expectEqual(`${v.name}: TIME_WAITs on the client's side`, 0, clientSide.length);
        continue;
      }
      ctx.expectEqual(`${v.name}: TIME_WAITs on the server's side`, 0, serverSide.length);
      if (v.maxTwBuckets !== undefined && v.maxTwBuckets < PORTS) {
        // Beyond tcp_max_tw_buckets a closing socket skips TIME_WAIT: the range never fills.
        const ex = twExhaustion({
          ports: PORTS,
          reuse: false,
          rangeUsedInMs: r.rangeUsedMs,
          maxTwBuckets: v.maxTwBuckets,
        });
        ctx.expectEqual(`${v.name}: iterations`, ex.ends ? PORTS : ITERATIONS, r.done, { headline: true });
        ctx.expectEqual(`${v.name}: TIME_WAITs on the client's side`, v.maxTwBuckets, clientSide.length, {
          headline: true,
        });
        continue;
      }
      // Every connect() past the range finds each port in TIME_WAIT: it goes on only by taking over
      // the oldest, which the rule allows or not at the moment of the call.
      const judged = judgeLoop(r, (it) => windowOf(v, it), mono);
      ctx.expectThat(`${v.name}: iterations`, judged.pass, judged.expected, judged.observed, { headline: true });
      if (r.failed) ctx.expectEqual(`${v.name}: how the loop ended`, "EADDRNOTAVAIL", r.failed.code ?? "success");
      ctx.expectEqual(`${v.name}: TIME_WAITs on the client's side`, PORTS, clientSide.length, { headline: true });
    }

    // The stopped 2B loops: does connect() ever take over one of its TIME_WAITs, and when?
    for (const v of VARIANTS) {
      const pending = retries.get(v.name);
      const r = results.get(v.name);
      const oldest = r?.iterations[r.done - PORTS];
      if (!pending || !r || !oldest) continue;
      const retry = await pending;
      const w = windowOf(v, oldest);
      if (!Number.isFinite(w.latestMs)) {
        ctx.expectEqual(
          `${v.name}: connect ${NO_REUSE_WAIT_MS} ms after the first TIME_WAIT`,
          "EADDRNOTAVAIL",
          retry.last?.ok ? "success" : (retry.last?.code ?? "not tried"),
          { headline: true },
        );
        continue;
      }
      ctx.expectEqual(`${v.name}: a later connect took over a TIME_WAIT`, true, retry.takenUs !== undefined);
      // The kernel's moment lies between the last refusal's call (the loop's own failed connect if
      // no retry was refused) and the take-over's answer. Never before the window: the answer is not
      // earlier. Not late: no connect() made after the window plus the usual slack was refused. How
      // soon a retry came after the moment is the event loop's business.
      const sinceTw = (us: number) => mono(us) - mono(oldest.twUs);
      const fromMs = w.earliestMs - mono(oldest.twUs);
      const toMs = w.latestMs - mono(oldest.twUs);
      const late = tolerance(toMs);
      const ms = retry.takenUs === undefined ? Number.NaN : sinceTw(retry.takenUs);
      const refused = sinceTw(retry.refusedStartUs ?? r.failed?.startUs ?? Number.NaN);
      ctx.observe(`${v.name}: first reuse after the first TIME_WAIT`, Math.round(ms), "ms", late);
      ctx.observe(`${v.name}: last refused connect() made after the first TIME_WAIT`, Math.round(refused), "ms", late);
      ctx.observe(
        `${v.name}: take-over allowed after the first TIME_WAIT (model)`,
        `${Math.round(fromMs)} to ${Math.round(toMs)}`,
        "ms",
      );
      ctx.expectThat(
        `${v.name}: first reuse after the first TIME_WAIT`,
        ms >= fromMs && refused <= toMs + late,
        `refused until ${humanMs(fromMs)} to ${humanMs(toMs)} (${w.why}) at most ${humanMs(late)} more, taken over from then`,
        `refused at ${humanMs(refused)}, taken over at ${humanMs(ms)}`,
        { headline: true },
      );
    }
  },
};

/**
 * Judges a 2B loop against the take-over rule: connection i past the range (i >= PORTS) finds every
 * port in TIME_WAIT, the oldest being connection i - PORTS's, so it succeeds exactly when that one
 * may be taken over at the moment of the call. The loop must go on through every call the rule
 * allows and stop at the first it refuses; a call made while the moment passes may go either way.
 */
function judgeLoop(
  r: { done: number; iterations: readonly Iteration[]; failed: Outcome | undefined },
  windowOf: (it: Iteration) => TwReuseWindow,
  mono: (us: number) => number,
): { pass: boolean; expected: string; observed: string } {
  const wants: Array<"succeeds" | "fails" | "either"> = [];
  let wrong: string | undefined;
  for (let i = PORTS; i <= r.done && i < ITERATIONS; i++) {
    const call =
      i < r.done
        ? r.iterations[i]
        : r.failed
          ? { connectStartUs: r.failed.startUs, connectAtUs: r.failed.atUs }
          : undefined;
    const oldest = r.iterations[i - PORTS];
    if (!call || !oldest) break;
    const w = windowOf(oldest);
    const want = connectWithRangeInTimeWait(w, { startMs: mono(call.connectStartUs), endMs: mono(call.connectAtUs) });
    wants.push(want);
    const got = i < r.done ? "succeeds" : "fails";
    if (wrong === undefined && want !== "either" && want !== got) {
      const rel = (ms: number) => `${Math.round(ms - mono(oldest.twUs))} ms`;
      wrong = `connect ${i + 1} ${got === "succeeds" ? "succeeded" : "failed"} ${rel(mono(call.connectStartUs))} after the oldest TIME_WAIT, which ${w.why} allows from ${rel(w.earliestMs)} to ${rel(w.latestMs)}`;
    }
  }
  const firstFail = wants.indexOf("fails");
  const firstEither = wants.indexOf("either");
  const expectedEnd = firstFail < 0 ? ITERATIONS : PORTS + firstFail;
  const expected =
    firstEither >= 0 && (firstFail < 0 || firstEither < firstFail)
      ? `${PORTS + firstEither} to ${expectedEnd} (connect ${PORTS + firstEither + 1} came as the oldest TIME_WAIT became reusable)`
      : expectedEnd === ITERATIONS
        ? `${ITERATIONS} (each connect past the ${PORTS} ports took over the oldest TIME_WAIT)`
        : `${expectedEnd} (connect ${expectedEnd + 1} found every port in a TIME_WAIT not yet reusable)`;
  return { pass: wrong === undefined, expected, observed: wrong ? `${r.done}: ${wrong}` : String(r.done) };
}
