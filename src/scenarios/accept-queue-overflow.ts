// Accept queue overflow: how many connections a listener holds unaccepted, what a SYN and a final
// ACK meet when it is full, and what tcp_abort_on_overflow changes.
import type { SocketRow } from "../evidence/socket-table.js";
import type { Host, HostSocket } from "../lab/host.js";
import { AFTER_RST, reventsText } from "../model/close.js";
import {
  nearest,
  nextAttemptCandidates,
  overflowOutcome,
  synAckRetransmissions,
  synRetransmissions,
} from "../model/queues.js";
import { acceptQueueCapacity, chainDelays, DEFAULTS, humanMs, timerChainExpectation } from "../model/tcp.js";
import { POLLIN, POLLOUT, POLLRDHUP } from "../sys/constants.js";
import type { Scenario, ScenarioContext } from "./scenario.js";
import { rowGone, runOn, stateChanges, tcpExtCounter, waitForRow, waitUntil } from "./steps.js";

const PORT = 8080;
// kodos: a backlog larger than somaxconn, which caps it.
const KODOS_BACKLOG = 8;
const KODOS_SOMAXCONN = 2;
// kif, zapp, lrrr: listen(2), so three connections fill the queue.
const BACKLOG = 2;
// lrrr gives up on a request after two SYN-ACK retransmissions instead of five: at 7 s, late
// enough that a VM's slower set-up (seconds under TCG) has its watch begun before the drop.
const LRRR_SYNACK_RETRIES = 2;
// How long a connect that the queue turned away is given before it counts as stuck.
const STUCK_MS = 200;
const NFT_TABLE = "sockprobe_ackdelay";

// A connection whose final ACK amy's firewall held back, and when its connect started (lab clock, µs).
interface Pending {
  readonly sock: HostSocket;
  readonly port: number;
  readonly startUs: number;
}

/** Starts a non-blocking connect and reports whether the handshake completed within boundMs; startUs on the lab's clock. */
async function tryConnect(ctx: ScenarioContext, host: Host, address: string, boundMs: number) {
  const sock = await host.socket();
  const startUs = ctx.now();
  try {
    await sock.connect(address, PORT);
  } catch (e) {
    if ((e as { code?: string }).code !== "EINPROGRESS") throw e;
  }
  const r = await sock.poll(POLLOUT, boundMs);
  return { sock, startUs, completed: !r.timedOut };
}

/**
 * The first retransmission after a moment known to lie between fromMs and toMs (an accept() freeing
 * a slot, a firewall lifted): where a retransmission's timer may fire either side of that bracket
 * (the wheel's rounding, never early), it or the next one; the one nearest the observed time.
 */
function firstAfter(
  s: { retransmitAtMs: readonly number[]; dropAtMs: number },
  fromMs: number,
  toMs: number,
  observedMs: number,
): number {
  const late = (t: number) => {
    const e = timerChainExpectation(chainDelays(s.retransmitAtMs, t), "");
    return e.ms - t + e.toleranceMs;
  };
  return nearest(nextAttemptCandidates(s.retransmitAtMs, fromMs, toMs, late), observedMs) ?? s.dropAtMs;
}

/** Runs nft inside a host's namespace (its own firewall) and fails loudly if nft does. */
async function nft(host: Host, script: string): Promise<void> {
  const r = await runOn(host, ["nft", script]);
  if (r.code !== 0) throw new Error(`nft on ${host.name} exited with ${r.code}: ${r.stderr.trim()}`);
}

/** Polls TCP_INFO until the socket has retransmitted at least once (bounded). */
async function firstRetransmission(sock: HostSocket, boundMs: number): Promise<boolean> {
  const info = await waitUntil(
    () => sock.tcpInfo(),
    (i) => Number(i.total_retrans) >= 1,
    boundMs,
  );
  return Number(info.total_retrans) >= 1;
}

async function listenRow(host: Host) {
  return (await host.sockets()).find((r) => r.state === "LISTEN" && r.local.port === PORT);
}

// Opens `n` more connections from kang to a listener with room for them: each completes at once.
async function fill(ctx: ScenarioContext, kang: Host, server: Host, n: number): Promise<HostSocket[]> {
  const out: HostSocket[] = [];
  for (let i = 0; i < n; i++) {
    const c = await tryConnect(ctx, kang, server.ipv4, 2000);
    if (!c.completed) throw new Error(`a connect to ${server.name} before its queue was full did not complete`);
    out.push(c.sock);
  }
  ctx.say(
    `kang opens ${n === 1 ? "one more connection" : `${n} connections`} to ${server.name}:${PORT}; nobody accepts`,
  );
  return out;
}

