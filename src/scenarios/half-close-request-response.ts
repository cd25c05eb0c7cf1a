// Half-close request/response: the client sends its requests and shutdown(SHUT_WR), then reads every response and EOF; nothing is lost.
import { type SocketCondition, tcpPollRevents } from "../model/close.js";
import { TCP_TIMEWAIT_LEN_MS, tolerance } from "../model/tcp.js";
import { POLLIN, POLLRDHUP } from "../sys/constants.js";
import type { Scenario } from "./scenario.js";
import { connection, kangAndKodos, SERVER_PORT, stateChanges, tcpTimers, waitForNoRow, waitForRow } from "./steps.js";

const REQUESTS = ["GET /a\n", "GET /b\n", "GET /c\n"];
// Each response is several segments long, so the answer spans many segments and reads.
const RESPONSE_BYTES = 3000;
// The client reads in pieces smaller than a response: EOF must come after the very last piece.
const READ_CHUNK = 1000;

// Response i: a header naming it, then a filler letter of its own, so order and completeness show.
const response = (i: number) => {
  const head = `RSP ${i} `;
  return Buffer.concat([Buffer.from(head), Buffer.alloc(RESPONSE_BYTES - head.length, 0x61 + i)]);
};

export const scenario: Scenario = {
  name: "half-close-request-response",
  seed: "001_af96411e377219e9.txt (first half: the client's half-close)",
  question:
    "When the client sends its requests and shuts down its sending side, does it still receive every response, in order, with EOF only after the last?",
  seedSays:
    "The client sends its request and shutdown(); it can no longer send but can still receive. The server receives the data, processes it, sends the responses, receives the FIN, then sends FIN back; the client reads the responses, then the FIN, and knows nothing was lost.",
  faults: [],
  timeoutMs: 10_000,
  async run(ctx) {
    const { lab } = ctx;
    const { kang, kodos, listener } = await kangAndKodos(lab);
    const { client, server, port } = await connection(kang, kodos, listener);
    const { rtoMs } = await tcpTimers(client);
    // Nothing here is lost, so every wait is one LAN delivery; a retransmission (one RTO) is the most it may take.
    const boundMs = rtoMs + tolerance(rtoMs);

    for (const r of REQUESTS) await client.write(r);
    ctx.expectOk(await ctx.attempt("kang", "shutdown(SHUT_WR)", () => client.shutdown("SHUT_WR")));
    ctx.say(`kang sends ${REQUESTS.length} requests and shuts down its sending side`);

    const received: Buffer[] = [];
    for (;;) {
      const r = await ctx.attempt("kodos", "read", () => server.readAsync(4096, { timeoutMs: boundMs }));
      if (!r.ok || r.value === undefined || r.value.length === 0) {
        ctx.expectOk(r, "0 (EOF)", { headline: true });
        break;
      }
      received.push(r.value);
    }
    ctx.expectEqual(
      "requests kodos read before EOF",
      JSON.stringify(REQUESTS.join("")),
      JSON.stringify(Buffer.concat(received).toString()),
    );
    ctx.expectEqual("kodos's state after reading EOF", "CLOSE_WAIT", (await server.tcpInfo()).stateName);

    const total = RESPONSE_BYTES * REQUESTS.length;
    const mss = Number((await server.tcpInfo()).snd_mss);
    ctx.expectThat(
      "the responses span more than one segment",
      total > mss,
      `more than the MSS (${mss} bytes)`,
      `${total} bytes`,
    );
    for (let i = 0; i < REQUESTS.length; i++) {
      ctx.expectOk(await ctx.attempt("kodos", "write", () => server.write(response(i))), RESPONSE_BYTES);
      const clientState = await waitForRow(
        kang,
        (row) => row.local.port === port && row.state === "FIN_WAIT2",
        boundMs,
      );
      ctx.expectEqual(
        `kang's state while kodos sends response ${i}`,
        "FIN_WAIT2",
        clientState?.state ?? "not FIN_WAIT2",
        {
          headline: i === 0,
        },
      );
      ctx.expectEqual(`kodos's state while sending response ${i}`, "CLOSE_WAIT", (await server.tcpInfo()).stateName, {
        headline: i === 0,
      });
    }
    ctx.say(`kodos, in CLOSE_WAIT, sends ${REQUESTS.length} responses of ${RESPONSE_BYTES} bytes`);
    const sent = await server.tcpInfo();
    ctx.observe("data segments kodos sent", Number(sent.data_segs_out));
    ctx.expectThat(
      "data segments kodos sent",
      Number(sent.data_segs_out) >= Math.ceil(total / mss),
      `at least ${Math.ceil(total / mss)} (${total} bytes / MSS ${mss})`,
      String(sent.data_segs_out),
    );

    // The responses are all queued at kang, but kodos has not closed: readable, not yet at EOF.
    const halfClosed: SocketCondition = {
      queued: total,
      finReceived: false,
      resetReceived: false,
      errorPending: false,
      sentFin: true,
    };
    const before = await ctx.pollNames("kang", client, POLLIN | POLLRDHUP, boundMs);
    ctx.expectOk(before, tcpPollRevents(halfClosed, POLLIN | POLLRDHUP).join("|"));
    await server.close();
    ctx.say("kodos closes: its FIN follows the last response");
    const after = await ctx.attempt("kang", "poll after kodos's close", async () => {
      const r = await client.poll(POLLRDHUP, boundMs);
      return r.timedOut ? [] : ((await client.poll(POLLIN | POLLRDHUP, 0)).outcomes[0]?.names ?? []);
    });
    // kang shut its own side first, so kodos's FIN shuts both: POLLHUP too, with the data still queued.
    ctx.expectOk(after, tcpPollRevents({ ...halfClosed, finReceived: true }, POLLIN | POLLRDHUP).join("|"), {
      headline: true,
    });

    const chunks: Buffer[] = [];
    const sizes: number[] = [];
    for (;;) {
      const r = await ctx.attempt("kang", "read", () => client.read(READ_CHUNK));
      if (!r.ok || r.value === undefined) {
        ctx.expectOk(r, "data or 0 (EOF)");
        break;
      }
      sizes.push(r.value.length);
      if (r.value.length === 0) break;
      chunks.push(Buffer.from(r.value));
    }
    const got = Buffer.concat(chunks);
    const expected = Buffer.concat(REQUESTS.map((_, i) => response(i)));
    ctx.observe("reads kang made, EOF included", sizes.length);
    ctx.expectEqual("response bytes kang read before EOF", expected.length, got.length, { headline: true });
    const firstDiff = expected.findIndex((b, i) => got[i] !== b);
    ctx.expectEqual(
      "response bytes in order (first byte that differs)",
      "none",
      firstDiff < 0 ? "none" : `offset ${firstDiff}`,
      { headline: true },
    );
    ctx.expectEqual("kang's last read", "0 (EOF)", sizes[sizes.length - 1] === 0 ? "0 (EOF)" : String(sizes.at(-1)), {
      headline: true,
    });
    ctx.expectOk(await ctx.attempt("kang", "read after EOF", () => client.read(READ_CHUNK)), "0 (EOF)");

    const tw = await waitForRow(kang, (r) => r.local.port === port && r.state === "TIME_WAIT", boundMs);
    ctx.expectEqual("kang's final state", "TIME_WAIT", tw?.state ?? "none", { headline: true });
    ctx.expectTime(
      "kang's TIME_WAIT timer",
      { ms: TCP_TIMEWAIT_LEN_MS, toleranceMs: tolerance(TCP_TIMEWAIT_LEN_MS), why: "TCP_TIMEWAIT_LEN, just entered" },
      tw?.timer?.expiresMs ?? 0,
    );
    const gone = await waitForNoRow(kodos, (r) => r.local.port === SERVER_PORT && r.peer.port === port, boundMs);
    ctx.expectEqual("kodos keeps no socket for the connection", true, gone, { headline: true });

    const states = await stateChanges(lab);
    if (states.available) {
      ctx.expectEqual(
        "kang's path",
        "ESTABLISHED>FIN_WAIT1>FIN_WAIT2>CLOSE",
        states.path(kang.ipv4, port, "ESTABLISHED"),
      );
      ctx.expectEqual(
        "kodos's path",
        "ESTABLISHED>CLOSE_WAIT>LAST_ACK>CLOSE",
        states.path(kodos.ipv4, SERVER_PORT, "ESTABLISHED", port),
      );
      const acked = states.enteredAt(kang.ipv4, port, "FIN_WAIT2");
      const finSent = states.enteredAt(kang.ipv4, port, "FIN_WAIT1");
      // tcp_fin() puts kodos in pingpong mode, so its ACK of the FIN is delayed and rides on the
      // first response when that comes sooner than the delayed-ACK timer.
      if (acked !== undefined && finSent !== undefined)
        ctx.observe("kang's FIN acknowledged after", Math.round((acked - finSent) / 1000), "ms");
    } else {
      ctx.say(`tracepoints unavailable (${states.reason}): state paths not checked`);
    }
  },
};
