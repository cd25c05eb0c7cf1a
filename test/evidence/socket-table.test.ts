// Does the ss-backed socket table report what the kernel really holds: states, queues, timers and orphans?
import t, { type Test } from "tap";
import {
  formatSocketTable,
  parseSocketTable,
  parseSsDuration,
  type SocketRow,
  SocketWaitTimeoutError,
  socketTable,
  waitForSocket,
} from "../../src/evidence/socket-table.js";
import { Netns, Socket } from "../../src/sys/index.js";

const LO = "127.0.0.1";
// Loopback delivers within microseconds; the bound only has to absorb spawning ss under a loaded test runner.
const SETTLE_MS = 5000;
// TCP_TIMEWAIT_LEN in include/net/tcp.h: also what an orphaned FIN_WAIT2 waits with tcp_fin_timeout at its default.
const TIMEWAIT_MS = 60_000;

// A fresh namespace per test, its sockets closed before it is, the way kselftest's lib.sh cleans up.
function lab(t: Test): { ns: Netns; open: (family?: "IPv4" | "IPv6") => Socket; track: (s: Socket) => Socket } {
  const ns = Netns.create();
  const sockets: Socket[] = [];
  const track = (s: Socket) => {
    sockets.push(s);
    return s;
  };
  t.teardown(() => {
    for (const s of sockets) if (!s.closed) s.close();
    ns.close();
  });
  return { ns, open: (family = "IPv4") => track(Socket.create({ netns: ns, family })), track };
}

// Listener, client and accepted server end on loopback inside `ns`.
async function connectedPair(l: ReturnType<typeof lab>) {
  const listener = l.open().bind(LO, 0).listen();
  const port = listener.localAddress().port;
  const client = l.open();
  await client.connectAsync(LO, port, { timeoutMs: SETTLE_MS });
  const server = l.track(await listener.acceptAsync({ timeoutMs: SETTLE_MS }));
  return { listener, port, client, clientPort: client.localAddress().port, server };
}

const between = (r: SocketRow, localPort: number, peerPort: number) =>
  r.local.address === LO && r.local.port === localPort && r.peer.address === LO && r.peer.port === peerPort;

t.test("LISTEN and both ESTABLISHED ends, with 5 unread bytes in Recv-Q", async (t) => {
  const l = lab(t);
  const { port, client, clientPort } = await connectedPair(l);
  t.equal(client.write("hello"), 5);

  const serverRow = await waitForSocket(l.ns.path, (r) => between(r, port, clientPort) && r.recvQ === 5, {
    timeoutMs: SETTLE_MS,
    what: `server end ${port}<-${clientPort} with Recv-Q 5`,
  });
  const rows = await socketTable(l.ns.path, { host: "kang" });
  const table = formatSocketTable(rows);
  t.comment(table);

  const listen = rows.filter((r) => r.state === "LISTEN");
  t.equal(listen.length, 1, "one listener");
  t.match(listen[0], { local: { address: LO, port }, peer: { address: "0.0.0.0", port: 0 }, orphan: false });
  t.ok((listen[0]?.inode ?? 0) > 0, "the listener has an inode");
  t.equal(listen[0]?.sendQ, 128, "a listener's Send-Q is its backlog");
  t.equal(listen[0]?.recvQ, 0, "and its Recv-Q the accept queue, now empty");

  const est = rows.filter((r) => r.state === "ESTABLISHED");
  t.equal(est.length, 2, "two ESTABLISHED ends");
  const server = est.find((r) => between(r, port, clientPort));
  const cli = est.find((r) => between(r, clientPort, port));
  t.ok(server, `server end 127.0.0.1:${port} <-> 127.0.0.1:${clientPort}`);
  t.ok(cli, `client end 127.0.0.1:${clientPort} <-> 127.0.0.1:${port}`);
  t.equal(server?.recvQ, 5, "Recv-Q counts the 5 bytes the server has not read");
  t.equal(server?.sendQ, 0);
  t.equal(cli?.recvQ, 0);
  t.equal(serverRow.recvQ, 5);
  t.equal(server?.host, "kang");
  t.equal(server?.orphan, false);
  t.equal(cli?.orphan, false);
  t.equal(server?.shutdown, "<->");
  t.equal(server?.info.bytes_received, 5, "-i reports the bytes received");
  t.equal(cli?.info.bytes_sent, 5, "-i reports the bytes sent");
  t.type(cli?.info.rto, "number");
  t.type(cli?.info.cwnd, "number");
  t.match(cli?.info.rtt, /^\d+(\.\d+)?\/\d+(\.\d+)?$/, "rtt stays 'srtt/rttvar' text");
  t.type(cli?.skmem?.rb, "number");
  t.match(table, new RegExp(`127\\.0\\.0\\.1:${port}\\s+0\\.0\\.0\\.0:\\*\\s+128\\s+0\\s+LISTEN`));
  t.match(table, new RegExp(`127\\.0\\.0\\.1:${port}\\s+127\\.0\\.0\\.1:${clientPort}\\s+0\\s+5\\s+ESTABLISHED`));
});

