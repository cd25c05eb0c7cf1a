// Keepalive against a powered-off peer: idle + intvl x cnt on an idle socket, the retransmission rules on a busy one,
// and TCP_USER_TIMEOUT taking over from TCP_KEEPCNT.
import type { HostSocket } from "../lab/host.js";
import { sendResetText, sendResetTrace } from "../model/close.js";
import {
  DEFAULTS,
  deathTaken,
  humanMs,
  retransmissionDeath,
  TCP_RTO_MIN_MS,
  timerChainExpectation,
  tolerance,
  wheelGranularityMs,
} from "../model/tcp.js";
import { type KeepaliveDeath, keepaliveDeath, keepaliveTimerDelays } from "../model/timers.js";
import { POLLIN, POLLRDHUP } from "../sys/constants.js";
import type { Scenario, ScenarioContext } from "./scenario.js";
import { connection, kangAndKodos, stateChanges, tcpTimers } from "./steps.js";

const IDLE_S = 1;
const INTVL_S = 1;
const CNT = 3;
// Below the first probe's time: the kernel still waits for one probe to be out.
const USER_TIMEOUT_SHORT_MS = 500;
// Beyond idle + intvl x cnt: probing goes on past TCP_KEEPCNT.
const USER_TIMEOUT_LONG_MS = 5500;
// How long a power-off may take to return, on top of each death's bound: virsh destroy and
// VBoxManage poweroff take seconds; a namespace or a QEMU quit, milliseconds.
const POWER_OFF_ALLOWANCE_MS = 10_000;
// For the busy socket: its death follows tcp_retries2, which must differ from the keepalive sum.
const RETRIES2 = 3;

// Every keepalive socket gets the same per-socket settings.
async function enableKeepalive(sock: HostSocket): Promise<void> {
  await sock.setOption("SO_KEEPALIVE", 1);
  await sock.setOption("TCP_KEEPIDLE", IDLE_S);
  await sock.setOption("TCP_KEEPINTVL", INTVL_S);
  await sock.setOption("TCP_KEEPCNT", CNT);
}

// Waits (bounded) for the connection's death, samples its keepalive probes meanwhile, then reads the error.
async function awaitDeath(ctx: ScenarioContext, label: string, sock: HostSocket, boundMs: number) {
  const { address, port } = await sock.localAddress();
  const woke = ctx.pollNames("kang", sock, POLLIN | POLLRDHUP, boundMs, `poll (${label})`);
  const samples = await ctx.lab.sampleTcpInfo(sock, { intervalMs: 50, until: woke });
  const w = await woke;
  const read = await ctx.attempt("kang", `read (${label})`, () => sock.read(1024));
  const info = await sock.tcpInfo();
  // The trace is read at once: its ring buffer is shared with every lab on the machine.
  const states = await stateChanges(ctx.lab);
  const resets = states.events.filter((e) => e.event === "tcp_send_reset" && e.saddr === address && e.sport === port);
  // Probes the peer answered before it lost power come and go: count from `fromUs` (the power-off) on.
  const probesSince = (fromUs: number) =>
    Math.max(0, ...samples.filter((s) => s.atUs >= fromUs).map((s) => Number(s.info.probes)));
  return { woke: w, read, info, probesSince, traced: states.available, resets };
}