export const scenario: Scenario = {
  name: "accept-queue-overflow",
  seed: "002_285ea2fe779ca37a.txt (receiver overloaded, connections never accepted) and 003_4cf9e29935512145.txt (Linux TCP weirdly unresponsive when under heavy load: SYN retransmissions, then RST)",
  question:
    "How many connections does a listener hold before accept(), and what happens to a SYN, and to a handshake's final ACK, that meet a full queue, with tcp_abort_on_overflow 0 and 1?",
  seedSays:
    "Under load the receiver's kernel resets connections the application never accepted; a client sees SYN retransmissions while the backlog is full, is then accepted, retransmits its request and gets a RST, though strace shows the server never accepted it. Knobs in Linux can make the problem go away.",
  linux:
    "The accept queue holds min(backlog, net.core.somaxconn) + 1 connections (sk_acceptq_is_full tests >). A SYN that meets a full queue is dropped whatever tcp_abort_on_overflow says: the client stays SYN_SENT and retransmits at 1, 2, 3, 4, 5 s then doubling (tcp_syn_linear_timeouts=4, Linux 6.5+; at 1, 3, 7, 15 s before), and completes at its first retransmission after accept() frees a slot, not at the accept. tcp_abort_on_overflow acts only when the final ACK of a handshake begun while there was room meets a full queue (tcp_check_req): with 0 the ACK is ignored and the request stays SYN_RECV while the client, whose connect() succeeded, is ESTABLISHED; the listener's SYN-ACK retransmissions (1, 3, 7, 15, 31 s) make the client ACK again, and the first one after a slot frees completes it; if none does, the request is dropped after tcp_synack_retries and the client's next segment gets a RST: the seed's late reset. With 1 the ACK is answered at once with a RST and the client gets ECONNRESET.",
  faults: [],
  timeoutMs: 15_000,
  async run(ctx) {
    const { lab } = ctx;
    const kang = await lab.addHost("kang");
    const amy = await lab.addHost("amy");
    const kodos = await lab.addHost("kodos", { sysctls: { "net.core.somaxconn": KODOS_SOMAXCONN } });
    const kif = await lab.addHost("kif", { sysctls: { "net.ipv4.tcp_abort_on_overflow": 1 } });
    const zapp = await lab.addHost("zapp", { sysctls: { "net.ipv4.tcp_abort_on_overflow": 0 } });
    const lrrr = await lab.addHost("lrrr", {
      sysctls: { "net.ipv4.tcp_abort_on_overflow": 0, "net.ipv4.tcp_synack_retries": LRRR_SYNACK_RETRIES },
    });
    const synRetries = Number(await kang.sysctl("net.ipv4.tcp_syn_retries"));
    // Kernels before 6.5 have no tcp_syn_linear_timeouts: every SYN retransmission doubles (1, 3, 7, 15 s).
    const hasLinear = ctx.rule("syn-linear-timeouts") === true;
    const linear = hasLinear ? Number(await kang.sysctl("net.ipv4.tcp_syn_linear_timeouts")) : 0;
    ctx.kernelValue("tcp_syn_linear_timeouts", linear);
    const synSchedule = synRetransmissions(synRetries, linear);
    const synAck = synAckRetransmissions(Number(await zapp.sysctl("net.ipv4.tcp_synack_retries")));
    const synAckLrrr = synAckRetransmissions(LRRR_SYNACK_RETRIES);

    const defaultSyn = synRetransmissions(DEFAULTS.tcp_syn_retries, hasLinear ? DEFAULTS.tcp_syn_linear_timeouts : 0);
    const defaults = {
      capacity: acceptQueueCapacity(128, DEFAULTS.somaxconn),
      connectFails: defaultSyn.failAtMs,
      requestDropped: synAckRetransmissions().dropAtMs,
    };
    ctx.observe("accept queue capacity for listen(128) with default somaxconn (model)", defaults.capacity);
    ctx.observe("never-accepted client's connect() fails, default sysctls (model)", defaults.connectFails, "ms");
    ctx.observe("overflowed request dropped, default tcp_synack_retries (model)", defaults.requestDropped, "ms");
    ctx.say(
      `defaults: listen(128) holds ${defaults.capacity}; a client the full queue turns away fails with ETIMEDOUT after ${humanMs(defaults.connectFails)} (${defaultSyn.why}); an overflowed handshake's request is dropped after ${humanMs(defaults.requestDropped)}`,
    );

    // 1. Capacity: listen(8) under somaxconn=2.
    const lk = await kodos.listen(PORT, { backlog: KODOS_BACKLOG });
    // SYNs kodos drops for a full queue (tcp_conn_request), counted from here: a Vagrant host is not new.
    const overflowBase = await tcpExtCounter(kodos, "ListenOverflows");
    const overflows = async () => (await tcpExtCounter(kodos, "ListenOverflows")) - overflowBase;
    const capacity = acceptQueueCapacity(KODOS_BACKLOG, KODOS_SOMAXCONN);
    let completed = 0;
    let extra: Awaited<ReturnType<typeof tryConnect>> | undefined;
    for (let i = 0; i < capacity + 2 && !extra; i++) {
      const c = await tryConnect(ctx, kang, kodos.ipv4, STUCK_MS);
      if (c.completed) completed++;
      else extra = c;
    }
    ctx.expectEqual(
      `connections kodos's listen(${KODOS_BACKLOG}) held with somaxconn=${KODOS_SOMAXCONN}`,
      capacity,
      completed,
      { headline: true },
    );
    const kRow = await listenRow(kodos);
    ctx.expectEqual(
      "kodos's LISTEN row (Recv-Q queued / Send-Q limit)",
      `${capacity}/${Math.min(KODOS_BACKLOG, KODOS_SOMAXCONN)}`,
      `${kRow?.recvQ}/${kRow?.sendQ}`,
    );
    if (!extra) throw new Error("every connect to kodos completed: the queue never filled");
    const y = extra;
    const yPort = (await y.sock.localAddress()).port;
    ctx.expectEqual("the next client's state (its SYN dropped)", "SYN_SENT", (await y.sock.tcpInfo()).stateName, {
      headline: true,
    });

    // 2. A handshake begun with room, whose final ACK arrives when the queue is full.
    // The lab's faults are symmetric and the ACK follows the SYN-ACK within microseconds, so amy's
    // own firewall drops what it sends to these servers except SYNs, until the queues are full.
    const servers = [kif, zapp, lrrr];
    const listeners = new Map<string, HostSocket>();
    for (const s of servers) listeners.set(s.name, await s.listen(PORT, { backlog: BACKLOG }));
    for (const s of servers) await fill(ctx, kang, s, BACKLOG);
    await nft(
      amy,
      `add table inet ${NFT_TABLE} ; add chain inet ${NFT_TABLE} out { type filter hook output priority 0 ; policy accept ; } ; add rule inet ${NFT_TABLE} out ip daddr { ${servers.map((s) => s.ipv4).join(", ")} } tcp dport ${PORT} tcp flags & (syn | rst) == 0 drop`,
    );
    const x = new Map<string, Pending>();
    for (const s of servers) {
      const c = await tryConnect(ctx, amy, s.ipv4, 2000);
      ctx.expectEqual(`amy's connect to ${s.name} (its final ACK lost)`, true, c.completed);
      x.set(s.name, { sock: c.sock, port: (await c.sock.localAddress()).port, startUs: c.startUs });
    }
    ctx.say(
      "amy connects to kif, zapp and lrrr: each answers with a SYN-ACK, amy's connect succeeds, its final ACK is dropped on its way out",
    );
    for (const s of servers) await fill(ctx, kang, s, 1);
    const yKif = await tryConnect(ctx, kang, kif.ipv4, STUCK_MS);
    ctx.expectEqual(
      "kang's SYN to kif's full queue (abort_on_overflow=1)",
      "SYN_SENT",
      (await yKif.sock.tcpInfo()).stateName,
    );
    // When each server's table last showed amy's request: a drop is bracketed from there.
    const requestSeenUs = new Map<string, number>();
    for (const s of servers) {
      const seenUs = ctx.now();
      const rows = await s.sockets();
      const l = rows.find((r) => r.state === "LISTEN" && r.local.port === PORT);
      const req = rows.find((r) => r.peer.port === x.get(s.name)?.port);
      if (req?.state === "SYN_RECV") requestSeenUs.set(s.name, seenUs);
      ctx.expectEqual(
        `${s.name}: queue, and amy's connection there`,
        `${BACKLOG + 1}/${BACKLOG} SYN_RECV`,
        `${l?.recvQ}/${l?.sendQ} ${req?.state ?? "none"}`,
      );
    }
    const amyViews: string[] = [];
    for (const s of servers) amyViews.push((await x.get(s.name)?.sock.tcpInfo())?.stateName ?? "none");
    ctx.expectEqual(
      "amy's own view of those connections",
      servers.map(() => "ESTABLISHED").join(","),
      amyViews.join(","),
      { headline: true },
    );
    // The rule goes when nft applies it, somewhere before nft has exited and been reaped.
    const liftFromUs = ctx.now();
    await nft(amy, `delete table inet ${NFT_TABLE}`);
    const liftedUs = ctx.now();
    ctx.say("amy's firewall is lifted; its next ACK answers the next SYN-ACK retransmission, into a full queue");

    const xKif = x.get("kif") as Pending;
    const xZapp = x.get("zapp") as Pending;
    const xLrrr = x.get("lrrr") as Pending;
    const since = (startUs: number) => (ctx.now() - startUs) / 1000;

    const onKif = (async () => {
      const woke = await ctx.pollNames("amy", xKif.sock, POLLIN | POLLRDHUP, 4000);
      const ms = (woke.atUs - xKif.startUs) / 1000;
      const read = await ctx.attempt("amy", "read (kif)", () => xKif.sock.read(100));
      return { woke, ms, read };
    })();

    const onKodos = (async () => {
      const retransmitted = await firstRetransmission(y.sock, synSchedule.retransmitAtMs[1] ?? 3000);
      // The client counts a retransmission when it sends it; kodos may take the SYN later (a loaded
      // machine defers softirq work). Accept only once kodos has dropped it, else it lands in the freed slot.
      await waitUntil(overflows, (n) => n >= 2, synSchedule.retransmitAtMs[1] ?? 3000);
      const acceptMs = since(y.startUs);
      await lk.accept();
      const acceptedMs = since(y.startUs);
      // Nothing overflows once the slot is free: this is every SYN dropped before the accept.
      const dropped = await overflows();
      const done = await y.sock.poll(POLLOUT, 4000);
      const doneMs = (ctx.pollDoneUs(done) - y.startUs) / 1000;
      const sent = 1 + Number((await y.sock.tcpInfo()).total_retrans);
      return { retransmitted, acceptMs, acceptedMs, dropped, sent, doneMs, completed: !done.timedOut };
    })();

    const onZapp = (async () => {
      const resent = await waitForRow(
        zapp,
        (r) => r.state === "SYN_RECV" && r.peer.port === xZapp.port && (r.timer?.retrans ?? 0) >= 1,
        (synAck.retransmitAtMs[1] ?? 3000) - 500,
      );
      const acceptMs = since(xZapp.startUs);
      const lz = listeners.get("zapp") as HostSocket;
      await lz.accept();
      const acceptedMs = since(xZapp.startUs);
      // The queued connections are there at once; amy's arrives when its ACK does, which the poll times.
      for (;;) {
        const ready = await lz.poll(POLLIN, 4000);
        if (ready.timedOut) throw new Error("amy's connection never reached zapp's accept queue");
        const arrivedUs = ctx.pollDoneUs(ready);
        const s = await lz.accept();
        if ((await s.remoteAddress()).port === xZapp.port)
          return { resent: resent !== undefined, acceptMs, acceptedMs, doneMs: (arrivedUs - xZapp.startUs) / 1000 };
      }
    })();

    const onLrrr = (async () => {
      const request = (r: SocketRow) => r.state === "SYN_RECV" && r.peer.port === xLrrr.port;
      // Once the request has resent its last SYN-ACK, its timer is the drop: ss shows the time left on
      // the kernel's own clock, so the drop is known to within one look however slow looks are.
      let byTimer: { fromUs: number; toUs: number } | undefined;
      let seenUs = requestSeenUs.get("lrrr");
      for (const until = ctx.now() + synAckLrrr.dropAtMs * 1000; ctx.now() < until; ) {
        const beforeUs = ctx.now();
        const row = (await lrrr.sockets()).find(request);
        const afterUs = ctx.now();
        if (!row) break;
        seenUs = beforeUs;
        const left = row.timer?.expiresMs;
        if ((row.timer?.retrans ?? 0) >= LRRR_SYNACK_RETRIES && left !== undefined && Number.isFinite(left)) {
          byTimer = { fromUs: beforeUs + left * 1000, toUs: afterUs + left * 1000 };
          break;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      if (seenUs === undefined) throw new Error("lrrr's table never showed amy's request");
      const gone = await rowGone(lrrr, request, synAckLrrr.dropAtMs + 1500, () => ctx.now(), { seenUs });
      const dropped = gone.cleared;
      // Where both say something, the drop lies in both brackets.
      let fromUs = gone.atUs - gone.uncertaintyUs;
      let toUs = gone.atUs + gone.uncertaintyUs;
      if (byTimer && byTimer.fromUs <= toUs && byTimer.toUs >= fromUs) {
        fromUs = Math.max(fromUs, byTimer.fromUs);
        toUs = Math.min(toUs, byTimer.toUs);
      }
      const droppedMs = ((fromUs + toUs) / 2 - xLrrr.startUs) / 1000;
      const droppedWithinMs = (toUs - fromUs) / 2000;
      const wrote = await ctx.attempt("amy", "write (lrrr)", () => xLrrr.sock.write("GET / HTTP/1.0\r\n\r\n"));
      const read = await ctx.attempt("amy", "read (lrrr)", () => xLrrr.sock.readAsync(100, { timeoutMs: 2000 }));
      return { dropped, droppedMs, droppedWithinMs, wrote, read };
    })();

    const [k, ko, z, lr] = await Promise.all([onKif, onKodos, onZapp, onLrrr]);

    // kif, tcp_abort_on_overflow=1: the ACK that meets the full queue is answered with RST.
    const kifAbort = Number(await kif.sysctl("net.ipv4.tcp_abort_on_overflow"));
    if (overflowOutcome("final ACK", kifAbort) !== "RST")
      throw new Error("kif is meant to run with tcp_abort_on_overflow=1");
    ctx.expectOk(k.woke, reventsText(AFTER_RST, POLLIN | POLLRDHUP));
    ctx.expectErrno(k.read, "ECONNRESET", { headline: true });
    // The ACK that meets the queue answers the first SYN-ACK retransmission after the firewall was
    // lifted. The lift is known only between nft's start and its exit: where a retransmission falls in
    // between, it or the next one is the first, and the reset's time says which.
    const kifExpected = firstAfter(synAck, (liftFromUs - xKif.startUs) / 1000, (liftedUs - xKif.startUs) / 1000, k.ms);
    ctx.expectTime(
      "amy's connection to kif reset (from its connect)",
      timerChainExpectation(
        chainDelays(synAck.retransmitAtMs, kifExpected),
        `kif's first SYN-ACK retransmission once amy's firewall was lifted; ${synAck.why}`,
      ),
      k.ms,
      { headline: true },
    );

    // kodos: the SYN-dropped client completes at its next retransmission after accept(), not at accept().
    ctx.expectEqual("the stuck client retransmitted its SYN before the accept", true, ko.retransmitted);
    ctx.expectEqual("the stuck client completed", true, ko.completed, { headline: true });
    ctx.expectEqual(
      "SYNs kodos dropped for its full queue (TcpExt ListenOverflows): all the client sent but the last",
      ko.sent - 1,
      ko.dropped,
    );
    ctx.observe("kodos accept() freed a slot at", Math.round(ko.acceptMs), "ms");
    // The first SYN and the first ko.dropped - 1 retransmissions met the full queue; the next one completes.
    const yExpected = synSchedule.retransmitAtMs[ko.dropped - 1] ?? synSchedule.failAtMs;
    ctx.expectTime(
      "the stuck client's connect completed (from its first SYN)",
      timerChainExpectation(
        chainDelays(synSchedule.retransmitAtMs, yExpected),
        `its first SYN retransmission after the accept at ${Math.round(ko.acceptMs)} ms (${ko.dropped} SYNs dropped before it); ${synSchedule.why}`,
      ),
      ko.doneMs,
      { headline: true },
    );

    // zapp, tcp_abort_on_overflow=0: the ACK is ignored, the SYN-ACK timer goes on, the next one after accept() completes it.
    const zappAbort = Number(await zapp.sysctl("net.ipv4.tcp_abort_on_overflow"));
    if (overflowOutcome("final ACK", zappAbort) !== "ignored")
      throw new Error("zapp is meant to run with tcp_abort_on_overflow=0");
    ctx.expectEqual("zapp resent its SYN-ACK once before the accept", true, z.resent);
    const zExpected = firstAfter(synAck, z.acceptMs, z.acceptedMs, z.doneMs);
    ctx.expectTime(
      "amy's connection reached zapp's accept queue (from its connect)",
      timerChainExpectation(
        chainDelays(synAck.retransmitAtMs, zExpected),
        `zapp's first SYN-ACK retransmission after the accept at ${Math.round(z.acceptMs)} ms; ${synAck.why}`,
      ),
      z.doneMs,
      { headline: true },
    );

    // lrrr: nobody frees a slot; the request expires and the client's first data gets a RST.
    ctx.expectEqual("lrrr dropped the overflowed request", true, lr.dropped);
    // The table is looked at by running ss: what a look cannot place widens the tolerance.
    const dropModel = timerChainExpectation(
      chainDelays([...synAckLrrr.retransmitAtMs, synAckLrrr.dropAtMs], synAckLrrr.dropAtMs),
      synAckLrrr.why,
    );
    ctx.expectTime(
      "lrrr dropped amy's request (from its connect)",
      { ...dropModel, toleranceMs: dropModel.toleranceMs + Math.ceil(lr.droppedWithinMs) },
      lr.droppedMs,
    );
    ctx.expectOk(lr.wrote, 18);
    ctx.expectErrno(lr.read, "ECONNRESET", { headline: true });

    // kif's SYN-dropped client: abort_on_overflow did not reset it.
    const yKifInfo = await yKif.sock.tcpInfo();
    ctx.expectThat(
      "kang's client turned away by kif (abort_on_overflow=1)",
      yKifInfo.stateName === "SYN_SENT" && Number(yKifInfo.total_retrans) >= 1,
      "still SYN_SENT, retransmitting: no RST for a SYN",
      `${yKifInfo.stateName}, ${yKifInfo.total_retrans} retransmissions`,
      { headline: true },
    );

    const states = await stateChanges(lab);
    if (states.available) {
      const yRetrans = states.events
        .filter((e) => e.event === "tcp_retransmit_skb" && e.saddr === kang.ipv4 && e.sport === yPort)
        .map((e) => e.atUs);
      const seen = yRetrans.map((us) => Math.round((us - y.startUs) / 1000));
      ctx.observe("stuck client's SYN retransmissions (trace)", seen.join(", "), "ms");
      const want = synSchedule.retransmitAtMs
        .filter((t) => t <= yExpected)
        .map((t) => timerChainExpectation(chainDelays(synSchedule.retransmitAtMs, t), "SYN timer"));
      ctx.expectThat(
        "stuck client's SYN retransmissions (trace)",
        seen.length === want.length &&
          seen.every((t, i) => Math.abs(t - (want[i]?.ms as number)) <= (want[i]?.toleranceMs as number)),
        `${want.map((w) => `${Math.round(w.ms)} ± ${w.toleranceMs}`).join(", ")} ms (${linear} linear timeouts)`,
        `${seen.join(", ")} ms`,
      );
      const resetsToAmy = states.events
        .filter((e) => e.event === "tcp_receive_reset" && e.saddr === amy.ipv4)
        .map((e) =>
          e.daddr === kif.ipv4 ? "kif" : e.daddr === lrrr.ipv4 ? "lrrr" : e.daddr === zapp.ipv4 ? "zapp" : e.daddr,
        );
      ctx.expectEqual("RSTs amy's connections received", "kif,lrrr", resetsToAmy.sort().join(","));
      const kifSentReset = states.events.some(
        (e) => e.event === "tcp_send_reset" && e.saddr === kif.ipv4 && e.sport === PORT && e.state === "LISTEN",
      );
      ctx.expectEqual("kif's listener sent the RST itself", true, kifSentReset);
      const yKifReset = states.events.some(
        (e) => e.event === "tcp_receive_reset" && e.saddr === kang.ipv4 && e.daddr === kif.ipv4,
      );
      ctx.expectEqual("RSTs kang's turned-away client received from kif", false, yKifReset);
    } else {
      ctx.say(`tracepoints unavailable (${states.reason}): retransmission times and RSTs are not checked`);
    }
  },
};
