// Data dies unaccepted: write and close succeed, the receiving kernel ACKs everything, and a listener
// that closes without accepting resets it; which of the seed's workarounds notice.
import type { SocketRow } from "../evidence/socket-table.js";
import type { Host, HostSocket } from "../lab/host.js";
import { delackMaxMs, lingerCloseBlock } from "../model/queues.js";
import { humanMs, timerChainExpectation, tolerance } from "../model/tcp.js";
import { POLLIN, POLLRDHUP } from "../sys/constants.js";
import type { Scenario, ScenarioContext } from "./scenario.js";
import { stateChanges, waitForNoRow, waitForRow, waitUntil } from "./steps.js";

const PORT = 8080;
const CONTROL_PORT = 8081;
const LINGER_PORT = 8082;
// The seed's "bunch of stuff": one message, well inside the receiver's initial window.
const MESSAGE = Buffer.alloc(10_000, 0x41);
const LINGER_S = 1;
// (b)'s linger time: long enough that only the FIN's ACK can end its close.
const LINGER_ACKED_S = 5;
// The application's own bound on waiting for its acknowledgement.
const APP_ACK_TIMEOUT_MS = 3000;
// How often the SIOCOUTQ workaround looks at the queue.
const OUTQ_POLL_MS = 1;

// The seed's sender after write: FIN_WAIT2 once the receiving kernel ACKed its FIN.
const finWait2 = (port: number) => (r: SocketRow) => r.local.port === port && r.state === "FIN_WAIT2";

async function outqDrained(sock: HostSocket, boundMs: number): Promise<{ outq: number; ms: number }> {
  const t0 = performance.now();
  const outq = await waitUntil(
    () => sock.outq(),
    (q) => q === 0,
    boundMs,
    OUTQ_POLL_MS,
  );
  return { outq, ms: performance.now() - t0 };
}

// close() with SO_LINGER blocks the closing thread: the time it took is read from the lab's clock around it.
async function timedClose(ctx: ScenarioContext, host: string, call: string, sock: HostSocket) {
  const t0 = ctx.now();
  const closed = await ctx.attempt(host, call, () => sock.close());
  return { closed, ms: (closed.atUs - t0) / 1000 };
}

async function portOf(sock: HostSocket): Promise<number> {
  return (await sock.localAddress()).port;
}

// The receiving kernel's rows for the unaccepted children, in the order of `ports`.
async function childRows(kodos: Host, ports: readonly number[]): Promise<SocketRow[]> {
  const rows = await kodos.sockets();
  return ports.map((p) => rows.find((r) => r.local.port === PORT && r.peer.port === p)).filter((r) => r !== undefined);
}

