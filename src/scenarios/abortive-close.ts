// Abortive close: SO_LINGER {1, 0} and close with unread data both send a RST; what the peer still reads, its errno, and what is lost.
import type { HostSocket } from "../lab/host.js";
import {
  AFTER_RST,
  expectedResetSeen,
  NO_REASON,
  RST_REASON,
  readSequence,
  reventsText,
  zeroWindowBoundMs,
} from "../model/close.js";
import { humanMs, tolerance } from "../model/tcp.js";
import { POLLIN, POLLRDHUP } from "../sys/constants.js";
import { describeOutcome, isErrnoName, type Scenario, type ScenarioContext } from "./scenario.js";
import { connection, kangAndKodos, SERVER_PORT, stateChanges, tcpTimers, waitUntil } from "./steps.js";

// A receive buffer small enough that the closer's send queue backs up behind a closed window.
const SMALL_RCVBUF = 4096;
// Bytes the closer has delivered before the in-flight case: they sit unread at the peer.
const DELIVERED = 500;
// Bytes sent into the partition: one segment, sent and never acknowledged.
const IN_FLIGHT = 1000;
const REQUEST = "GET /report HTTP/1.1\r\nHost: kodos\r\n\r\n";
const RESPONSE = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n";

// The peer's view once the RST is in: it is woken, then reads whatever arrived before the RST,
// then the error, then 0; every step against the model. Returns the bytes read.
async function afterReset(
  ctx: ScenarioContext,
  when: string,
  peer: HostSocket,
  queued: number,
  closedAt: number,
  boundMs: number,
): Promise<number> {
  const c = { ...AFTER_RST, queued };
  const woke = await ctx.pollNames("kang", peer, POLLIN | POLLRDHUP, boundMs, `${when}: poll(POLLIN|POLLRDHUP)`);
  ctx.expectOk(woke, reventsText(c, POLLIN | POLLRDHUP), { headline: true });
  ctx.expectTime(
    `${when}: kang woken after kodos's close`,
    { ms: 0, toleranceMs: tolerance(0), why: "the RST crosses a LAN at once" },
    (woke.atUs - closedAt) / 1000,
  );
  ctx.expectEqual(`${when}: bytes still queued at kang after the RST (SIOCINQ)`, queued, await peer.inq(), {
    headline: queued > 0,
  });
  let read = 0;
  const seen: string[] = [];
  for (const want of readSequence(c)) {
    const r = await ctx.attempt("kang", `${when}: read`, () => peer.read(1 << 20));
    // One read takes the whole queue: tcp_recvmsg copies across segments up to the length asked.
    ctx.expectOutcome(r, want, { headline: isErrnoName(want) });
    read += r.value?.length ?? 0;
    seen.push(describeOutcome(r));
  }
  ctx.observe(`reads at kang, ${when}`, seen.join(", "));
  ctx.expectEqual(`${when}: kang's state`, "CLOSE", (await peer.tcpInfo()).stateName);
  return read;
}

