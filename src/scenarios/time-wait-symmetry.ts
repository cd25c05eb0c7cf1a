// TIME_WAIT symmetry: closing the server's end first (2A) or the client's (2B) in a tight loop over
// 127.0.0.1; who keeps the TIME_WAIT, and when the client runs out of ports.
import type { SocketRow } from "../evidence/socket-table.js";
import type { Host, HostSocket } from "../lab/host.js";
import { firstPassPorts, portRangeSize, QUEUE_DEFAULTS, twExhaustion, twReuse } from "../model/queues.js";
import { humanMs, timeWaitCapacityPerMinute, tolerance } from "../model/tcp.js";
import type { Outcome, Scenario, ScenarioContext } from "./scenario.js";

// The seed's server port.
const PORT = 1234;
// A narrowed ephemeral range (low end even, so the first-pass ports are the even ones): 300 ports.
const LOW = 40_000;
const HIGH = 40_299;
const PORTS = portRangeSize(LOW, HIGH);
// More iterations than there are ports: a loop that survives them would survive for ever.
const ITERATIONS = 2 * PORTS + 1;
const SMALL_TW_BUCKETS = 100;
// How often a stopped 2B retries its connect while waiting for tcp_tw_reuse_delay.
const RETRY_MS = 10;
const REUSE_DELAY_MS = QUEUE_DEFAULTS.tcp_tw_reuse_delay;

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

/** The seed's loop: connect, accept, two closes in the given order; bounded by ITERATIONS and by each wait. */
async function seedLoop(ctx: ScenarioContext, h: Host, address: string, order: Order) {
  const server = await h.socket();
  await server.setOption("SO_REUSEADDR", 1);
  await server.bind(address, PORT);
  await server.listen(16);
  let done = 0;
  let firstTwUs = 0;
  let rangeUsedUs = 0;
  let failed: Outcome | undefined;
  const startUs = ctx.now();
  for (; done < ITERATIONS; done++) {
    const c = await h.socket();
    const o = await ctx.attempt(h.name, "connect", () => c.connectAsync(address, PORT, { timeoutMs: 2000 }));
    if (!o.ok) {
      failed = o;
      await c.close();
      break;
    }
    const sc = await server.acceptAsync({ timeoutMs: 2000 });
    if (order === "server-first") {
      await sc.close();
      await c.close();
    } else {
      await c.close();
      await sc.close();
    }
    // The second close completes the exchange: the first closer's socket is in TIME_WAIT from here.
    if (done === 0) firstTwUs = ctx.now();
    if (done === PORTS - 1) rangeUsedUs = ctx.now();
  }
  return {
    server,
    done,
    failed,
    firstTwUs,
    rangeUsedMs: (rangeUsedUs - firstTwUs) / 1000,
    loopMs: (ctx.now() - startUs) / 1000,
  };
}

/** Retries connect until the kernel lets it take over a TIME_WAIT, up to boundMs after the first one; ms since it, or undefined. */
async function retryUntilReuse(ctx: ScenarioContext, h: Host, address: string, firstTwUs: number, boundMs: number) {
  const c: HostSocket = await h.socket();
  const deadline = firstTwUs + boundMs * 1000;
  const firstTryMs = (ctx.now() - firstTwUs) / 1000;
  const sinceTw = (us: number) => (us - firstTwUs) / 1000;
  let last: Outcome | undefined;
  // The last refusal, by when its connect() was made: the kernel refused no earlier than that.
  let refusedStartMs: number | undefined;
  while (ctx.now() < deadline) {
    last = await ctx.attempt(h.name, "connect (retry)", () => c.connectAsync(address, PORT, { timeoutMs: 2000 }));
    if (last.ok) return { ms: sinceTw(last.atUs), refusedStartMs, firstTryMs, last };
    if (last.code !== "EADDRNOTAVAIL") break;
    refusedStartMs = sinceTw(last.startUs);
    await new Promise((r) => setTimeout(r, RETRY_MS));
  }
  return { ms: undefined, refusedStartMs, firstTryMs, last };
}

