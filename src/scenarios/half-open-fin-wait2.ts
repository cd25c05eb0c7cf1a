// Half-open after close: the closer's orphaned FIN_WAIT2 times out silently, the CLOSE_WAIT side stays, its write draws an RST.
import type { SocketRow } from "../evidence/socket-table.js";
import type { Host, HostSocket } from "../lab/host.js";
import { AFTER_FIN, AFTER_RST, readSequence, resetErrno, reventsText } from "../model/close.js";
import { DEFAULTS, humanMs, TCP_RTO_MIN_MS, timerChainExpectation } from "../model/tcp.js";
import { type FinWait2Lifetime, finWait2Lifetime } from "../model/timers.js";
import { POLLIN, POLLOUT, POLLRDHUP } from "../sys/constants.js";
import { errnoName } from "../sys/errors.js";
import type { Scenario } from "./scenario.js";
import { checkSentReset, connection, kangAndKodos, SERVER_PORT, stateChanges, tcpTimers, waitForRow } from "./steps.js";

const FIN_TIMEOUT_S = 3;
const LINGER2_SHORT_S = 1;
// Above TCP_TIMEWAIT_LEN (60 s): the keepalive timer takes the first part, and the lifetime comes out at 2 x (61 - 60) s.
const LINGER2_LONG_S = 61;

// SO_ERROR as a program reads it: 0, or the errno's name.
const pendingError = (err: number) => (err === 0 ? 0 : errnoName(err));

/** One of kodos's connections and how its orphan should end. */
interface Orphan {
  readonly label: string;
  readonly client: HostSocket;
  readonly port: number;
  readonly lifetime: FinWait2Lifetime;
}

/** One look at the table: when ss ran, and the row each matcher found. */
interface Look {
  readonly beforeUs: number;
  readonly afterUs: number;
  readonly rows: ReadonlyArray<SocketRow | undefined>;
}

/**
 * Watches several rows with one ss per look until all are gone (bounded): when each left, between
 * the last look that saw it (or seenUs) and the first that did not (as rowGone), and the looks themselves.
 */