t.test("the end that closes first sits in TIME_WAIT with a timewait timer under 60 s", async (t) => {
  const l = lab(t);
  const { port, client, clientPort, server } = await connectedPair(l);
  server.close();
  await waitForSocket(l.ns.path, (r) => between(r, clientPort, port) && r.state === "CLOSE_WAIT", {
    timeoutMs: SETTLE_MS,
    what: "client end in CLOSE_WAIT after the server's FIN",
  });
  client.close();

  const tw = await waitForSocket(l.ns.path, (r) => between(r, port, clientPort) && r.state === "TIME_WAIT", {
    timeoutMs: SETTLE_MS,
    what: `server end ${port}->${clientPort} in TIME_WAIT`,
  });
  t.comment(formatSocketTable([tw]));
  t.equal(tw.timer?.name, "timewait");
  t.equal(tw.timer?.retrans, 0);
  const expires = tw.timer?.expiresMs ?? Number.NaN;
  // ss rounds down to whole seconds above 10 s, and the timer was armed at most SETTLE_MS before this poll.
  t.ok(expires < TIMEWAIT_MS, `timewait timer ${expires} ms is below ${TIMEWAIT_MS} ms`);
  t.ok(expires >= TIMEWAIT_MS - SETTLE_MS - 1000, `timewait timer ${expires} ms was armed just now`);
  t.equal(tw.orphan, true, "no process owns a TIME_WAIT socket");
  t.equal(tw.inode, 0);
  const rows = await socketTable(l.ns.path);
  const clientEnd = rows.filter((r) => between(r, clientPort, port)).map((r) => r.state);
  t.ok(
    clientEnd.every((s) => s === "LAST_ACK"),
    `the client end, closed second, is gone or in LAST_ACK: [${clientEnd.join(", ")}]`,
  );
});

t.test("server close without a client close: FIN_WAIT2 orphan facing CLOSE_WAIT", async (t) => {
  const l = lab(t);
  const { port, clientPort, server } = await connectedPair(l);
  server.close();

  const fw2 = await waitForSocket(l.ns.path, (r) => between(r, port, clientPort) && r.state === "FIN_WAIT2", {
    timeoutMs: SETTLE_MS,
    what: `server end ${port}->${clientPort} in FIN_WAIT2`,
  });
  const rows = await socketTable(l.ns.path);
  t.comment(formatSocketTable(rows));
  t.equal(fw2.orphan, true, "the closed server end belongs to no process");
  t.equal(fw2.inode, 0);
  // Linux hands an orphaned FIN_WAIT2 to a timewait sock that waits tcp_fin_timeout.
  t.equal(fw2.timer?.name, "timewait");
  t.ok((fw2.timer?.expiresMs ?? Number.NaN) <= TIMEWAIT_MS);

  const cw = rows.find((r) => between(r, clientPort, port));
  t.equal(cw?.state, "CLOSE_WAIT", "the client end waits for its owner to close");
  t.equal(cw?.orphan, false, "the client still holds its end");
  t.ok((cw?.inode ?? 0) > 0);
  t.equal(cw?.shutdown, "-->", "the peer's FIN has been received");
});

t.test("a half-closed end its process still holds is FIN_WAIT2 but not an orphan", async (t) => {
  const l = lab(t);
  const { port, client, clientPort } = await connectedPair(l);
  client.shutdown("SHUT_WR");
  const fw2 = await waitForSocket(l.ns.path, (r) => between(r, clientPort, port) && r.state === "FIN_WAIT2", {
    timeoutMs: SETTLE_MS,
    what: "client end in FIN_WAIT2 after shutdown(SHUT_WR)",
  });
  t.equal(fw2.orphan, false);
  t.ok((fw2.inode ?? 0) > 0);
  t.equal(fw2.shutdown, "<--", "our FIN is sent, the receive side is open");
  t.equal(fw2.timer, undefined, "a held FIN_WAIT2 waits for ever: no timer");
});

t.test("SO_LINGER {1, 0} close resets: both rows leave the table", async (t) => {
  const l = lab(t);
  const { port, client, clientPort, server } = await connectedPair(l);
  server.setLinger(true, 0);
  server.close();
  await t.rejects(client.readAsync(16, { timeoutMs: SETTLE_MS }), { code: "ECONNRESET" }, "the client saw the reset");
  // The RST removed the server end at close and the client end on receipt: only the listener is left.
  const rows = await socketTable(l.ns.path);
  t.comment(formatSocketTable(rows));
  t.same(
    rows.map((r) => r.state),
    ["LISTEN"],
  );
  t.same(
    rows.filter((r) => between(r, port, clientPort) || between(r, clientPort, port)),
    [],
    "no row for either end: no TIME_WAIT after a reset",
  );
});

