// What is readable: revents and MSG_PEEK on an idle socket, after the peer's FIN, after a RST, with and without data queued ahead.
import type { HostSocket } from "../lab/host.js";
import {
  AFTER_FIN,
  AFTER_RST,
  IDLE,
  RST_REASON,
  readSequence,
  resetErrno,
  reventsText,
  type SocketCondition,
  sendResetTrace,
} from "../model/close.js";
import { tolerance } from "../model/tcp.js";
import { POLLIN, POLLOUT, POLLRDHUP } from "../sys/constants.js";
import { errnoName } from "../sys/errors.js";
import { describeOutcome, isErrnoName, type Scenario, type ScenarioContext } from "./scenario.js";
import { connection, kangAndKodos, stateChanges, tcpTimers } from "./steps.js";

// How long the idle socket is polled: long enough to tell a timeout from an early wake-up.
const IDLE_POLL_MS = 300;
// What the peer sends ahead of its FIN or RST where a case has data queued.
const DATA = "last words before the end\n";
const READ = POLLIN | POLLRDHUP;
const READ_WRITE = POLLIN | POLLOUT | POLLRDHUP;

// Polls in place (the event has already arrived), for reading only and for reading and writing,
// and compares both with tcp_poll() as the model has it.
async function revents(ctx: ScenarioContext, when: string, reader: HostSocket, c: SocketCondition, headline = false) {
  for (const [events, name] of [
    [READ, "POLLIN|POLLRDHUP"],
    [READ_WRITE, "POLLIN|POLLOUT|POLLRDHUP"],
  ] as const) {
    const o = await ctx.pollNames("kang", reader, events, 0, `${when}: poll(${name})`);
    ctx.expectOk(o, reventsText(c, events), { headline: headline && events === READ });
    ctx.observe(`revents ${when} (${name})`, describeOutcome(o));
  }
}

// Peeks twice, then reads to the end, each call against tcp_recvmsg() as the model has it: a peek
// leaves data in place but takes a pending error; reads take data, then the error, then 0 for ever.
async function peekThenRead(
  ctx: ScenarioContext,
  when: string,
  reader: HostSocket,
  c: SocketCondition,
  resetState?: string,
) {
  const expected = readSequence(c, resetState);
  const peek = () => reader.recv(4096, ["MSG_PEEK", "MSG_DONTWAIT"]);
  const want = expected[0] ?? "";
  const first = await ctx.attempt("kang", `${when}: recv(MSG_PEEK|MSG_DONTWAIT)`, peek);
  ctx.expectOutcome(first, want, { headline: true });
  ctx.observe(`MSG_PEEK ${when}`, describeOutcome(first));
  let rest = expected;
  if (isErrnoName(want)) {
    // The peek took the error: POLLERR is gone, and the reads go on from what follows it.
    ctx.expectEqual(`${when}: SO_ERROR after the peek`, "0", String(await reader.takeError()));
    await revents(ctx, `${when}, error taken`, reader, { ...c, errorPending: false });
    rest = expected.slice(1);
  } else if (c.queued > 0) {
    const again = await ctx.attempt("kang", `${when}: recv(MSG_PEEK|MSG_DONTWAIT) again`, peek);
    ctx.expectOk(again, want);
    ctx.expectEqual(`${when}: peeked bytes`, JSON.stringify(DATA), JSON.stringify(again.value?.toString() ?? ""));
  }
  const reads: string[] = [];
  for (const next of rest) {
    const r = await ctx.attempt("kang", `${when}: read`, () => reader.read(4096));
    ctx.expectOutcome(r, next);
    reads.push(describeOutcome(r));
  }
  ctx.observe(`reads ${when}`, reads.join(", "));
  ctx.expectOk(await ctx.attempt("kang", `${when}: recv(MSG_PEEK|MSG_DONTWAIT) at the end`, peek), "0 (EOF)");
}