function watchOrphans(
  host: Host,
  matches: ReadonlyArray<(r: SocketRow) => boolean>,
  timeoutMs: number,
  now: () => number,
  seenUs: number,
) {
  const looks: Look[] = [];
  const waiters: Array<() => void> = [];
  let done = false;
  const gone = (async () => {
    // Where the first look finds a row gone, it went after the caller last knew it there.
    const lastSeen = matches.map(() => seenUs);
    const result: Array<{ cleared: boolean; atUs: number; uncertaintyUs: number } | undefined> = matches.map(
      () => undefined,
    );
    const deadline = Date.now() + timeoutMs;
    while (result.some((r) => r === undefined)) {
      const beforeUs = now();
      const table = await host.sockets();
      const afterUs = now();
      const rows = matches.map((m) => table.find(m));
      looks.push({ beforeUs, afterUs, rows });
      for (const w of waiters.splice(0)) w();
      rows.forEach((row, i) => {
        if (result[i] !== undefined) return;
        if (row) lastSeen[i] = beforeUs;
        else
          result[i] = {
            cleared: true,
            atUs: ((lastSeen[i] as number) + afterUs) / 2,
            uncertaintyUs: (afterUs - (lastSeen[i] as number)) / 2,
          };
      });
      if (Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    done = true;
    for (const w of waiters.splice(0)) w();
    return result.map((r) => r ?? { cleared: false, atUs: now(), uncertaintyUs: 0 });
  })();
  /** The first look (from now on, or already made) whose rows pass `test`, waiting up to boundMs. */
  const firstLook = async (test: (rows: Look["rows"]) => boolean, boundMs: number): Promise<Look | undefined> => {
    const until = Date.now() + boundMs;
    let seen = 0;
    for (;;) {
      const hit = looks.slice(seen).find((l) => test(l.rows));
      if (hit) return hit;
      seen = looks.length;
      if (done || Date.now() >= until) return undefined;
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  return { gone, firstLook };
}

export const scenario: Scenario = {
  name: "half-open-fin-wait2",
  seed: "000_c3942d4e008b9feb.txt (puzzler 3: broken connection with no failure)",
  question:
    "When the server exits and the client keeps its socket open after reading 0, how long does the server's FIN_WAIT2 last, and what do the client's later calls get?",
  seedSays:
    "kodos sits in FIN_WAIT_2 and kang in CLOSE_WAIT; a minute later the connection is gone from kodos (torn down without sending anything) but still in CLOSE_WAIT on kang; kang's write then succeeds, kodos answers with RST, poll wakes (0x10) and read fails with ECONNRESET.",
  linux:
    "The orphan's lifetime is the socket's TCP_LINGER2, else tcp_fin_timeout (60 s by default, per network namespace), never below 3.5 RTO (tcp_fin_time). When the ACK of the FIN reaches the orphan, tcp_rcv_state_process turns it into a FIN_WAIT2 TIME_WAIT mini-socket (ss: FIN-WAIT-2, timer timewait) that the timer wheel removes up to one granularity late (256 ms for 3 s at HZ=250); a lifetime above 60 s goes through the keepalive timer first and lasts 2 x (lifetime - 60 s). The RST differs from the seed: tcp_reset records EPIPE, not ECONNRESET, for a socket in CLOSE_WAIT, and tcp_recvmsg reports the end of stream already received (SOCK_DONE) before any pending error, so poll says POLLERR|POLLHUP but read returns 0; only SO_ERROR (EPIPE) or a write (EPIPE) shows the reset.",
  faults: ["exitApplication"],
  timeoutMs:
    Math.max(
      ...[undefined, LINGER2_SHORT_S, LINGER2_LONG_S].map(
        (linger2S) => finWait2Lifetime({ finTimeoutS: FIN_TIMEOUT_S, rtoMs: TCP_RTO_MIN_MS, linger2S }).ms,
      ),
    ) + 8000,
  async run(ctx) {
    const { lab } = ctx;
    const { kang, kodos, listener } = await kangAndKodos(lab, {
      kodos: { sysctls: { "net.ipv4.tcp_fin_timeout": FIN_TIMEOUT_S } },
    });
    const pollOn = (sock: HostSocket, call: string, events: number) => ctx.pollNames("kang", sock, events, 2000, call);
    const orphans: Orphan[] = [];
    for (const linger2S of [undefined, LINGER2_SHORT_S, LINGER2_LONG_S]) {
      const { client, server, port } = await connection(kang, kodos, listener);
      const label = linger2S === undefined ? `tcp_fin_timeout=${FIN_TIMEOUT_S}` : `TCP_LINGER2=${linger2S}`;
      if (linger2S === undefined) {
        // Unset, the option reads as the namespace's tcp_fin_timeout.
        ctx.expectEqual(
          "TCP_LINGER2 unset reads tcp_fin_timeout",
          FIN_TIMEOUT_S,
          await server.getOption("TCP_LINGER2"),
          {
            unit: "s",
          },
        );
      } else {
        // Set before close, it overrides tcp_fin_timeout for this socket's orphan.
        await server.setOption("TCP_LINGER2", linger2S);
        ctx.expectEqual(`${label} read back`, linger2S, await server.getOption("TCP_LINGER2"), { unit: "s" });
      }
      const { rtoMs } = await tcpTimers(server);
      const lifetime = finWait2Lifetime({ finTimeoutS: FIN_TIMEOUT_S, rtoMs, ...(linger2S ? { linger2S } : {}) });
      orphans.push({ label, client, port, lifetime });
    }
    const [plain, , long] = orphans as [Orphan, Orphan, Orphan];
    const byDefault = finWait2Lifetime({ finTimeoutS: DEFAULTS.tcp_fin_timeout, rtoMs: TCP_RTO_MIN_MS });
    ctx.observe("FIN_WAIT2 lifetime with default sysctls (model)", byDefault.ms, "ms");
    ctx.say(
      `with the default tcp_fin_timeout=${DEFAULTS.tcp_fin_timeout} the FIN_WAIT2 would last ${humanMs(byDefault.ms)}`,
    );
    ctx.say("connected three times; kodos sets TCP_LINGER2 on two of its sockets");

    const exitAt = ctx.now();
    await lab.exitApplication(kodos);
    ctx.say("kodos's process exits; kang reads end of stream and keeps its sockets open");
    const of = (o: Orphan) => (r: SocketRow) => r.local.port === SERVER_PORT && r.peer.port === o.port;
    // The orphans are watched from the exit on, and the table looked at at once: in a slow guest
    // kang's calls below take longer than the shortest lifetime.
    // One ss per look for all three (three watchers at once saturate a TCG guest's CPUs).
    const watch = watchOrphans(
      kodos,
      orphans.map((o) => of(o)),
      Math.max(...orphans.map((o) => o.lifetime.ms)) + 8000,
      () => ctx.now(),
      exitAt,
    );
    const fw2Look = await watch.firstLook((rows) => rows[0]?.state === "FIN_WAIT2", 1000);
    const fw2 = fw2Look?.rows[0];
    const longLook = await watch.firstLook((rows) => rows[2]?.state !== "FIN_WAIT1", 1000);
    const fw2Long = longLook?.rows[2];
    const lookFromUs = longLook?.beforeUs ?? Number.NaN;
    const lookToUs = longLook?.afterUs ?? Number.NaN;
    for (const o of orphans) {
      const first = o === plain;
      ctx.expectOk(
        await pollOn(o.client, `poll (${o.label})`, POLLIN | POLLRDHUP),
        reventsText(AFTER_FIN, POLLIN | POLLRDHUP),
        { headline: first },
      );
      ctx.expectOk(await ctx.attempt("kang", `read (${o.label})`, () => o.client.read(1024)), "0 (EOF)", {
        headline: first,
      });
    }
    ctx.expectEqual("kang's state after reading 0", "CLOSE_WAIT", (await plain.client.tcpInfo()).stateName, {
      headline: true,
    });
    ctx.expectEqual("kodos's state after the exit", "FIN_WAIT2", fw2?.state ?? "none", { headline: true });
    ctx.expectThat(
      "kodos's FIN_WAIT2",
      fw2?.orphan === true && fw2.timer?.name === "timewait",
      "an orphan with a timewait timer (the FIN_WAIT2 mini-socket)",
      fw2 ? `orphan ${fw2.orphan}, timer ${fw2.timer?.raw ?? "none"}` : "no row",
    );
    // Read the trace now, close to the events: the ring buffer is shared with every lab on the machine.
    const early = await stateChanges(lab);
    // The long orphan keeps a full socket on the keepalive timer for its first phase, then becomes a
    // mini-socket: which one the look saw depends on when, after its FIN_WAIT2 began, it looked.
    const longFrom = early.available ? early.enteredAt(kodos.ipv4, SERVER_PORT, "FIN_WAIT2", long.port) : undefined;
    const phaseMs = long.lifetime.timersMs.length > 1 ? (long.lifetime.timersMs[0] as number) : 0;
    const seenAt = {
      fromMs: (lookFromUs - (longFrom ?? exitAt)) / 1000,
      toMs: (lookToUs - (longFrom ?? exitAt)) / 1000,
    };
    const keepaliveTimer = timerChainExpectation([phaseMs], "the keepalive phase");
    const lifeTimer = timerChainExpectation(long.lifetime.timersMs, long.lifetime.why);
    const wantTimer = [
      ...(seenAt.fromMs < keepaliveTimer.ms + keepaliveTimer.toleranceMs ? ["keepalive"] : []),
      ...(seenAt.toMs >= phaseMs && seenAt.fromMs < lifeTimer.ms + lifeTimer.toleranceMs ? ["timewait"] : []),
      ...(seenAt.toMs >= long.lifetime.ms ? ["no row"] : []),
    ].join(" or ");
    const gotTimer = fw2Long?.timer?.name ?? (fw2Long ? "none" : "no row");
    ctx.expectThat(
      `kodos's FIN_WAIT2 timer with ${long.label}`,
      wantTimer.split(" or ").includes(gotTimer),
      `${wantTimer} (looked ${Math.round(seenAt.fromMs)} to ${Math.round(seenAt.toMs)} ms into its FIN_WAIT2; the keepalive phase lasts ${phaseMs} ms)`,
      gotTimer,
    );
    const fw2At = new Map(
      orphans.map((o) => [
        o,
        early.available ? early.enteredAt(kodos.ipv4, SERVER_PORT, "FIN_WAIT2", o.port) : undefined,
      ]),
    );
    if (early.available) {
      ctx.expectEqual(
        "kang's path after the exit",
        "ESTABLISHED>CLOSE_WAIT",
        early.path(kang.ipv4, plain.port, "ESTABLISHED"),
      );
      ctx.expectEqual(
        "kodos's path (then a FIN_WAIT2 mini-socket)",
        "ESTABLISHED>FIN_WAIT1>FIN_WAIT2>CLOSE",
        early.path(kodos.ipv4, SERVER_PORT, "ESTABLISHED", plain.port),
      );
    }

    // All three orphans are watched at once; each lifetime runs from the ACK of its FIN.
    const gone = await watch.gone;
    const states = await stateChanges(lab);
    orphans.forEach((o, i) => {
      const g = gone[i] as { cleared: boolean; atUs: number; uncertaintyUs: number };
      const from = fw2At.get(o) ?? exitAt;
      ctx.expectThat(
        `kodos's FIN_WAIT2 with ${o.label} removed`,
        g.cleared,
        "gone",
        g.cleared ? "gone" : "still there",
      );
      // The table is looked at by running ss: the time between two looks widens the tolerance.
      const model = timerChainExpectation(o.lifetime.timersMs, o.lifetime.why);
      ctx.expectTime(
        `FIN_WAIT2 lifetime with ${o.label}`,
        { ...model, toleranceMs: model.toleranceMs + Math.ceil(g.uncertaintyUs / 1000) },
        (g.atUs - from) / 1000,
        { headline: true },
      );
    });

    const closeWait = await waitForRow(kang, (r) => r.local.port === plain.port, 0);
    ctx.expectEqual("kang's row after kodos's FIN_WAIT2 is gone", "CLOSE_WAIT", closeWait?.state ?? "none", {
      headline: true,
    });
    if (states.available) {
      ctx.expectEqual(
        "RSTs kodos sent as its FIN_WAIT2s went away",
        0,
        states.events.filter((e) => e.event === "tcp_send_reset").length,
      );
    }

    const message = "kodos, are you there?\n";
    const sent = await ctx.attempt("kang", "write", () => plain.client.write(message));
    ctx.expectOk(sent, Buffer.byteLength(message), { headline: true });
    // The RST finds kang in CLOSE_WAIT: the FIN is in, and now the error too.
    const reset = { ...AFTER_RST, finReceived: true };
    const woke = await pollOn(plain.client, "poll (after the write)", POLLIN | POLLOUT | POLLRDHUP);
    ctx.expectOk(woke, reventsText(reset, POLLIN | POLLOUT | POLLRDHUP), { headline: true });
    // The FIN came first: tcp_recvmsg reports end of stream (SOCK_DONE) before it looks at sk_err.
    ctx.expectOk(
      await ctx.attempt("kang", "read", () => plain.client.read(1024)),
      readSequence(reset, "CLOSE_WAIT")[0],
      { headline: true },
    );
    // tcp_reset records EPIPE, not ECONNRESET, for a socket in CLOSE_WAIT; the read left it pending.
    ctx.expectOk(
      await ctx.attempt("kang", "SO_ERROR", async () => pendingError(await plain.client.takeError())),
      resetErrno("CLOSE_WAIT"),
      { headline: true },
    );
    ctx.expectErrno(await ctx.attempt("kang", "write again", () => plain.client.write(message)), "EPIPE", {
      headline: true,
    });
    ctx.expectEqual("kang's state after the RST", "CLOSE", (await plain.client.tcpInfo()).stateName);

    const after = await stateChanges(lab);
    if (after.available) {
      const rst = after.events.filter((e) => e.event === "tcp_send_reset" && e.dport === plain.port);
      // kodos's FIN_WAIT2 is gone: the RST goes out with no socket, which kernels before 6.10 do not
      // trace; kang's tcp_receive_reset shows it arrive on every kernel.
      checkSentReset(ctx, "kodos's answer to the write", kodos, rst, "no socket", "NO_SOCKET");
      const got = after.events.filter(
        (e) => e.event === "tcp_receive_reset" && e.saddr === kang.ipv4 && e.sport === plain.port,
      );
      ctx.expectEqual("RSTs kang received (tcp_receive_reset)", 1, got.length);
      ctx.expectEqual("kang's path after the RST", "CLOSE_WAIT>CLOSE", after.path(kang.ipv4, plain.port, "CLOSE_WAIT"));
    } else {
      ctx.say(
        `tracepoints unavailable (${after.reason}): lifetimes timed from the exit, the RST seen through SO_ERROR`,
      );
    }
  },
};