export const scenario: Scenario = {
  name: "keepalive",
  seed: "000_c3942d4e008b9feb.txt (conclusions: keep-alive) and 003_4cf9e29935512145.txt (what constitutes readable; improving reliability with a broken connection)",
  question:
    "How long does TCP keepalive take to find a powered-off peer, with which errno, and what changes when data is in flight or TCP_USER_TIMEOUT is set?",
  seedSays:
    "Seed 000: an idle side never learns that its peer is gone unless it sends; keep-alive (TCP or application) is how to manage it, and a KeepAlive probe left unacknowledged too long ends in ETIMEDOUT. Seed 003: without keepalive, waiting for data can hang for ever when the network breaks; even with it, detection takes hours by default (7200 s), unless the timers are set per socket or by sysctl.",
  linux:
    "tcp_keepalive_timer fires TCP_KEEPIDLE after the last segment received, then every TCP_KEEPINTVL; with TCP_KEEPCNT probes unanswered it sends an RST and reports ETIMEDOUT: idle + intvl x cnt. With data in flight (packets_out) or queued it only re-arms itself, so a busy socket dies by retransmission (tcp_retries2 or TCP_USER_TIMEOUT) and sends no probe. With TCP_USER_TIMEOUT set, TCP_KEEPCNT is ignored: a firing gives up once the time since the last segment received has reached the user timeout and at least one probe is out, so a short user timeout still waits for one probe and a long one keeps probing past TCP_KEEPCNT. Each firing lands up to one timer wheel granularity late (32 ms for 1 s at HZ=250).",
  faults: ["powerOff"],
  timeoutMs:
    Math.max(
      keepaliveDeath({ idleS: IDLE_S, intvlS: INTVL_S, cnt: CNT, userTimeoutMs: USER_TIMEOUT_LONG_MS }).deathMs,
      retransmissionDeath({ rtoMs: TCP_RTO_MIN_MS, retries2: RETRIES2 }).deathMs,
    ) +
    10_000 +
    POWER_OFF_ALLOWANCE_MS,
  async run(ctx) {
    const { lab } = ctx;
    const { kang, kodos, listener } = await kangAndKodos(lab, {
      kang: { sysctls: { "net.ipv4.tcp_retries2": RETRIES2 } },
    });
    const open = async () => (await connection(kang, kodos, listener)).client;
    const idle = await open();
    const busy = await open();
    const userShort = await open();
    const userLong = await open();
    const bare = await open();
    for (const s of [idle, busy, userShort, userLong]) await enableKeepalive(s);
    await userShort.setOption("TCP_USER_TIMEOUT", USER_TIMEOUT_SHORT_MS);
    await userLong.setOption("TCP_USER_TIMEOUT", USER_TIMEOUT_LONG_MS);
    ctx.expectEqual("TCP_KEEPCNT read back", CNT, await idle.getOption("TCP_KEEPCNT"));

    const byKeepalive = keepaliveDeath({ idleS: IDLE_S, intvlS: INTVL_S, cnt: CNT });
    const byUserShort = keepaliveDeath({
      idleS: IDLE_S,
      intvlS: INTVL_S,
      cnt: CNT,
      userTimeoutMs: USER_TIMEOUT_SHORT_MS,
    });
    const byUserLong = keepaliveDeath({
      idleS: IDLE_S,
      intvlS: INTVL_S,
      cnt: CNT,
      userTimeoutMs: USER_TIMEOUT_LONG_MS,
    });
    const byDefaults = keepaliveDeath({
      idleS: DEFAULTS.tcp_keepalive_time,
      intvlS: DEFAULTS.tcp_keepalive_intvl,
      cnt: DEFAULTS.tcp_keepalive_probes,
    });
    ctx.observe("keepalive death with default sysctls (model)", byDefaults.deathMs, "ms");
    ctx.say(
      `with the defaults (${DEFAULTS.tcp_keepalive_time} s + ${DEFAULTS.tcp_keepalive_intvl} s x ${DEFAULTS.tcp_keepalive_probes}) a dead idle peer is found after ${humanMs(byDefaults.deathMs)}; without SO_KEEPALIVE, never`,
    );
    const byRetries = retransmissionDeath({ ...(await tcpTimers(busy)), retries2: RETRIES2 });

    // Keepalive counts from the last segment received (tcp_rcv_tstamp / lrcvtime), as TCP_INFO reports it.
    const lastHeard = async (s: HostSocket) => {
      const i = await s.tcpInfo();
      return ctx.now() - 1000 * Math.min(Number(i.last_ack_recv), Number(i.last_data_recv));
    };
    // Watch from before the power-off: a provider's takes seconds (virsh destroy under TCG, about 2 s),
    // long enough for the short user timeout to fire before it returns; a poll begun after would time
    // its own start.
    const bound = (deathMs: number) => deathMs + 3000 + POWER_OFF_ALLOWANCE_MS;
    const deaths = Promise.all([
      awaitDeath(ctx, "idle", idle, bound(byKeepalive.deathMs)),
      awaitDeath(ctx, "busy", busy, bound(byRetries.deathMs)),
      awaitDeath(ctx, "user timeout short", userShort, bound(byUserShort.deathMs)),
      awaitDeath(ctx, "user timeout long", userLong, bound(byUserLong.deathMs)),
    ]);
    deaths.catch(() => {});
    await lab.powerOff(kodos);
    const offUs = ctx.now();
    // Read once the peer is gone: a keepalive probe it answered while the power-off was under way
    // moved the last segment heard. A socket already dead still reports it.
    const heard = {
      idle: await lastHeard(idle),
      busy: await lastHeard(busy),
      userShort: await lastHeard(userShort),
      userLong: await lastHeard(userLong),
    };
    ctx.say("kodos loses power; kang's sockets are idle but for one, which writes");
    const sent = await ctx.attempt("kang", "write (busy)", () => busy.write("still there?\n"));
    ctx.expectOk(sent, 13);
    const [rIdle, rBusy, rShort, rLong] = await deaths;

    const keepaliveTime = (d: KeepaliveDeath) => timerChainExpectation(keepaliveTimerDelays(d), d.why);
    ctx.expectErrno(rIdle.read, "ETIMEDOUT", { headline: true });
    ctx.expectTime(
      `idle death by keepalive ${IDLE_S} s + ${INTVL_S} s x ${CNT}`,
      keepaliveTime(byKeepalive),
      (rIdle.woke.atUs - heard.idle) / 1000,
      { headline: true },
    );
    ctx.expectEqual(
      "keepalive probes before giving up (TCP_INFO probes)",
      byKeepalive.probes,
      Number(rIdle.info.probes),
      {
        headline: true,
      },
    );
    ctx.expectEqual("probes seen while it waited", byKeepalive.probes, rIdle.probesSince(offUs));

    ctx.expectErrno(rBusy.read, "ETIMEDOUT", { headline: true });
    // Where a firing falls within the timer wheel's rounding of the limit, either it or the next one
    // gives up: the retransmissions tell which, and the time is checked against that one.
    const busyRetrans = Number(rBusy.info.total_retrans);
    const taken = deathTaken(byRetries, busyRetrans);
    ctx.expectTime(
      `busy death by tcp_retries2=${RETRIES2}, not keepalive`,
      timerChainExpectation(taken.intervals, taken.why),
      (rBusy.woke.atUs - sent.atUs) / 1000,
      { headline: true },
    );
    // Keepalive stays silent while data is in flight (tcp_keepalive_timer: packets_out). Before the
    // write the busy socket was idle: where the power-off took longer than its idle time (a
    // provider's command, seconds), its timer fired meanwhile, once per interval, as on any socket.
    const idleBeforeMs = (sent.startUs - heard.busy) / 1000;
    const firings = (ms: number) => (ms < IDLE_S * 1000 ? 0 : 1 + Math.floor((ms - IDLE_S * 1000) / (INTVL_S * 1000)));
    const slack = tolerance(idleBeforeMs) + wheelGranularityMs(IDLE_S * 1000);
    const allowed = [...new Set([firings(idleBeforeMs - slack), firings(idleBeforeMs), firings(idleBeforeMs + slack)])];
    const busyProbes = rBusy.probesSince(offUs);
    ctx.observe("busy socket idle before its write", Math.round(idleBeforeMs), "ms");
    ctx.expectThat(
      "keepalive probes on the busy socket",
      allowed.includes(busyProbes),
      `${allowed.join(" or ")}: none once data is in flight; ${idleBeforeMs < IDLE_S * 1000 ? "it wrote within its idle time" : `those its timer sent in the ${humanMs(idleBeforeMs)} it was idle before writing`}`,
      String(busyProbes),
      { headline: true },
    );
    ctx.expectThat(
      "retransmissions on the busy socket",
      busyRetrans === byRetries.retransmissions || busyRetrans === byRetries.early?.retransmissions,
      byRetries.early
        ? `${byRetries.retransmissions}, or ${byRetries.early.retransmissions} where the timer wheel's rounding takes the firing at ${Math.round(byRetries.early.deathMs)} ms past the limit`
        : String(byRetries.retransmissions),
      String(busyRetrans),
    );

    ctx.expectErrno(rShort.read, "ETIMEDOUT");
    ctx.expectTime(
      `death with TCP_USER_TIMEOUT=${USER_TIMEOUT_SHORT_MS} ms`,
      keepaliveTime(byUserShort),
      (rShort.woke.atUs - heard.userShort) / 1000,
      { headline: true },
    );
    ctx.expectEqual(
      `probes with TCP_USER_TIMEOUT=${USER_TIMEOUT_SHORT_MS} ms`,
      byUserShort.probes,
      Number(rShort.info.probes),
    );
    ctx.expectErrno(rLong.read, "ETIMEDOUT");
    ctx.expectTime(
      `death with TCP_USER_TIMEOUT=${USER_TIMEOUT_LONG_MS} ms`,
      keepaliveTime(byUserLong),
      (rLong.woke.atUs - heard.userLong) / 1000,
      { headline: true },
    );
    ctx.expectEqual(
      `probes with TCP_USER_TIMEOUT=${USER_TIMEOUT_LONG_MS} ms (past TCP_KEEPCNT=${CNT})`,
      byUserLong.probes,
      Number(rLong.info.probes),
      { headline: true },
    );

    const bareInfo = await bare.tcpInfo();
    ctx.expectEqual("state of the idle socket without SO_KEEPALIVE", "ESTABLISHED", bareInfo.stateName, {
      headline: true,
    });

    if (rIdle.traced && rBusy.traced) {
      const idleRst = rIdle.resets;
      // tcp_keepalive_timer resets with its own socket: traced on every kernel, with a reason since 6.10.
      const every = ctx.rule("send-reset-every-rst") === true;
      const want = sendResetTrace("socket", "TCP_KEEPALIVE_TIMEOUT", every);
      ctx.expectThat(
        "RST sent by the keepalive's end",
        idleRst.length === 1 && idleRst[0]?.reason === want.reason,
        sendResetText("kang", "socket", "TCP_KEEPALIVE_TIMEOUT", every),
        idleRst.map((e) => e.reason ?? "no reason").join(", ") || "none",
      );
      ctx.expectEqual("RSTs sent by the busy socket's end (retransmission timeout)", 0, rBusy.resets.length);
    } else {
      ctx.say("tracepoints unavailable: the RST at keepalive death is not checked");
    }
  },
};