export const scenario: Scenario = {
  name: "what-is-readable",
  seed: '003_4cf9e29935512145.txt (what constitutes "readable"; how to check a TCP peer is closed)',
  question:
    "What do poll's revents and recv(MSG_PEEK) report on an idle socket, after the peer's FIN, after a RST, and with data queued ahead of either?",
  seedSays:
    "If there is data available to be read, even if the connection is closed, POLLIN is returned. If neither reading or writing is possible (the connection is closed both ways or broken), POLLHUP or POLLERR.",
  linux:
    "Linux agrees that queued data is POLLIN whatever happened behind it, and adds more: tcp_poll() sets POLLIN|POLLRDHUP as soon as the receive side is shut (the peer's FIN, or the RST through tcp_done()), with nothing queued, because a read would not block: it returns 0 or the error. POLLHUP comes only when both directions are shut (a RST, or FINs both ways), never after the peer's FIN alone, and comes with POLLIN, and with POLLOUT when asked (after SEND_SHUTDOWN a write fails at once). POLLERR lasts only while sk_err is pending: the first recv takes it, even with MSG_PEEK (sock_error() clears it), as does SO_ERROR; the socket then shows POLLIN|POLLHUP|POLLRDHUP and reads 0 for ever. A RST does not discard the receive queue (tcp_done_with_error() purges only the write queue): the data is read first, then ECONNRESET, then 0. A RST that follows the peer's FIN is never seen by read(): SOCK_DONE makes tcp_recvmsg() return 0 before it looks at sk_err (EPIPE, as tcp_reset() sets it in CLOSE_WAIT), which only POLLERR and SO_ERROR show.",
  faults: [],
  timeoutMs: 10_000,
  async run(ctx) {
    const { lab } = ctx;
    const { kang, kodos, listener } = await kangAndKodos(lab);
    const open = async () => {
      const { client: reader, server: peer } = await connection(kang, kodos, listener);
      const { rtoMs } = await tcpTimers(reader);
      return { reader, peer, boundMs: rtoMs + tolerance(rtoMs) };
    };
    // Waits (bounded) until the peer's FIN or RST has been processed: POLLRDHUP, or POLLERR|POLLHUP.
    const arrived = async (reader: HostSocket, what: string, events: number, boundMs: number) => {
      const r = await reader.poll(events, boundMs);
      ctx.expectThat(`${what} arrived`, !r.timedOut, `within ${boundMs} ms`, r.timedOut ? "not yet" : "yes");
    };

    {
      const { reader } = await open();
      ctx.say("open and idle: kang polls for reading");
      const t0 = ctx.now();
      const o = await ctx.pollNames("kang", reader, READ, IDLE_POLL_MS, "idle: poll(POLLIN|POLLRDHUP)");
      ctx.expectOk(o, reventsText(IDLE, READ), { headline: true });
      ctx.expectTime(
        "idle: poll waited its whole timeout",
        { ms: IDLE_POLL_MS, toleranceMs: tolerance(IDLE_POLL_MS), why: "nothing to read: poll times out" },
        (o.atUs - t0) / 1000,
      );
      const w = await ctx.pollNames("kang", reader, READ_WRITE, 0, "idle: poll(POLLIN|POLLOUT|POLLRDHUP)");
      ctx.expectOk(w, reventsText(IDLE, READ_WRITE));
      const peek = await ctx.attempt("kang", "idle: recv(MSG_PEEK|MSG_DONTWAIT)", () =>
        reader.recv(4096, ["MSG_PEEK", "MSG_DONTWAIT"]),
      );
      ctx.expectErrno(peek, "EAGAIN", { headline: true });
    }

    {
      const { reader, peer, boundMs } = await open();
      await peer.close();
      ctx.say("kodos closes: its FIN arrives");
      await arrived(reader, "the FIN", POLLRDHUP, boundMs);
      const c = AFTER_FIN;
      await revents(ctx, "after FIN", reader, c, true);
      await peekThenRead(ctx, "after FIN", reader, c);
    }

    {
      const { reader, peer, boundMs } = await open();
      await peer.write(DATA);
      await peer.close();
      ctx.say(`kodos writes ${DATA.length} bytes and closes: data, then FIN`);
      await arrived(reader, "the FIN behind data", POLLRDHUP, boundMs);
      const c = { ...AFTER_FIN, queued: DATA.length };
      ctx.expectEqual("FIN behind data: bytes queued (SIOCINQ)", DATA.length, await reader.inq());
      await revents(ctx, "FIN behind data", reader, c, true);
      await peekThenRead(ctx, "FIN behind data", reader, c);
    }

    {
      const { reader, peer, boundMs } = await open();
      await peer.setLinger(1, 0);
      await peer.close();
      ctx.say("kodos closes with SO_LINGER {1, 0}: a RST");
      await arrived(reader, "the RST", POLLRDHUP, boundMs);
      const c = AFTER_RST;
      ctx.expectEqual("after RST: state", "CLOSE", (await reader.tcpInfo()).stateName);
      await revents(ctx, "after RST", reader, c, true);
      await peekThenRead(ctx, "after RST", reader, c);
    }

    {
      const { reader, peer, boundMs } = await open();
      await peer.write(DATA);
      await peer.setLinger(1, 0);
      await peer.close();
      ctx.say(`kodos writes ${DATA.length} bytes and closes with SO_LINGER {1, 0}: data, then RST`);
      await arrived(reader, "the RST behind data", POLLRDHUP, boundMs);
      const c = { ...AFTER_RST, queued: DATA.length };
      ctx.expectEqual("RST behind data: bytes still queued (SIOCINQ)", DATA.length, await reader.inq(), {
        headline: true,
      });
      await revents(ctx, "RST behind data", reader, c, true);
      await peekThenRead(ctx, "RST behind data", reader, c);
    }

    {
      const { reader, peer, boundMs } = await open();
      await peer.shutdown("SHUT_WR");
      await arrived(reader, "the FIN before the RST", POLLRDHUP, boundMs);
      ctx.expectEqual("RST after FIN: state before the RST", "CLOSE_WAIT", (await reader.tcpInfo()).stateName);
      await peer.setLinger(1, 0);
      await peer.close();
      ctx.say("kodos half-closes (FIN), then closes with SO_LINGER {1, 0} (RST) while kang is in CLOSE_WAIT");
      // POLLHUP needs both directions shut: in CLOSE_WAIT only the RST brings it.
      await arrived(reader, "the RST after the FIN", 0, boundMs);
      const c = { ...AFTER_RST, finReceived: true };
      await revents(ctx, "RST after FIN", reader, c);
      await peekThenRead(ctx, "RST after FIN", reader, c, "CLOSE_WAIT");
      await revents(ctx, "RST after FIN, EOF read", reader, c);
      const err = await reader.takeError();
      ctx.expectEqual(
        "RST after FIN: SO_ERROR, which read never returned",
        resetErrno("CLOSE_WAIT") ?? "0",
        err ? errnoName(err) : "0",
        { headline: true },
      );
    }

    {
      const { reader, peer, boundMs } = await open();
      await peer.shutdown("SHUT_WR");
      await arrived(reader, "the FIN (both ways)", POLLRDHUP, boundMs);
      await reader.shutdown("SHUT_WR");
      ctx.say("kodos half-closes; kang reads nothing and half-closes too: FINs both ways, no error");
      const c = { ...AFTER_FIN, sentFin: true };
      await revents(ctx, "FIN both ways", reader, c, true);
      await peekThenRead(ctx, "FIN both ways", reader, c);
    }

    const trace = await stateChanges(lab);
    if (trace.available) {
      // Three cases end in a RST (after RST, RST behind data, RST after FIN); the FIN cases must have none.
      const resets = (event: string, host: string) =>
        trace.events.filter((e) => e.event === event && e.saddr === host).length;
      // kodos resets with its own sockets (SO_LINGER {1, 0}): traced on every kernel, reason or not.
      const traced = sendResetTrace("socket", RST_REASON.lingerZero, ctx.rule("send-reset-every-rst") === true).traced;
      ctx.expectEqual("RSTs kodos sent (tcp_send_reset)", traced ? 3 : 0, resets("tcp_send_reset", kodos.ipv4));
      ctx.expectEqual("RSTs kang received (tcp_receive_reset)", 3, resets("tcp_receive_reset", kang.ipv4));
    } else {
      ctx.say(`tracepoints unavailable (${trace.reason}): the RSTs are not counted`);
    }
  },
};
