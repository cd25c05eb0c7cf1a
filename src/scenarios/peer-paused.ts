// Peer paused: seed 003's VM whose state was saved. While kang is paused, kodos sees an idle
// connection ESTABLISHED and no EPOLLIN; once kodos writes, it retransmits into the silence and gives
// up by tcp_retries2 long before kang runs again. What kang finds on resuming depends on what the
// pause was: a VM stopped by its hypervisor (its clocks stand still, its tap keeps what arrived) or
// the netns emulation (its kernel's clocks run on, the switch drops what was sent to it).

import type { Host } from "../lab/host.js";
import { AFTER_RST, reventsText } from "../model/close.js";
import { deathTaken, humanMs, retransmissionDeath, timerChainExpectation } from "../model/tcp.js";
import { POLLIN, POLLOUT, POLLRDHUP } from "../sys/constants.js";
import type { Scenario, ScenarioContext } from "./scenario.js";
import { connection, kangAndKodos, runOn, stateChanges, tcpTimers, waitUntil } from "./steps.js";

const RETRIES2 = 3;
const IDLE_MS = 1000;
// /proc/uptime counts in hundredths of a second.
const UPTIME_RESOLUTION_MS = 10;

// The host's CLOCK_BOOTTIME-based uptime, and when (on the lab's clock) it may have been read.
async function uptime(ctx: ScenarioContext, host: Host): Promise<{ s: number; fromUs: number; toUs: number }> {
  const fromUs = ctx.now();
  const { code, stdout: out } = await runOn(host, ["cat", "/proc/uptime"]);
  const toUs = ctx.now();
  const s = Number(out.trim().split(/\s+/)[0]);
  if (code !== 0 || !Number.isFinite(s)) throw new Error(`cat /proc/uptime on ${host.name}: exit ${code}, "${out}"`);
  return { s, fromUs, toUs };
}

