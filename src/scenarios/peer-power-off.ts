// Peer power off: the write succeeds, retransmissions follow, and the connection dies when the
// model says: by tcp_retries2, or by TCP_USER_TIMEOUT; with EHOSTUNREACH where ARP fails first.

import type { HostSocket } from "../lab/host.js";
import { DEFAULTS, deathTaken, humanMs, retransmissionDeath, timerChainExpectation, tolerance } from "../model/tcp.js";
import { POLLIN, POLLRDHUP } from "../sys/constants.js";
import type { Scenario, ScenarioContext } from "./scenario.js";
import { SERVER_PORT, tcpTimers } from "./steps.js";

const RETRIES2 = 3;
const USER_TIMEOUT_MS = 1500;
// Neighbour timers (per link: a new namespace has no neigh.default) short enough that ARP for the dead peer fails long before retries2 runs out.
const FAST_NEIGH = {
  "net.ipv4.neigh.eth0.base_reachable_time_ms": 500,
  "net.ipv4.neigh.eth0.delay_first_probe_time": 1,
  "net.ipv4.neigh.eth0.retrans_time_ms": 100,
  "net.ipv4.neigh.eth0.ucast_solicit": 2,
  "net.ipv4.neigh.eth0.mcast_solicit": 1,
};

// Writes one byte (the seed's "\n") into silence and waits for the connection's death, bounded.
async function sendIntoSilence(ctx: ScenarioContext, host: string, sock: HostSocket, boundMs: number) {
  const sent = await ctx.attempt(host, "write", () => sock.write("\n"));
  ctx.expectOk(sent, 1);
  const woke = await ctx.pollNames(host, sock, POLLIN | POLLRDHUP, boundMs);
  const read = await ctx.attempt(host, "read", () => sock.read(1024));
  const retrans = Number((await sock.tcpInfo()).total_retrans);
  return { sentAt: sent.atUs, woke, read, retrans };
}

