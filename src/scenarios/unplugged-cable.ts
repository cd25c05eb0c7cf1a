// Unplugged cable: writes during the outage succeed and arrive in order at the next retransmission after the replug,
// unless TCP_USER_TIMEOUT ends the connection first, leaving the peer with a connection that only an RST reveals.
import { AFTER_RST, IDLE, readSequence, reventsText } from "../model/close.js";
import { nearest } from "../model/queues.js";
import {
  chainDelays,
  DEFAULTS,
  humanMs,
  retransmissionDeath,
  TCP_RTO_MAX_MS,
  TCP_RTO_MIN_MS,
  timerChainExpectation,
} from "../model/tcp.js";
import { deliveryAfterOutage } from "../model/timers.js";
import { POLLIN, POLLOUT, POLLRDHUP } from "../sys/constants.js";
import type { Scenario } from "./scenario.js";
import { checkSentReset, connection, kangAndKodos, stateChanges, tcpTimers, waitUntil } from "./steps.js";

const USER_TIMEOUT_MS = 1500;
const CHUNKS = ["one,", "two,", "three."];

export const scenario: Scenario = {
  name: "unplugged-cable",
  seed: "003_4cf9e29935512145.txt (send(2) succeeds with an established connection on an unreachable network)",
  question:
    "While a cable is out, do writes fail, and what happens to the written bytes when it comes back, or when the outage outlasts TCP_USER_TIMEOUT?",
  seedSays:
    "Seed 003: with the cable unplugged, send() returns the full length and netstat still says ESTABLISHED; the kernel buffers the data and keeps retrying, and after replugging the messages arrive, never out of order: you lose them all or receive them in order. Seed 000 adds that a side sending into silence finds out only by ETIMEDOUT once its retransmissions go unacknowledged too long.",
  linux:
    "Nothing in TCP reacts to a link coming back: write() queues the bytes (SIOCOUTQ counts them), the tail loss probe and the RTO retransmissions go nowhere, and the data arrives at the first retransmission timer after the replug, up to one backoff step later. With TCP_USER_TIMEOUT the RTO timer is clamped to the limit and the connection dies (ETIMEDOUT) without sending anything, so the peer stays ESTABLISHED and learns of it only by an RST to its next segment. The cable pulled here is the reader's: pulling the writer's own cable also leaves its socket untouched, but its carrier loss flushes its ARP entries (neigh_carrier_down), so its segments wait in the neighbour queue and leave when ARP resolves after the replug.",
  // The outage lasts until the user timeout's death; the data arrives at the next retransmission after it.
  faults: ["unplug", "replug"],
  timeoutMs:
    (deliveryAfterOutage(
      retransmissionDeath({ rtoMs: TCP_RTO_MIN_MS, retries2: DEFAULTS.tcp_retries2 }).schedule,
      retransmissionDeath({ rtoMs: TCP_RTO_MIN_MS, retries2: DEFAULTS.tcp_retries2, userTimeoutMs: USER_TIMEOUT_MS })
        .deathMs,
    ) ?? 0) + 10_000,
  async run(ctx) {
    const { lab } = ctx;
    const { kang, kodos, listener } = await kangAndKodos(lab);
    const { client: survivor, server: survivorPeer } = await connection(kang, kodos, listener);
    const { client: doomed, server: doomedPeer, port: doomedPort } = await connection(kang, kodos, listener);
    await doomed.setOption("TCP_USER_TIMEOUT", USER_TIMEOUT_MS);
    // Each connection's own timers: a handshake that needed a retransmission starts with a 3 s RTO (RFC 6298 5.7).
    const survivorTimers = await tcpTimers(survivor);
    ctx.observe("RTO before the outage", survivorTimers.rtoMs, "ms");
    const survivorModel = retransmissionDeath({ ...survivorTimers, retries2: DEFAULTS.tcp_retries2 });
    const doomedModel = retransmissionDeath({
      ...(await tcpTimers(doomed)),
      retries2: DEFAULTS.tcp_retries2,
      userTimeoutMs: USER_TIMEOUT_MS,
    });
    const onLan = retransmissionDeath({ rtoMs: TCP_RTO_MIN_MS, retries2: DEFAULTS.tcp_retries2 });
    ctx.observe("longest outage survived with default sysctls (model)", Math.round(onLan.deathMs), "ms");
    ctx.say(
      `without TCP_USER_TIMEOUT, tcp_retries2=${DEFAULTS.tcp_retries2} lets an outage last ${humanMs(onLan.deathMs)} on a LAN (RTO ${TCP_RTO_MIN_MS} ms) before the connection dies; the data then waits up to one backoff step (at most ${humanMs(TCP_RTO_MAX_MS)}) after the replug`,
    );

    await lab.unplug(kodos);
    ctx.say("kodos's cable is pulled; kang writes on both connections");
    const firstWrite = ctx.now();
    for (const chunk of CHUNKS) {
      ctx.expectOk(await ctx.attempt("kang", `write "${chunk}"`, () => survivor.write(chunk)), chunk.length, {
        headline: chunk === CHUNKS[0],
      });
    }
    const total = CHUNKS.join("").length;
    const sent = await ctx.attempt("kang", "write (user timeout)", () => doomed.write("hello?"));
    ctx.expectOk(sent, 6);

    // The outage lasts until the doomed connection has died: the replug waits on that, not on a clock.
    const died = await ctx.pollNames(
      "kang",
      doomed,
      POLLIN | POLLRDHUP,
      doomedModel.deathMs + 3000,
      "poll (user timeout)",
    );
    ctx.expectErrno(await ctx.attempt("kang", "read (user timeout)", () => doomed.read(1024)), "ETIMEDOUT", {
      headline: true,
    });
    ctx.expectTime(
      `death by TCP_USER_TIMEOUT=${USER_TIMEOUT_MS} during the outage`,
      timerChainExpectation(doomedModel.intervals, doomedModel.why),
      (died.atUs - sent.atUs) / 1000,
      { headline: true },
    );

    ctx.expectEqual("SIOCOUTQ during the outage", total, await survivor.outq(), { unit: "bytes", headline: true });
    ctx.expectEqual("kang's state during the outage", "ESTABLISHED", (await survivor.tcpInfo()).stateName);
    // POLLOUT says there is room in the send buffer, not that anything was delivered.
    ctx.expectOk(
      await ctx.pollNames("kang", survivor, POLLOUT, 0, "poll (during the outage)"),
      reventsText(IDLE, POLLOUT),
    );
    ctx.expectEqual("kodos's SIOCINQ during the outage", 0, await survivorPeer.inq(), { unit: "bytes" });
    const replugAt = ctx.now();
    // Timed by the poll's own thread, started before the replug: the replug returns only once the
    // link is in service, which in a slow guest may come after the retransmission that delivers.
    const latest = deliveryAfterOutage(survivorModel.schedule, (replugAt - firstWrite) / 1000 + 10_000);
    if (latest === undefined) throw new Error("the model has the connection dead before the replug");
    const boundMs = latest - (ctx.now() - firstWrite) / 1000 + 3000;
    const arriving = ctx.pollNames("kodos", survivorPeer, POLLIN, boundMs, "poll (after the replug)");
    await lab.replug(kodos);
    const replugDone = ctx.now();
    ctx.say("the cable is back");
    const arrived = await arriving;
    // The link came back somewhere between the call and its return: the first retransmission after
    // either end of that, the delivery's time telling which where they differ.
    const deliveredAt = nearest(
      [replugAt, replugDone]
        .map((us) => deliveryAfterOutage(survivorModel.schedule, (us - firstWrite) / 1000))
        .filter((t): t is number => t !== undefined),
      (arrived.atUs - firstWrite) / 1000,
    );
    if (deliveredAt === undefined) throw new Error("the model has the connection dead before the replug");
    const got = await ctx.attempt("kodos", "recv (MSG_WAITALL)", () =>
      survivorPeer.recvAsync(total, ["MSG_WAITALL"], { timeoutMs: boundMs }),
    );
    ctx.expectEqual(
      "bytes kodos received, in order",
      CHUNKS.join(""),
      got.ok && Buffer.isBuffer(got.value) ? got.value.toString() : (got.code ?? "nothing"),
      { headline: true },
    );
    ctx.expectTime(
      "delivery, at the first retransmission after the replug",
      timerChainExpectation(chainDelays(survivorModel.schedule, deliveredAt), survivorModel.why),
      (arrived.atUs - firstWrite) / 1000,
      { headline: true },
    );
    ctx.observe("outage", Math.round((replugAt - firstWrite) / 1000), "ms");
    // kodos's ACK reaches kang a moment after the data reaches kodos's application: wait for it, bounded.
    const outq = await waitUntil(
      () => survivor.outq(),
      (q) => q === 0,
      1000,
    );
    ctx.expectEqual("SIOCOUTQ after delivery", 0, outq, { unit: "bytes" });

    // kodos never heard of the doomed connection's death.
    ctx.expectEqual("kodos's state of the dead connection", "ESTABLISHED", (await doomedPeer.tcpInfo()).stateName, {
      headline: true,
    });
    const reply = await ctx.attempt("kodos", "write", () => doomedPeer.write("are you there?"));
    ctx.expectOk(reply, 14);
    // Wait on what the RST brings: with POLLOUT in the mask poll returns at once, before a RST that
    // takes longer than write() (a VM's round trip). Then the whole revents.
    const woke = await ctx.pollNames("kodos", doomedPeer, POLLIN | POLLRDHUP, 2000, "poll (after its write)");
    ctx.expectOk(woke, reventsText(AFTER_RST, POLLIN | POLLRDHUP));
    ctx.expectOk(
      await ctx.pollNames("kodos", doomedPeer, POLLIN | POLLOUT | POLLRDHUP, 0, "poll (after the RST)"),
      reventsText(AFTER_RST, POLLIN | POLLOUT | POLLRDHUP),
    );
    ctx.expectOutcome(
      await ctx.attempt("kodos", "read", () => doomedPeer.read(1024)),
      readSequence(AFTER_RST)[0] ?? "",
      { headline: true },
    );
    const states = await stateChanges(lab);
    if (states.available) {
      const rst = states.events.filter((e) => e.event === "tcp_send_reset" && e.sport === doomedPort);
      // kang's socket died with nothing sent: its RST goes out with no socket, which kernels before
      // 6.10 do not trace; kodos's tcp_receive_reset shows it arrive on every kernel.
      checkSentReset(ctx, "kang's answer to kodos's data", kang, rst, "no socket", "NO_SOCKET");
      const got = states.events.filter(
        (e) => e.event === "tcp_receive_reset" && e.saddr === kodos.ipv4 && e.dport === doomedPort,
      );
      ctx.expectEqual("RSTs kodos's connection received (tcp_receive_reset)", 1, got.length);
    } else {
      ctx.say(`tracepoints unavailable (${states.reason}): the RST is seen through kodos's read`);
    }
  },
};