export const scenario: Scenario = {
  name: "peer-paused",
  seed: "003_4cf9e29935512145.txt (the client VM whose state was saved)",
  question:
    "While a peer is paused for longer than the other side's retransmission budget, what does the other side see, and what does the peer find when it resumes?",
  seedSays:
    "With the client VM's state saved, the connection was still ESTABLISHED in the server VM, and epoll never reported EPOLLIN: an idle side notices nothing.",
  linux:
    "An idle kodos notices nothing: no timer of its runs for a connection with nothing outstanding. Once it writes, it retransmits on the RTO schedule and gives up by tcp_retries2 with ETIMEDOUT, then forgets the connection (tcp_done). A paused VM's clocks stop with its vCPUs, so on resuming its kernel has missed the whole pause; the segments kodos sent meanwhile waited in the VM's tap and arrive at once, kang acknowledges them, and kodos, with no socket left, answers RST (NO_SOCKET). Where the pause is emulated (netns) kang's clocks run on and those segments were dropped at the switch: kang finds its connection ESTABLISHED until it writes and gets the RST.",
  faults: ["pause", "resume"],
  timeoutMs: 25_000,
  async run(ctx) {
    const { lab } = ctx;
    const { kang, kodos, listener } = await kangAndKodos(lab, {
      kodos: { sysctls: { "net.ipv4.tcp_retries2": RETRIES2 } },
    });
    const { client, server } = await connection(kang, kodos, listener);
    const timers = await tcpTimers(server);
    const how = lab.pauseSemantics;
    ctx.say(
      `pause on ${lab.backend}: kang's clocks ${how.clocksStop ? "stop" : "keep running (emulated)"}, and what is sent to it is ${how.inbound}`,
    );

    const before = await uptime(ctx, kang);
    const pauseFrom = ctx.now();
    await lab.pause(kang);
    const pauseTo = ctx.now();
    ctx.expectOk(
      await ctx.pollNames("kodos", server, POLLIN | POLLRDHUP, IDLE_MS, "poll (idle, kang paused)"),
      "nothing",
      { headline: true },
    );
    ctx.expectEqual("kodos's state while kang is paused", "ESTABLISHED", (await server.tcpInfo()).stateName, {
      headline: true,
    });

    const death = retransmissionDeath({ ...timers, retries2: RETRIES2 });
    const sent = await ctx.attempt("kodos", "write", () => server.write("\n"));
    ctx.expectOk(sent, 1);
    const woke = await ctx.pollNames("kodos", server, POLLIN | POLLRDHUP, death.deathMs + 3000);
    ctx.expectErrno(await ctx.attempt("kodos", "read", () => server.read(1024)), "ETIMEDOUT", { headline: true });
    const retrans = Number((await server.tcpInfo()).total_retrans);
    const taken = deathTaken(death, retrans);
    ctx.expectTime(
      `kodos's death by tcp_retries2=${RETRIES2}`,
      timerChainExpectation(taken.intervals, taken.why),
      (woke.atUs - sent.atUs) / 1000,
      { headline: true },
    );

    const resumeFrom = ctx.now();
    await lab.resume(kang);
    const resumeTo = ctx.now();
    const after = await uptime(ctx, kang);

    // kang's clock across the pause, bounded by when each reading and each QMP command may have
    // taken effect: where clocks stop, it missed the time between stop and cont.
    const elapsedMs = (after.s - before.s) * 1000;
    const labMin = (after.fromUs - before.toUs) / 1000;
    const labMax = (after.toUs - before.fromUs) / 1000;
    const stoppedMin = how.clocksStop ? (resumeFrom - pauseTo) / 1000 : 0;
    const stoppedMax = how.clocksStop ? (resumeTo - pauseFrom) / 1000 : 0;
    const lo = labMin - stoppedMax - UPTIME_RESOLUTION_MS;
    const hi = labMax - stoppedMin + UPTIME_RESOLUTION_MS;
    ctx.observe("pause length", Math.round((resumeFrom - pauseTo) / 1000), "ms");
    ctx.observe("kang's clock across the pause", Math.round(elapsedMs), "ms");
    ctx.expectThat(
      "kang's clock across the pause",
      elapsedMs >= lo && elapsedMs <= hi,
      how.clocksStop
        ? `the lab's time less the pause: ${humanMs(lo)} to ${humanMs(hi)}`
        : `the lab's time, the pause included: ${humanMs(lo)} to ${humanMs(hi)}`,
      humanMs(elapsedMs),
      { headline: true },
    );

    if (how.inbound === "queued") {
      // kodos's segments reach kang on resuming: kang takes the byte, acknowledges it, and the RST
      // for that acknowledgement ends the connection without kang writing anything.
      const closed = await waitUntil(
        async () => (await client.tcpInfo()).stateName,
        (s) => s === "CLOSE",
        2000,
      );
      ctx.expectEqual("kang's state once resumed", "CLOSE", closed, { headline: true });
      ctx.expectOk(await ctx.attempt("kang", "read", () => client.read(1024)), "1 bytes", { headline: true });
      ctx.expectErrno(await ctx.attempt("kang", "read again", () => client.read(1024)), "ECONNRESET");
    } else {
      ctx.expectEqual("kang's state once resumed", "ESTABLISHED", (await client.tcpInfo()).stateName, {
        headline: true,
      });
      ctx.expectOk(await ctx.attempt("kang", "write", () => client.write("still there?\n")), 13);
      // POLLOUT would answer at once: the wait is for the RST, the whole revents read after it.
      const reset = await ctx.pollNames("kang", client, POLLIN | POLLRDHUP, 2000, "poll (after the write)");
      ctx.expectOk(reset, reventsText(AFTER_RST, POLLIN | POLLRDHUP));
      ctx.expectOk(
        await ctx.pollNames("kang", client, POLLIN | POLLOUT | POLLRDHUP, 0, "poll (after the RST)"),
        reventsText(AFTER_RST, POLLIN | POLLOUT | POLLRDHUP),
      );
      ctx.expectErrno(await ctx.attempt("kang", "read", () => client.read(1024)), "ECONNRESET", { headline: true });
    }

    const states = await stateChanges(lab);
    if (states.available) {
      const resets = states.events.filter((e) => e.event === "tcp_receive_reset" && e.saddr === kang.ipv4);
      ctx.expectEqual("RSTs kang received (tcp_receive_reset)", 1, resets.length);
      ctx.expectThat(
        "kang's RST came after the resume",
        resets.every((e) => e.atUs >= resumeFrom),
        "after the resume",
        resets.map((e) => `+${(e.atUs / 1e6).toFixed(3)} s`).join(", ") || "none",
      );
    } else {
      ctx.say(`tracepoints unavailable (${states.reason}): the RST is seen through read only`);
    }
  },
};