export const scenario: Scenario = {
  name: "time-wait-symmetry",
  seed: "004_41db9c39b506eeca.txt (TCP Puzzles, 2: TIME-WAIT symmetry, programs 2A and 2B)",
  question:
    "Looping connect/accept/close over 127.0.0.1, why does closing the server's end first (2A) run for ever while closing the client's first (2B) stops, and what do tcp_tw_reuse and tcp_max_tw_buckets change?",
  seedSays:
    "2A creates an infinite number of short-lived connections; 2B, the same with the two close() calls swapped, quickly hangs rather than exiting with an error. tcp_tw_reuse=1 is suggested as a fix; at tcp_max_tw_buckets=2000 2B works, at 50k it slows down then stops, at 64k it breaks.",
  linux:
    "The first closer keeps the TIME_WAIT. In 2A that is the server's socket (127.0.0.1:1234 to the client's port), which never makes a client port look busy: connect() keeps drawing from the even half of the range (__inet_hash_connect's first pass) and the next SYN from a port with a server-side TIME_WAIT takes it over (tcp_timewait_state_process accepts a SYN with a newer timestamp or sequence), so 2A runs for ever with at most half the range in TIME_WAIT. In 2B the TIME_WAIT sits on the client's port; once every port of the range holds one toward 127.0.0.1:1234, connect() fails at once with EADDRNOTAVAIL (port selection comes before any SYN, so nothing hangs on this kernel). tcp_tw_reuse=1, or 2 (the default: only when an address is loopback, here 127.0.0.1; a host's own address over lo does not count) lets connect() take over a TIME_WAIT, but only one older than tcp_tw_reuse_delay (1000 ms, Linux 6.13+); a loop that uses the range faster still stops. Beyond tcp_max_tw_buckets a closing socket skips TIME_WAIT altogether, so a small limit keeps 2B going.",
  faults: [],
  timeoutMs: 15_000,
  async run(ctx) {
    const { lab } = ctx;
    const results = new Map<string, Awaited<ReturnType<typeof seedLoop>> & { host: Host; address: string }>();
    const tables = new Map<string, { clientSide: SocketRow[]; serverRows: SocketRow[] }>();
    const retries = new Map<string, ReturnType<typeof retryUntilReuse>>();
    for (const v of VARIANTS) {
      const h = await lab.addHost(v.host, {
        sysctls: {
          "net.ipv4.ip_local_port_range": `${LOW} ${HIGH}`,
          "net.ipv4.tcp_tw_reuse": v.reuse,
          ...(v.maxTwBuckets !== undefined ? { "net.ipv4.tcp_max_tw_buckets": v.maxTwBuckets } : {}),
        },
      });
      const address = v.via === "lo" ? "127.0.0.1" : h.ipv4;
      const r = await seedLoop(ctx, h, address, v.order);
      results.set(v.name, { ...r, host: h, address });
      // The table now, before a TIME_WAIT expires or is taken over.
      const rows = (await h.sockets()).filter((x) => x.state === "TIME_WAIT");
      const serverRows = rows.filter((x) => x.local.port === PORT);
      const clientSide = rows.filter((x) => x.peer.port === PORT && x.local.port >= LOW && x.local.port <= HIGH);
      tables.set(v.name, { clientSide, serverRows });
      // A stopped loop starts retrying at once, so that the first success dates the reuse.
      if (r.failed) retries.set(v.name, retryUntilReuse(ctx, h, address, r.firstTwUs, REUSE_DELAY_MS + 500));
      ctx.say(
        `${v.name} on ${address}: ${r.done} iterations in ${Math.round(r.loopMs)} ms${r.failed ? `, then connect failed with ${r.failed.code}` : ""}; TIME_WAIT: ${serverRows.length} server side, ${clientSide.length} client side`,
      );
    }

    const defaultsPorts = portRangeSize(...QUEUE_DEFAULTS.ip_local_port_range);
    const b0 = results.get("2B, tcp_tw_reuse=0");
    const rate = b0 ? Math.round((PORTS * 1000) / Math.max(b0.rangeUsedMs, 1)) : 0;
    ctx.observe("2B loop rate here", rate, "connections/s");
    ctx.observe(
      "2B without reuse, default range: connections per minute (model)",
      timeWaitCapacityPerMinute(...QUEUE_DEFAULTS.ip_local_port_range),
    );
    ctx.observe(
      "2B with tcp_tw_reuse 1 or 2 (loopback), default range and delay: sustainable rate (model)",
      twExhaustion({ ports: defaultsPorts, reuse: true, rangeUsedInMs: 0 }).sustainablePerSecond,
      "connections/s",
    );
    ctx.say(
      `defaults: a range of ${defaultsPorts} ports; without reuse 2B stops after ${defaultsPorts} connections and then manages ${timeWaitCapacityPerMinute(...QUEUE_DEFAULTS.ip_local_port_range)} per minute; with the default tcp_tw_reuse=2 on 127.0.0.1 it stops only if it runs faster than ${defaultsPorts} connections per ${REUSE_DELAY_MS} ms (this loop ran at ${rate}/s)`,
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
      const ex = twExhaustion({
        ports: PORTS,
        reuse: twReuse(v.reuse, v.via === "lo", REUSE_DELAY_MS).applies,
        rangeUsedInMs: r.rangeUsedMs,
        ...(v.maxTwBuckets !== undefined ? { maxTwBuckets: v.maxTwBuckets } : {}),
      });
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
      if (ex.ends) {
        ctx.expectEqual(`${v.name}: iterations before connect failed`, ex.afterConnections ?? -1, r.done, {
          headline: true,
        });
        ctx.expectEqual(`${v.name}: how the loop ended`, "EADDRNOTAVAIL", r.failed?.code ?? "it did not end");
        ctx.expectEqual(`${v.name}: TIME_WAITs on the client's side`, PORTS, clientSide.length, { headline: true });
      } else {
        ctx.expectEqual(`${v.name}: iterations`, ITERATIONS, r.done, { headline: true });
        ctx.expectEqual(
          `${v.name}: TIME_WAITs on the client's side`,
          Math.min(v.maxTwBuckets ?? PORTS, PORTS),
          clientSide.length,
          { headline: true },
        );
      }
    }

    // The stopped 2B loops: does connect() ever take over one of its TIME_WAITs, and when?
    for (const v of VARIANTS) {
      const pending = retries.get(v.name);
      if (!pending) continue;
      const retry = await pending;
      const reuse = twReuse(v.reuse, v.via === "lo", REUSE_DELAY_MS);
      if (reuse.applies) {
        ctx.expectThat(
          `${v.name}: retries began before the delay ran out`,
          retry.firstTryMs < reuse.afterMs,
          `before ${reuse.afterMs} ms`,
          `${Math.round(retry.firstTryMs)} ms`,
        );
        ctx.expectEqual(`${v.name}: a later connect took over a TIME_WAIT`, true, retry.ms !== undefined);
        // The kernel's moment lies between the last refusal's call and the take-over's answer. Never
        // before the delay: the answer is not earlier (the kernel compares millisecond stamps, so at
        // most 1 ms early as we see it). Not late: no connect() made after the delay plus the usual
        // slack was refused. How soon the retry came after the delay is the event loop's business.
        const late = tolerance(reuse.afterMs);
        const ms = retry.ms ?? Number.NaN;
        const refused = retry.refusedStartMs ?? Number.NaN;
        ctx.observe(`${v.name}: first reuse after the first TIME_WAIT`, Math.round(ms), "ms", late);
        ctx.observe(
          `${v.name}: last refused connect() made after the first TIME_WAIT`,
          Math.round(refused),
          "ms",
          late,
        );
        ctx.expectThat(
          `${v.name}: first reuse after the first TIME_WAIT`,
          ms >= reuse.afterMs - 1 && refused <= reuse.afterMs + late,
          `refused until ${humanMs(reuse.afterMs)} (tcp_tw_reuse_delay) at most ${humanMs(late)} more, taken over from then`,
          `refused at ${humanMs(refused)}, taken over at ${humanMs(ms)}`,
          { headline: true },
        );
      } else {
        ctx.expectEqual(
          `${v.name}: connect ${REUSE_DELAY_MS + 500} ms after the first TIME_WAIT`,
          "EADDRNOTAVAIL",
          retry.last?.ok ? "success" : (retry.last?.code ?? "not tried"),
          { headline: true },
        );
      }
    }
  },
};