export const scenario: Scenario = {
  name: "data-dies-unaccepted",
  seed: "002_285ea2fe779ca37a.txt (TCP Is Not Reliable: open/write/close with no error, data lost; SO_LINGER, SIOCOUTQ, app-level ACK)",
  question:
    "When the receiver never accepts a connection and then closes its listener, does the sender ever learn its data was lost, and which of the seed's workarounds would tell it?",
  seedSays:
    "connect, write and close all succeed and the receiver's application sees nothing: the receiving kernel ACKed the data, then reset the queued connection. SO_LINGER is not sufficient; SIOCOUTQ is a Linux-specific workaround; the fix that works is an application-level acknowledgement with a timeout.",
  linux:
    "Linux completes the handshake and ACKs data for a connection still waiting in the accept queue (the child is ESTABLISHED, then CLOSE_WAIT after the FIN), so every sender-side signal (write's return, SIOCOUTQ reaching 0, SO_LINGER's close) only proves that the receiving kernel holds the bytes. A queued child never times out by itself: it is reset when the listener closes (inet_csk_listen_stop sends RST for each), which a sender that already closed cannot see. SO_LINGER with a time makes close() block even on an O_NONBLOCK socket (inet_release passes the linger time whatever the file flags), until the FIN is ACKed (the queued child delays that ACK, 40 ms) or the time runs out, and returns 0 in both cases.",
  faults: ["partition", "heal"],
  timeoutMs: 10_000,
  async run(ctx) {
    const { lab } = ctx;
    const kang = await lab.addHost("kang");
    // amy lingers in close() for the whole linger time: she gets a process of her own (an agent), so
    // that her close is the last reference to the socket and not one a concurrent fork of the lab
    // completes (see HostOptions.control).
    const amy = await lab.addHost("amy", { control: "agent" });
    const kodos = await lab.addHost("kodos");
    ctx.say("no sysctl is tuned: every timing here (the 40 ms delayed ACK, the RSTs) is what the defaults give");
    const listener = await kodos.listen(PORT, { backlog: 8 });
    const control = await kodos.listen(CONTROL_PORT, { backlog: 8 });

    // The control: the same protocol against a receiver that accepts, reads and acknowledges.
    const e = await kang.connect(kodos.ipv4, CONTROL_PORT);
    ctx.expectOk(await ctx.attempt("kang", "write (control)", () => e.write(MESSAGE)), MESSAGE.length);
    const served = await control.acceptAsync({ timeoutMs: 2000 });
    const got = await served.recvAsync(MESSAGE.length, ["MSG_WAITALL"], { timeoutMs: 2000 });
    ctx.expectEqual("bytes the accepting application read (control)", MESSAGE.length, got.length);
    await served.write("k");
    const eAck = await ctx.attempt("kang", "read (control)", () => e.readAsync(1, { timeoutMs: APP_ACK_TIMEOUT_MS }));
    ctx.expectOk(eAck, "1 bytes", { headline: true });
    ctx.say("control: kodos accepts, reads 10000 bytes and answers one byte; kang's wait for it ends at once");

    // Four senders to a listener whose application never calls accept().
    const [a, b, c, d] = [
      await kang.connect(kodos.ipv4, PORT),
      await kang.connect(kodos.ipv4, PORT),
      await kang.connect(kodos.ipv4, PORT),
      await kang.connect(kodos.ipv4, PORT),
    ] as [HostSocket, HostSocket, HostSocket, HostSocket];
    const ports = [await portOf(a), await portOf(b), await portOf(c), await portOf(d)];
    ctx.say(`kang connects four times to kodos:${PORT} (ports ${ports.join(", ")}); kodos's application never accepts`);

    // (a) plain write + close.
    ctx.expectOk(await ctx.attempt("kang", "write (a)", () => a.write(MESSAGE)), MESSAGE.length);
    ctx.expectOk((await timedClose(ctx, "kang", "close (a)", a)).closed, undefined, { headline: true });

    // (b) SO_LINGER with a time: close waits for the FIN's ACK, which the queued child's kernel sends.
    ctx.expectOk(
      await ctx.attempt("kang", `SO_LINGER {1, ${LINGER_ACKED_S}} (b)`, () => b.setLinger(1, LINGER_ACKED_S)),
    );
    ctx.expectOk(await ctx.attempt("kang", "write (b)", () => b.write(MESSAGE)), MESSAGE.length);
    const bClose = await timedClose(ctx, "kang", "close (b)", b);
    ctx.expectOk(bClose.closed, undefined, { headline: true });
    // The peer's delayed ACK is at most 200 ms before 6.7, the minimum RTO less a jiffy after.
    const delackMax = delackMaxMs(ctx.rule("delack-max-from-rto-min") === true);
    ctx.kernelValue("longest delayed ACK", `${delackMax} ms`);
    const lingerAcked = lingerCloseBlock(LINGER_ACKED_S, true, delackMax);
    ctx.observe("close with SO_LINGER blocked", Math.round(bClose.ms), "ms");
    // How long it blocks depends on when the receiving kernel acknowledges the FIN (delayed ACK, or at
    // once in quickack mode), and a fork of the lab racing the close can take the last reference:
    // what matters is that it returns success before the linger time, having detected nothing.
    ctx.expectThat(
      `close with SO_LINGER {1, ${LINGER_ACKED_S}} on an O_NONBLOCK socket returned before the linger time`,
      bClose.ms <= lingerAcked.maxMs + tolerance(lingerAcked.maxMs),
      `at most ${humanMs(lingerAcked.maxMs)}: ${lingerAcked.why}`,
      humanMs(bClose.ms),
    );

    // (c) SIOCOUTQ: wait until nothing is unacknowledged, then close.
    ctx.expectOk(await ctx.attempt("kang", "write (c)", () => c.write(MESSAGE)), MESSAGE.length);
    const drained = await outqDrained(c, 2000);
    ctx.expectEqual("SIOCOUTQ before close (c)", 0, drained.outq, { unit: "bytes", headline: true });
    ctx.observe("SIOCOUTQ reached 0 after", Math.round(drained.ms * 10) / 10, "ms");
    ctx.expectOk((await timedClose(ctx, "kang", "close (c)", c)).closed, undefined, { headline: true });

    // (d) an application-level acknowledgement: write, then wait (bounded) for one byte back.
    ctx.expectOk(await ctx.attempt("kang", "write (d)", () => d.write(MESSAGE)), MESSAGE.length);

    // Every sender has finished by its own lights: a, b, c wait in FIN_WAIT2 for a FIN that never comes.
    for (const [name, p] of [
      ["a", ports[0]],
      ["b", ports[1]],
      ["c", ports[2]],
    ] as const) {
      const row = await waitForRow(kang, finWait2(p as number), 1000);
      ctx.expectEqual(`kang's socket (${name}) after close`, "FIN_WAIT2", row?.state ?? "none");
    }
    // Where the bytes are: in kodos's kernel, in children nobody accepted.
    const listen = (await kodos.sockets()).find((r) => r.state === "LISTEN" && r.local.port === PORT);
    ctx.expectEqual("connections waiting in kodos's accept queue", ports.length, listen?.recvQ ?? -1, {
      headline: true,
    });
    const children = await childRows(kodos, ports);
    ctx.expectEqual(
      "unaccepted children's states and receive queues on kodos",
      `CLOSE_WAIT ${MESSAGE.length + 1}, CLOSE_WAIT ${MESSAGE.length + 1}, CLOSE_WAIT ${MESSAGE.length + 1}, ESTABLISHED ${MESSAGE.length}`,
      children.map((r) => `${r.state} ${r.recvQ}`).join(", "),
    );
    ctx.say(
      "kodos's kernel holds all four messages (and three FINs, counted as one byte each) in children nobody accepted",
    );

    // The receiver gives up (its application restarts, or closes the port): the queued children are reset.
    // No answer came while we looked (in a slow guest the looks take longer than any bounded wait);
    // the wait is a poll started now, so the time of the answer is when the kernel woke it.
    ctx.expectOk(await ctx.pollNames("kang", d, POLLIN | POLLRDHUP, 0, "poll (d, no answer yet)"), "nothing");
    const dWoke = ctx.pollNames("kang", d, POLLIN | POLLRDHUP, APP_ACK_TIMEOUT_MS);
    const closeAt = ctx.now();
    await listener.close();
    ctx.say("kodos closes its listener without ever accepting");
    const woke = await dWoke;
    const dResult = await ctx.attempt("kang", "read (d)", () => d.read(1));
    ctx.expectErrno(dResult, "ECONNRESET", { headline: true });
    ctx.expectTime(
      "the acknowledging sender learns of the loss after the listener closes",
      { ms: 0, toleranceMs: tolerance(0), why: "the RST kodos sends for each queued child" },
      (woke.atUs - closeAt) / 1000,
    );
    const gone = await waitForNoRow(kang, (r) => ports.includes(r.local.port), 1000);
    ctx.expectEqual("kang's sockets for the four connections after the RSTs", "none", gone ? "none" : "some left");
    ctx.expectEqual("kodos's children after the listener closed", 0, (await childRows(kodos, ports)).length);

    const states = await stateChanges(lab);
    if (states.available) {
      const resets = states.events.filter(
        (ev) => ev.event === "tcp_send_reset" && ev.saddr === kodos.ipv4 && ev.sport === PORT && ev.atUs >= closeAt,
      );
      ctx.expectEqual(
        "RSTs kodos sent when its listener closed (to a, b, c, d)",
        ports.join(","),
        [...new Set(resets.map((ev) => ev.dport))].sort((x, y) => ports.indexOf(x) - ports.indexOf(y)).join(","),
      );
      const heard = states.events.filter(
        (ev) => ev.event === "tcp_receive_reset" && ev.saddr === kang.ipv4 && ports.includes(ev.sport),
      );
      ctx.expectEqual(
        "kang's sockets that took the RST as an error",
        String(ports[3]),
        heard.map((ev) => ev.sport).join(","),
      );
    } else {
      ctx.say(`tracepoints unavailable (${states.reason}): the RSTs are not checked`);
    }

    // (b') SO_LINGER when no ACK comes (the receiver silent): close blocks the whole linger time, returns 0.
    const lingerListener = await kodos.listen(LINGER_PORT, { backlog: 8 });
    const f = await amy.connect(kodos.ipv4, LINGER_PORT);
    const fPort = await portOf(f);
    await lab.partition([amy], [kodos]);
    ctx.expectOk(await ctx.attempt("amy", `SO_LINGER {1, ${LINGER_S}} (b')`, () => f.setLinger(1, LINGER_S)));
    ctx.expectOk(await ctx.attempt("amy", "write (b')", () => f.write(MESSAGE)), MESSAGE.length);
    const fClose = await timedClose(ctx, "amy", "close (b')", f);
    ctx.expectOk(fClose.closed, undefined, { headline: true });
    const lingerSilent = lingerCloseBlock(LINGER_S, false);
    // The linger wait is one schedule_timeout(): a timer_list, late by up to its wheel granularity.
    ctx.expectTime(
      `close with SO_LINGER {1, ${LINGER_S}} and no ACK`,
      timerChainExpectation([lingerSilent.minMs], lingerSilent.why),
      fClose.ms,
    );
    const orphan = await waitForRow(amy, (r) => r.local.port === fPort, 0);
    ctx.expectEqual(
      "amy's socket after that close",
      `FIN_WAIT1 ${MESSAGE.length + 1} orphan`,
      orphan ? `${orphan.state} ${orphan.sendQ}${orphan.orphan ? " orphan" : ""}` : "none",
    );
    ctx.say("amy's close returned 0 after the linger time; its data and FIN are still queued, owned by no one");
    await lab.heal();
    await lingerListener.close();
  },
};
