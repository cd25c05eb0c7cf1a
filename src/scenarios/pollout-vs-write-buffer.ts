// POLLOUT vs the write buffer: how much "send until EAGAIN" and "send while POLLOUT" each queue
// to a peer that does not read, and what TCP_NOTSENT_LOWAT does to both.
import type { Host, HostSocket } from "../lab/host.js";
import {
  fillSendBuffer,
  GSO_MAX_SIZE,
  MAX_TCP_HEADER_RANGE,
  pollOutReady,
  type SendBufferFill,
  tcpSizeGoal,
} from "../model/queues.js";
import { POLLOUT } from "../sys/constants.js";
import type { Scenario, ScenarioContext } from "./scenario.js";
import { runOn } from "./steps.js";

const PORT = 8080;
// The seed's chunk.
const CHUNK = Buffer.alloc(16_384, 0x41);
// SO_SNDBUF as asked; the kernel doubles it (and locks it: no send-buffer autotuning).
const SNDBUF_REQUEST = 131_072;
// The client's receive buffer, fixed before connect (locks it: no receive autotuning). Large enough
// that half its window exceeds the device's GSO limit, so each skb holds a full GSO packet.
const RCVBUF_REQUEST = 200_000;
const LOWAT = 131_072;

type Program = "until-EAGAIN" | "while-POLLOUT";

/** The device's gso_max_size as `ip -d link` prints it (the lab's veth keeps the kernel default). */
async function gsoMaxSize(host: Host): Promise<number | undefined> {
  const m = /gso_max_size (\d+)/.exec((await runOn(host, ["ip", "-d", "link", "show", "dev", "eth0"])).stdout);
  return m ? Number(m[1]) : undefined;
}

/**
 * A connection whose client has stopped reading, with its window already closed: the server sends
 * exactly what the window offers, waits for the ACK, and repeats until the window is 0 and nothing
 * is left unacknowledged. The programs then fill an empty send queue that nothing drains.
 */
async function closedWindow(
  ctx: ScenarioContext,
  name: string,
  kang: Host,
  kodos: Host,
  listener: HostSocket,
  lowat?: number,
) {
  const client = await kang.socket();
  await client.setOption("SO_RCVBUF", RCVBUF_REQUEST);
  await client.connectAsync(kodos.ipv4, PORT, { timeoutMs: 2000 });
  const server = await listener.acceptAsync({ timeoutMs: 2000 });
  await server.setOption("SO_SNDBUF", SNDBUF_REQUEST);
  let maxWindow = 0;
  let absorbed = 0;
  const deadline = performance.now() + 3000;
  for (;;) {
    if (performance.now() > deadline) throw new Error("the client's window never closed");
    // SIOCOUTQ first: a window read before it may predate the ACK that emptied the queue.
    const outq = await server.outq();
    const info = await server.tcpInfo();
    maxWindow = Math.max(maxWindow, Number(info.snd_wnd));
    if (outq > 0) {
      await new Promise((r) => setTimeout(r, 1));
      continue;
    }
    if (Number(info.snd_wnd) === 0) break;
    absorbed += await server.send(Buffer.alloc(Number(info.snd_wnd), 0x42));
  }
  if (lowat !== undefined) await server.setOption("TCP_NOTSENT_LOWAT", lowat);
  const info = await server.tcpInfo();
  ctx.expectEqual(`${name}: the client's receive queue once its window closed`, absorbed, await client.inq());
  return { client, server, maxWindow, absorbed, mss: Number(info.snd_mss) };
}

/** The seed's 1A or 1B on a non-blocking socket: what each send returned, and the EAGAIN if any. */
async function runProgram(sock: HostSocket, program: Program): Promise<Array<number | "EAGAIN">> {
  const sends: Array<number | "EAGAIN"> = [];
  for (let i = 0; i < 1000; i++) {
    if (program === "while-POLLOUT") {
      const p = await sock.pollNow(POLLOUT);
      if (!(p.outcomes[0]?.names ?? []).includes("POLLOUT")) return sends;
    }
    try {
      sends.push(await sock.send(CHUNK));
    } catch (e) {
      if ((e as { code?: string }).code !== "EAGAIN") throw e;
      sends.push("EAGAIN");
      return sends;
    }
  }
  throw new Error(`${program} never stopped`);
}

/**
 * What one skb costs in sk_wmem_queued on this kernel besides its payload: one byte sent into a
 * closed window stays queued in one skb, and `ss -m` then shows w = overhead + 1. The cost is the
 * skb's true size, which follows the build (MAX_TCP_HEADER) and the allocator, so it is measured.
 */