export const scenario: Scenario = {
  name: "abortive-close",
  seed: '001_af96411e377219e9.txt ("what about server sending RST instead of FIN") and 003_4cf9e29935512145.txt (POLLHUP or POLLERR on a broken connection)',
  question:
    "When a socket is closed with SO_LINGER {1, 0}, or with unread data, what can the peer still read, which errno and revents does it get, and what is lost?",
  seedSays:
    "001: a server may send RST instead of FIN, but that is not a clean shutdown: it breaks the connection without giving the client any grace to finish. 003: when neither reading nor writing is possible, poll reports POLLHUP or POLLERR.",
  linux:
    "Both ways send a RST at once, never a FIN: SO_LINGER {1, 0} makes tcp_close() call tcp_disconnect() (tracepoint reason TCP_STATE), and unread data makes tcp_close() reset first (RFC 2525 §2.17, reason TCP_ABORT_ON_CLOSE). The closer's write queue is purged: bytes not yet sent and bytes sent but unacknowledged are both gone, never retransmitted. At the peer, tcp_reset() sets ECONNRESET and tcp_done() shuts both directions, but the receive queue is kept: everything that arrived before the RST is read first, then ECONNRESET once, then 0 (revents POLLIN|POLLERR|POLLHUP|POLLRDHUP until the error is read). When the RST's sequence number lies beyond what the peer received (the unacknowledged bytes never arrived), the peer does not accept it (RFC 5961): it sends a challenge ACK, which finds only the listener, whose RST (reason TCP_FLAGS) carries the exact sequence number and resets the peer one round trip later. Unread data at the closer is lost too, although TCP had acknowledged it to the peer.",
  faults: ["partition", "heal"],
  timeoutMs: 10_000,
  async run(ctx) {
    const { lab } = ctx;
    const { kang, kodos, listener } = await kangAndKodos(lab);
    const ports: Record<string, number> = {};

    // 1. SO_LINGER {1, 0} while kang's window is closed: kang holds unread bytes, kodos unsent ones.
    {
      const peer = await kang.socket();
      await peer.setOption("SO_RCVBUF", SMALL_RCVBUF);
      await peer.connectAsync(kodos.ipv4, SERVER_PORT, { timeoutMs: 2000 });
      const closer = await listener.acceptAsync({ timeoutMs: 2000 });
      ports.linger = (await peer.localAddress()).port;
      let written = 0;
      for (;;) {
        const w = await ctx.attempt("kodos", "write", () => closer.write(Buffer.alloc(4096, 0x61)));
        if (!w.ok) {
          ctx.expectErrno(w, "EAGAIN");
          break;
        }
        written += w.value ?? 0;
      }
      ctx.say(`kodos writes ${written} bytes to kang, which reads nothing, until its send buffer is full`);
      const { rtoMs } = await tcpTimers(closer);
      const bound = zeroWindowBoundMs(rtoMs);
      const info = await waitUntil(
        () => closer.tcpInfo(),
        (i) => Number(i.snd_wnd) === 0 && Number(i.unacked) === 0,
        bound,
      );
      ctx.expectThat(
        "linger: kang's window closed, nothing in flight",
        Number(info.snd_wnd) === 0 && Number(info.unacked) === 0,
        `snd_wnd 0 and 0 unacknowledged within ${humanMs(bound)}`,
        `snd_wnd ${info.snd_wnd}, ${info.unacked} unacknowledged`,
      );
      const atPeer = await peer.inq();
      const queued = await closer.outq();
      const notSent = await closer.outqNotSent();
      ctx.observe("linger: bytes queued unread at kang before the RST", atPeer, "bytes");
      ctx.observe("linger: bytes in kodos's send queue at close (not yet sent)", notSent, "bytes");
      ctx.expectEqual("linger: every byte written is at kang or in kodos's queue", written, atPeer + queued);
      await closer.setLinger(1, 0);
      const closedAt = ctx.now();
      await closer.close();
      ctx.say("kodos closes with SO_LINGER {1, 0}");
      const read = await afterReset(ctx, "linger", peer, atPeer, closedAt, rtoMs + tolerance(rtoMs));
      ctx.expectEqual("linger: bytes lost (written by kodos, never read by kang)", notSent, written - read, {
        headline: true,
      });
      ctx.expectErrno(
        await ctx.attempt("kang", "linger: write after the error was read", () => peer.write("x")),
        "EPIPE",
      );
    }

    // 2. SO_LINGER {1, 0} with a segment sent but not acknowledged: it was dropped by a partition.
    {
      // Nothing may resend the dropped segment between the heal and the close, however slow the
      // heal: no tail loss probe (tcp_early_retrans=0), and an RTO of at least 3 s toward kang
      // (rto_min on kang's route, which ip locks).
      await kodos.setSysctls({ "net.ipv4.tcp_early_retrans": 0 });
      const route = kodos.spawn(["ip", "route", "replace", `${kang.ipv4}/32`, "dev", "eth0", "rto_min", "3s"]);
      const routed = await route.exited;
      ctx.expectEqual("in flight: kodos's route to kang with rto_min 3 s", 0, routed.code ?? -1);
      const { client: peer, server: closer, port } = await connection(kang, kodos, listener);
      ports.inflight = port;
      const { rtoMs } = await tcpTimers(closer);
      await closer.write(Buffer.alloc(DELIVERED, 0x62));
      ctx.expectOk(
        await ctx.pollNames("kang", peer, POLLIN, rtoMs + tolerance(rtoMs), "in flight: the first bytes reached kang"),
        "POLLIN",
      );
      await lab.partition([kang], [kodos]);
      await closer.write(Buffer.alloc(IN_FLIGHT, 0x63));
      const unacked = await closer.outq();
      const notSent = await closer.outqNotSent();
      ctx.expectEqual(
        "in flight: sent but unacknowledged at kodos (SIOCOUTQ − SIOCOUTQNSD)",
        IN_FLIGHT,
        unacked - notSent,
      );
      // Healed before the close, so the RST and what follows it get through; the dropped segment is
      // not resent before the close (no loss probe, RTO of 3 s).
      await lab.heal();
      await closer.setLinger(1, 0);
      const closedAt = ctx.now();
      await closer.close();
      ctx.say(
        `kodos sends ${IN_FLIGHT} bytes into a partition, the partition heals, kodos closes with SO_LINGER {1, 0}`,
      );
      const read = await afterReset(ctx, "in flight", peer, DELIVERED, closedAt, rtoMs + tolerance(rtoMs));
      ctx.expectEqual(
        "in flight: bytes lost (sent, unacknowledged, never retransmitted)",
        IN_FLIGHT,
        DELIVERED + IN_FLIGHT - read,
        {
          headline: true,
        },
      );
    }

    // 3. close() with unread data: the request kodos never read turns its close into a RST.
    {
      const { client: peer, server: closer, port } = await connection(kang, kodos, listener);
      ports.unread = port;
      const { rtoMs } = await tcpTimers(closer);
      await peer.write(REQUEST);
      ctx.expectOk(
        await ctx.pollNames("kodos", closer, POLLIN, rtoMs + tolerance(rtoMs), "unread: the request reached kodos"),
        "POLLIN",
      );
      ctx.expectEqual("unread: request bytes unread at kodos", REQUEST.length, await closer.inq());
      ctx.expectEqual("unread: request bytes unacknowledged at kang (SIOCOUTQ)", 0, await peer.outq());
      await closer.write(RESPONSE);
      ctx.expectOk(
        await ctx.pollNames("kang", peer, POLLIN, rtoMs + tolerance(rtoMs), "unread: the response reached kang"),
        "POLLIN",
      );
      const closedAt = ctx.now();
      await closer.close();
      ctx.say("kodos answers without reading the request and closes (no SO_LINGER)");
      const read = await afterReset(ctx, "unread", peer, RESPONSE.length, closedAt, rtoMs + tolerance(rtoMs));
      ctx.expectEqual("unread: response bytes kang read", RESPONSE.length, read);
      ctx.observe("unread: request bytes lost though TCP acknowledged them", REQUEST.length, "bytes");
    }

    const trace = await stateChanges(lab);
    if (trace.available) {
      // tcp_send_reset fires after the RST is transmitted, and on veth the peer's answer is processed
      // inside that transmit: the trace's order is not the wire's, so each RST is found by what sent it.
      const sentBy = (port: number) =>
        trace.events
          .filter((e) => e.event === "tcp_send_reset" && e.saddr === kodos.ipv4 && e.dport === port)
          .map((e) => e.reason ?? NO_REASON)
          .join(",") || "none";
      // The connections reset with their own sockets and the listener is a full socket: every kernel
      // traces these RSTs; only 6.10+ says why.
      const every = ctx.rule("send-reset-every-rst") === true;
      const seen = (origin: "socket" | "listener", reason: string) => expectedResetSeen(origin, reason, every);
      const received = (port: number) =>
        trace.events.filter((e) => e.event === "tcp_receive_reset" && e.saddr === kang.ipv4 && e.sport === port).length;
      const fromListener = trace.events.filter(
        (e) => e.event === "tcp_send_reset" && e.saddr === kodos.ipv4 && e.state === "LISTEN",
      );
      ctx.expectEqual(
        "linger: RST kodos sent (tcp_send_reset reason)",
        seen("socket", RST_REASON.lingerZero),
        sentBy(ports.linger ?? 0),
        {
          headline: true,
        },
      );
      ctx.expectEqual("linger: RSTs kang received", 1, received(ports.linger ?? 0));
      ctx.expectEqual(
        "in flight: RST kodos's connection sent",
        seen("socket", RST_REASON.lingerZero),
        sentBy(ports.inflight ?? 0),
      );
      ctx.expectEqual(
        "in flight: RSTs kodos's listener sent (answering kang's challenge ACK)",
        seen("listener", RST_REASON.ackToListener),
        fromListener.map((e) => e.reason ?? NO_REASON).join(",") || "none",
        { headline: true },
      );
      ctx.expectEqual("in flight: RSTs kang accepted (of 2 sent)", 1, received(ports.inflight ?? 0));
      ctx.expectEqual(
        "unread: RST kodos sent (tcp_send_reset reason)",
        seen("socket", RST_REASON.unreadData),
        sentBy(ports.unread ?? 0),
        {
          headline: true,
        },
      );
      ctx.expectEqual(
        "unread: kodos's path (a RST, no FIN)",
        "ESTABLISHED>CLOSE",
        trace.path(kodos.ipv4, SERVER_PORT, "ESTABLISHED", ports.unread),
      );
      ctx.expectEqual("unread: RSTs kang received", 1, received(ports.unread ?? 0));
    } else {
      ctx.say(`tracepoints unavailable (${trace.reason}): the RSTs are not checked in the trace`);
    }
  },
};