// Captured from this repository's harness with iproute2 6.1 (`ss -tanoiemH`, no -O): an IPv6 listener, a
// TIME_WAIT with its empty detail line, a child still in the accept queue (ino:0 yet not orphaned), and an
// orphan in FIN_WAIT1 whose retransmit timer ss printed as '580ms'.
const SAMPLE = [
  "LISTEN     0      128        [::1]:51485      [::]:*     ino:14989 sk:19 cgroup:/ v6only:1 <->",
  "\t skmem:(r0,rb131072,t0,tb16384,f0,w0,o0,bl0,d0) bbr cwnd:10",
  "TIME-WAIT  0      0      127.0.0.1:56791 127.0.0.1:47024 timer:(timewait,59sec,0) ino:0 sk:14",
  "\t",
  "ESTAB      0      0      127.0.0.1:56791 127.0.0.1:47034 ino:0 sk:15 cgroup:/ <->",
  "\t skmem:(r0,rb131072,t0,tb3939840,f0,w0,o0,bl0,d0) ts sack bbr wscale:10,10 rto:200 rtt:0.014/0.007 mss:32768 pmtu:65535 rcvmss:536 advmss:65483 cwnd:10 segs_in:2 bbr:(bw:0bps,mrtt:0.014) send 187245714286bps lastsnd:712 lastrcv:712 lastack:712 pacing_rate 535120425240bps delivered:1 app_limited rcv_space:65483 rcv_ssthresh:65483 minrtt:0.014 snd_wnd:65536",
  "FIN-WAIT-1 0      32742  127.0.0.1:47018 127.0.0.1:56791 timer:(on,580ms,2) ino:0 sk:17 cgroup:/ ---",
  "\t skmem:(r0,rb131072,t0,tb8192,f2459,w34405,o0,bl0,d0) ts sack bbr wscale:10,10 rto:816 backoff:2 rtt:0.029/0.015 mss:32741 pmtu:65535 rcvmss:536 advmss:65483 cwnd:1 bytes_sent:163705 bytes_retrans:98223 bytes_acked:32742 segs_out:7 segs_in:6 data_segs_out:5 bbr:(bw:16370500000bps,mrtt:0.016,pacing_gain:2.88672,cwnd_gain:2.88672) send 9032000000bps lastsnd:236 lastrcv:1064 lastack:236 pacing_rate 241468168304bps delivery_rate 16370500000bps delivered:2 app_limited busy:1064ms rwnd_limited:116ms(10.9%) unacked:1 retrans:1/3 lost:1 rcv_space:65495 rcv_ssthresh:65495 notsent:1 minrtt:0.016",
  "",
].join("\n");

t.test("parses a captured multi-line ss listing", async (t) => {
  const rows = parseSocketTable(SAMPLE, "kang");
  t.equal(rows.length, 4);
  const [listen, tw, queued, fw1] = rows;
  t.match(listen, {
    host: "kang",
    state: "LISTEN",
    recvQ: 0,
    sendQ: 128,
    local: { address: "::1", port: 51485 },
    peer: { address: "::", port: 0 },
    inode: 14989,
    orphan: false,
    shutdown: "<->",
    info: { v6only: 1, bbr: true, cwnd: 10 },
    skmem: { rb: 131072, tb: 16384 },
  });
  t.match(tw, {
    state: "TIME_WAIT",
    local: { address: "127.0.0.1", port: 56791 },
    peer: { address: "127.0.0.1", port: 47024 },
    timer: { name: "timewait", expiresMs: 59_000, retrans: 0, raw: "timewait,59sec,0" },
    inode: 0,
    orphan: true,
    info: {},
  });
  t.equal(tw?.shutdown, undefined);
  t.equal(tw?.raw, SAMPLE.split("\n")[2], "raw keeps the line, less the empty detail line");
  t.match(queued, { state: "ESTABLISHED", inode: 0, shutdown: "<->", orphan: false });
  t.match(fw1, {
    state: "FIN_WAIT1",
    sendQ: 32742,
    timer: { name: "on", expiresMs: 580, retrans: 2 },
    orphan: true,
    shutdown: "---",
    sk: "17",
    cgroup: "/",
    info: {
      rto: 816,
      backoff: 2,
      rtt: "0.029/0.015",
      wscale: "10,10",
      retrans: "1/3",
      unacked: 1,
      lost: 1,
      bytes_acked: 32742,
      bytes_retrans: 98223,
      send: "9032000000bps",
      pacing_rate: "241468168304bps",
      delivery_rate: "16370500000bps",
      rwnd_limited: "116ms(10.9%)",
      app_limited: true,
      bbr: { bw: "16370500000bps", mrtt: 0.016, pacing_gain: 2.88672 },
    },
  });
  t.match(fw1?.raw, /^FIN-WAIT-1 .*---\n\t skmem:/);
  t.match(formatSocketTable(rows), /\[::1\]:51485\s+\[::\]:\*\s+128\s+0\s+LISTEN\s+off/);
  t.match(formatSocketTable(rows), /FIN_WAIT1 \(orphan\)\s+on \(0\.58\/2\)/);
});