export const scenario: Scenario = {
  name: "peer-power-off",
  seed: "000_c3942d4e008b9feb.txt (puzzler 2: power off)",
  question: "When the peer is powered off, after how long does a read fail, and with which errno?",
  seedSays:
    "The write succeeds; nothing happens for just over 5 minutes (illumos's limit); then read fails with ETIMEDOUT. Only a side that sends ever finds out.",
  linux:
    "Linux gives up when the time since the first unacknowledged transmission reaches tcp_retries2 turned into time (200 ms base, doubling, 924.6 s with the default 15), checked each time the RTO fires; TCP_USER_TIMEOUT replaces that limit. If ARP for a same-subnet peer fails first, the error is the soft error EHOSTUNREACH instead of ETIMEDOUT.",
  faults: ["powerOff"],
  timeoutMs: 20_000,
  async run(ctx) {
    const { lab } = ctx;
    // Booted together: a VM backend's boots then overlap.
    const [kang, amy, kodos, kif] = await Promise.all([
      lab.addHost("kang", { sysctls: { "net.ipv4.tcp_retries2": RETRIES2 } }),
      lab.addHost("amy", { sysctls: { "net.ipv4.tcp_retries2": RETRIES2, ...FAST_NEIGH } }),
      lab.addHost("kodos"),
      lab.addHost("kif"),
    ]);
    const toKodos = await kodos.listen(SERVER_PORT);
    const toKif = await kif.listen(SERVER_PORT);
    const a = await kang.connect(kodos.ipv4, SERVER_PORT);
    const b = await kang.connect(kif.ipv4, SERVER_PORT);
    const c = await amy.connect(kodos.ipv4, SERVER_PORT);
    for (let i = 0; i < 3; i++) await (i === 1 ? toKif : toKodos).acceptAsync({ timeoutMs: 2000 });
    await b.setOption("TCP_USER_TIMEOUT", USER_TIMEOUT_MS);
    const ta = await tcpTimers(a);
    const tb = await tcpTimers(b);
    const tc = await tcpTimers(c);
    ctx.observe("RTO before the fault", ta.rtoMs, "ms");

    const byRetries = retransmissionDeath({ ...ta, retries2: RETRIES2 });
    const byUser = retransmissionDeath({ ...tb, retries2: RETRIES2, userTimeoutMs: USER_TIMEOUT_MS });
    const byRetriesAmy = retransmissionDeath({ ...tc, retries2: RETRIES2 });
    const byDefaults = retransmissionDeath({ ...ta, retries2: DEFAULTS.tcp_retries2 });
    ctx.observe("death with default sysctls (model)", Math.round(byDefaults.deathMs), "ms");
    ctx.say(
      `with the default tcp_retries2=15 this would take ${humanMs(byDefaults.deathMs)} (${byDefaults.retransmissions} retransmissions)`,
    );

    await lab.powerOff(kodos);
    await lab.powerOff(kif);
    ctx.say("kodos and kif lose power; kang and amy each write a byte");
    const bound = byRetries.deathMs + 3000;
    const [ra, rb, rc] = await Promise.all([
      sendIntoSilence(ctx, "kang", a, bound),
      sendIntoSilence(ctx, "kang", b, bound),
      sendIntoSilence(ctx, "amy", c, bound),
    ]);

    ctx.expectErrno(ra.read, "ETIMEDOUT", { headline: true });
    // Where a firing falls within the timer wheel's rounding of the limit, either it or the next one
    // gives up: the retransmissions tell which, and the time is checked against that one.
    const taken = deathTaken(byRetries, ra.retrans);
    ctx.expectTime(
      "death by tcp_retries2=3",
      timerChainExpectation(taken.intervals, taken.why),
      (ra.woke.atUs - ra.sentAt) / 1000,
      { headline: true },
    );
    ctx.expectThat(
      "retransmissions before giving up (retries2)",
      ra.retrans === byRetries.retransmissions || ra.retrans === byRetries.early?.retransmissions,
      byRetries.early
        ? `${byRetries.retransmissions}, or ${byRetries.early.retransmissions} where the timer wheel's rounding takes the firing at ${Math.round(byRetries.early.deathMs)} ms past the limit`
        : String(byRetries.retransmissions),
      String(ra.retrans),
    );
    // Both limits count from the first RTO retransmission, which each connection's own RTT places.
    const afterStart = (r: { woke: { atUs: number }; sentAt: number }, startMs: number) =>
      Math.round((r.woke.atUs - r.sentAt) / 1000 - startMs);
    ctx.observe("error after the first RTO retransmission (tcp_retries2=3)", afterStart(ra, byRetries.startMs), "ms");

    ctx.expectErrno(rb.read, "ETIMEDOUT");
    ctx.expectTime(
      `death by TCP_USER_TIMEOUT=${USER_TIMEOUT_MS}`,
      timerChainExpectation(byUser.intervals, byUser.why),
      (rb.woke.atUs - rb.sentAt) / 1000,
      { headline: true },
    );
    ctx.observe(
      `error after the first RTO retransmission (TCP_USER_TIMEOUT=${USER_TIMEOUT_MS})`,
      afterStart(rb, byUser.startMs),
      "ms",
    );

    // ARP failure comes back as an ICMP host unreachable, which reverts the RTO backoff (RFC 6069):
    // the timers then fire closer together, so the error comes between the limit and the unreverted schedule.
    ctx.expectErrno(rc.read, "EHOSTUNREACH", { headline: true });
    const amyMs = (rc.woke.atUs - rc.sentAt) / 1000;
    const earliest = byRetriesAmy.startMs + byRetriesAmy.limitMs;
    const latest = timerChainExpectation(byRetriesAmy.intervals, byRetriesAmy.why);
    ctx.observe("death with ARP failed", Math.round(amyMs), "ms", latest.toleranceMs);
    ctx.expectThat(
      "death with ARP failed",
      amyMs >= earliest - tolerance(earliest) && amyMs <= latest.ms + latest.toleranceMs,
      `between ${humanMs(earliest)} (start + limit) and ${humanMs(latest.ms + latest.toleranceMs)} (no backoff revert)`,
      humanMs(amyMs),
    );
    ctx.expectErrno(await ctx.attempt("kang", "write", () => a.write("again")), "EPIPE");
  },
};