async function measureSkbOverhead(ctx: ScenarioContext, kang: Host, kodos: Host, listener: HostSocket) {
  const conn = await closedWindow(ctx, "skb overhead probe", kang, kodos, listener);
  const sent = await conn.server.send(Buffer.from("x"));
  const q = await queueAtStop(kodos, conn.server, conn.client);
  await conn.client.close();
  await conn.server.close();
  if (sent !== 1 || q.outq !== 1 || !Number.isFinite(q.wmemQueued))
    throw new Error(`the skb overhead probe queued ${q.outq} bytes, sk_wmem_queued ${q.wmemQueued}: cannot measure`);
  return q.wmemQueued - 1;
}

async function queueAtStop(kodos: Host, server: HostSocket, client: HostSocket) {
  const { port } = await client.localAddress();
  const row = (await kodos.sockets()).find((r) => r.local.port === PORT && r.peer.port === port);
  return {
    outq: await server.outq(),
    notSent: await server.outqNotSent(),
    wmemQueued: row?.skmem?.w ?? Number.NaN,
    sndbuf: row?.skmem?.tb ?? Number.NaN,
    pollout: (await server.pollNow(POLLOUT)).outcomes[0]?.names.includes("POLLOUT") ?? false,
  };
}

export const scenario: Scenario = {
  name: "pollout-vs-write-buffer",
  seed: "004_41db9c39b506eeca.txt (TCP Puzzles, 1: Write buffer vs POLLOUT, programs 1A and 1B)",
  question:
    "To a client that does not read, how many bytes does 'send until EAGAIN' queue, and how many 'send while poll(POLLOUT) says writable', and what does TCP_NOTSENT_LOWAT change?",
  seedSays:
    "Program 1A (send 16 KiB chunks until send fails with EAGAIN) and program 1B (send while poll(POLLOUT, 0) is happy) behave differently; the reader is asked to explain how.",
  linux:
    "Both limits count sk_wmem_queued, the skbs' true size (payload plus a per-skb overhead that depends on the build: 832 bytes on the host's 6.18, measured on each kernel), not bytes. send() starts a new skb only while sk_wmem_queued < sk_sndbuf (and, with TCP_NOTSENT_LOWAT, while the unsent bytes are below the mark), and fills the tail skb to the size goal regardless, so 1A overshoots SO_SNDBUF by up to one skb. tcp_poll reports POLLOUT only while sk_sndbuf - sk_wmem_queued >= sk_wmem_queued / 2 (sk_stream_wspace >= sk_stream_min_wspace: a third of the buffer free), so 1B stops near two thirds. With TCP_NOTSENT_LOWAT poll also wants the unsent bytes doubled below the mark (tcp_stream_memory_free with wake=1), send only undoubled: 1B stops at half the mark, 1A at the first skb boundary past it.",
  faults: [],
  timeoutMs: 10_000,
  async run(ctx) {
    const { lab } = ctx;
    const kang = await lab.addHost("kang");
    const kodos = await lab.addHost("kodos");
    const listener = await kodos.listen(PORT);
    const gso = await gsoMaxSize(kodos);
    if (gso === undefined) ctx.say(`ip -d link did not print gso_max_size: the model assumes ${GSO_MAX_SIZE}`);
    ctx.observe("kodos eth0 gso_max_size", gso ?? GSO_MAX_SIZE, "bytes");
    ctx.observe("tcp_wmem (default, autotuned unless SO_SNDBUF is set)", await kodos.sysctl("net.ipv4.tcp_wmem"));
    ctx.say(
      "defaults: tcp_wmem starts a send buffer at 16 KiB and tcp_sndbuf_expand grows it with the congestion window, so without SO_SNDBUF the counts follow cwnd from run to run; the two rules (a new skb below sk_sndbuf, POLLOUT with a third free) stay the same",
    );
    ctx.say(
      `kang sets SO_RCVBUF ${RCVBUF_REQUEST} before connecting and never reads; kodos sets SO_SNDBUF ${SNDBUF_REQUEST} on the accepted socket; both are then locked, so neither buffer autotunes`,
    );

    const runs: Array<{ name: string; program: Program; lowat?: number }> = [
      { name: "1A", program: "until-EAGAIN" },
      { name: "1B", program: "while-POLLOUT" },
      { name: "1A with TCP_NOTSENT_LOWAT", program: "until-EAGAIN", lowat: LOWAT },
      { name: "1B with TCP_NOTSENT_LOWAT", program: "while-POLLOUT", lowat: LOWAT },
    ];
    const skbOverhead = await measureSkbOverhead(ctx, kang, kodos, listener);
    ctx.kernelValue("skb overhead in sk_wmem_queued (measured)", skbOverhead);
    ctx.observe("skb overhead in sk_wmem_queued (measured: 1 byte queued, ss -m w - 1)", skbOverhead, "bytes");
    ctx.say(
      `one byte sent into a closed window makes sk_wmem_queued ${skbOverhead + 1}: each skb costs ${skbOverhead} bytes besides its payload on this kernel`,
    );
    const results = new Map<string, { model: SendBufferFill; bytes: number }>();
    for (const run of runs) {
      const conn = await closedWindow(ctx, run.name, kang, kodos, listener, run.lowat);
      const sndbuf = await conn.server.getOption("SO_SNDBUF");
      // MAX_TCP_HEADER varies with the build; the goal is whole segments, so both ends of its range usually agree.
      const goals = MAX_TCP_HEADER_RANGE.map((maxTcpHeader) =>
        tcpSizeGoal({ mss: conn.mss, maxWindow: conn.maxWindow, gsoMaxSize: gso ?? GSO_MAX_SIZE, maxTcpHeader }),
      );
      const sizeGoal = goals[0] as number;
      if (goals.some((g) => g !== sizeGoal))
        throw new Error(`the size goal depends on MAX_TCP_HEADER here (${goals.join(" or ")}): the model cannot tell`);
      const model = fillSendBuffer({
        program: run.program,
        sndbuf,
        chunk: CHUNK.length,
        sizeGoal,
        skbOverhead,
        ...(run.lowat !== undefined ? { lowat: run.lowat } : {}),
      });
      const sends = await runProgram(conn.server, run.program);
      const bytes = sends.reduce<number>((n, s) => (typeof s === "number" ? n + s : n), 0);
      const q = await queueAtStop(kodos, conn.server, conn.client);
      results.set(run.name, { model, bytes });
      ctx.say(
        `${run.name}: ${sends.length} sends (${sends.join(", ")}), stopped by ${run.program === "until-EAGAIN" ? "EAGAIN" : "poll without POLLOUT"}; SIOCOUTQ ${q.outq}, SIOCOUTQNSD ${q.notSent}, sk_wmem_queued ${q.wmemQueued} of ${q.sndbuf}`,
      );
      ctx.expectEqual(`${run.name}: bytes queued`, model.bytes, bytes, { unit: "bytes", headline: true });
      ctx.expectEqual(`${run.name}: what each send returned`, model.sends.join(","), sends.join(","));
      ctx.expectEqual(`${run.name}: sk_wmem_queued at the stop (ss -m w)`, model.wmemQueued, q.wmemQueued);
      ctx.expectEqual(`${run.name}: SIOCOUTQ at the stop`, bytes, q.outq, { unit: "bytes" });
      ctx.expectEqual(`${run.name}: SIOCOUTQNSD at the stop`, bytes, q.notSent, { unit: "bytes" });
      ctx.expectEqual(`${run.name}: POLLOUT at the stop`, false, q.pollout);
      const atStop = { sndbuf: q.sndbuf, wmemQueued: q.wmemQueued, notSent: q.notSent };
      const withMark = run.lowat !== undefined ? { lowat: run.lowat } : {};
      ctx.expectEqual(
        `${run.name}: the POLLOUT rule on the queue at the stop`,
        pollOutReady({ ...atStop, ...withMark }),
        q.pollout,
      );
      ctx.observe(`${run.name}: bytes queued`, bytes, "bytes");
      ctx.observe(`${run.name}: size goal (model)`, sizeGoal, "bytes");
      ctx.observe(`${run.name}: sk_sndbuf`, sndbuf, "bytes");
      ctx.observe(`${run.name}: client's window before (max seen)`, conn.maxWindow, "bytes");
      if (run.program === "while-POLLOUT" && run.lowat !== undefined) {
        // The space rule alone would still say POLLOUT: the mark is what stopped it.
        ctx.expectThat(
          `${run.name}: stopped with a third of the buffer still free`,
          pollOutReady(atStop) && !pollOutReady({ ...atStop, lowat: run.lowat }),
          `sk_sndbuf - sk_wmem_queued >= sk_wmem_queued / 2, and 2 x ${q.notSent} unsent >= ${run.lowat}`,
          `free ${q.sndbuf - q.wmemQueued} vs ${q.wmemQueued >> 1}; 2 x unsent = ${2 * q.notSent}`,
        );
      }
      await conn.client.close();
      await conn.server.close();
    }

    const a = results.get("1A")?.bytes ?? 0;
    const b = results.get("1B")?.bytes ?? 0;
    const ratio = Math.round((b / a) * 1000) / 1000;
    const modelRatio =
      Math.round(((results.get("1B")?.model.bytes ?? 0) / (results.get("1A")?.model.bytes ?? 1)) * 1000) / 1000;
    ctx.observe("1B / 1A", ratio);
    ctx.expectEqual("1B / 1A", modelRatio, ratio, { headline: true });
    ctx.say(
      `1B queues ${ratio} of what 1A does: POLLOUT wants a third of the buffer free, send() only a new skb's worth below the limit; with TCP_NOTSENT_LOWAT ${LOWAT}, 1A stops at the first skb past the mark, 1B at half of it`,
    );
  },
};