t.test("never throws on what it does not know", async (t) => {
  const rows = parseSocketTable(
    "State Recv-Q Send-Q Local Address:Port Peer Address:Port\nWEIRD x y nowhere [::1]:80 frob:(a b) zap\n",
  );
  t.equal(rows.length, 1, "the header is skipped, the odd line kept");
  t.match(rows[0], {
    state: "WEIRD",
    local: { address: "nowhere" },
    peer: { address: "::1", port: 80 },
    orphan: false,
  });
  t.ok(Number.isNaN(rows[0]?.recvQ));
  t.same(rows[0]?.info, { frob: "a b", zap: true });
  t.equal(rows[0]?.raw, "WEIRD x y nowhere [::1]:80 frob:(a b) zap");
});

t.test("socketTable asks ss for every TCP state, one line per socket, inside the namespace", async (t) => {
  const calls: { argv: readonly string[]; netns: string | undefined }[] = [];
  const rows = await socketTable("/proc/1/ns/net", {
    host: "kang",
    exec: async (argv, options) => {
      calls.push({ argv, netns: options.netns });
      return { argv, code: 0, signal: null, stdout: SAMPLE, stderr: "" };
    },
  });
  t.same(calls, [{ argv: ["ss", "-tanoiemHO"], netns: "/proc/1/ns/net" }]);
  t.same(
    rows.map((r) => `${r.host} ${r.state}`),
    ["kang LISTEN", "kang TIME_WAIT", "kang ESTABLISHED", "kang FIN_WAIT1"],
  );
});

t.test("ss durations", async (t) => {
  t.equal(parseSsDuration("200ms"), 200);
  t.equal(parseSsDuration("1min2sec"), 62_000);
  t.equal(parseSsDuration("59sec"), 59_000);
  t.equal(parseSsDuration("1.5sec"), 1500);
  t.equal(parseSsDuration("10min"), 600_000);
  t.equal(parseSsDuration("1.452ms"), 1452, "ss 6.1 prints 1452 ms as seconds-dot-milliseconds 'ms'");
  t.equal(parseSsDuration("9.501sec"), 9501, "and newer ss as '9.501sec'");
  t.equal(parseSsDuration(""), 0, "an expired timer prints nothing");
  t.ok(Number.isNaN(parseSsDuration("soon")));
  t.ok(Number.isNaN(parseSsDuration("5sec later")));
});

t.test("waitForSocket runs out with the wait, the bound and the last table in its message", async (t) => {
  const l = lab(t);
  const listener = l.open().bind(LO, 0).listen();
  const port = listener.localAddress().port;
  const BOUND_MS = 300;
  const t0 = Date.now();
  const err = await waitForSocket(l.ns.path, (r) => r.state === "TIME_WAIT" && r.peer.port === port, {
    timeoutMs: BOUND_MS,
    intervalMs: 50,
    what: `TIME_WAIT to port ${port}`,
  }).then(
    () => undefined,
    (e: unknown) => e,
  );
  const elapsed = Date.now() - t0;
  t.type(err, SocketWaitTimeoutError);
  const e = err as SocketWaitTimeoutError;
  t.comment(e.message);
  t.equal(e.name, "SocketWaitTimeoutError");
  t.equal(e.code, "ESOCKPROBE_WAIT_TIMEOUT");
  t.match(e.message, `no socket matched TIME_WAIT to port ${port} within ${BOUND_MS} ms`);
  t.match(e.message, new RegExp(`Local Address.*\\n127\\.0\\.0\\.1:${port}\\s+0\\.0\\.0\\.0:\\*.*LISTEN`));
  t.equal(e.lastTable.length, 1);
  t.ok(elapsed >= BOUND_MS, `gave up after ${elapsed} ms, not before the bound`);
  // One ss spawn may straddle the deadline; a second of slack covers it on a loaded runner.
  t.ok(elapsed < BOUND_MS + 1000, `gave up after ${elapsed} ms, soon after the bound`);

  const unnamed = await waitForSocket(l.ns.path, (r) => r.state === "CLOSING", { timeoutMs: 0 }).catch((x) => x);
  t.match((unnamed as Error).message, /no socket matched .*"CLOSING".* within 0 ms \(1 poll of ss\)/);
});
