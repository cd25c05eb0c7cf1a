// Do the kernel's TCP tracepoints, recorded in a private tracefs instance, tell the true story of a connection?
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import t from "tap";
import {
  formatTraceEvent,
  parseTrace,
  startTrace,
  sweepStaleInstances,
  TIMESTAMP_ERROR_NS,
  type Trace,
  type TraceEvent,
  tracefsStatus,
} from "../../src/evidence/tracepoints.js";
import { Netns, Socket } from "../../src/sys/index.js";
import { waitUntil } from "../helpers/wait.js";

// Tracepoints are machine-wide: ports of this process's own keep another run's loopback tests out.
const PORT = 20_000 + (process.pid % 20_000);
const OTHER_PORT = PORT + 20_000;
const WAIT_MS = 2000;
const MODULE = fileURLToPath(new URL("../../src/evidence/tracepoints.ts", import.meta.url));

// Lines exactly as this kernel (6.18) prints them, in the events' own format and with options/fields=1.
const SAMPLE = [
  "# tracer: nop",
  "#",
  "# entries-in-buffer/entries-written: 5/7   #P:2",
  "            node-5250    [001] .....   343.419605: inet_sock_set_state: family=AF_INET protocol=IPPROTO_TCP sport=0 dport=8080 saddr=127.0.0.1 daddr=127.0.0.1 saddrv6=::ffff:127.0.0.1 daddrv6=::ffff:127.0.0.1 oldstate=TCP_CLOSE newstate=TCP_SYN_SENT",
  // Field order shuffled and a task name with spaces and dashes: the parser must not care.
  " my worker-x-77    [000] ..s2.   343.420844: inet_sock_set_state: newstate=TCP_CLOSE_WAIT oldstate=TCP_ESTABLISHED daddrv6=::ffff:127.0.0.1 saddrv6=::ffff:127.0.0.1 daddr=127.0.0.1 saddr=127.0.0.1 dport=8080 sport=47884 protocol=IPPROTO_TCP family=AF_INET",
  "            node-5250    [001] .....   343.522902: tcp_send_reset: skbaddr=0000000000000000 skaddr=ffff88810876ef00 src=[::1]:8080 dest=[::1]:47894 state=TCP_CLOSE reason=TCP_STATE",
  "          <idle>-0       [001] ..s2.   343.522861: tcp_receive_reset: family=AF_INET6 sport=47894 dport=8080 saddr=0.0.0.0 daddr=0.0.0.0 saddrv6=::1 daddrv6=::1 sock_cookie=c",
  "            node-5250    [001] b..1.   343.573251: tcp_destroy_sock: family=AF_INET sport=47894 dport=8080 saddr=127.0.0.1 daddr=127.0.0.1 saddrv6=::ffff:127.0.0.1 daddrv6=::ffff:127.0.0.1 sock_cookie=c",
  "something the parser has never seen",
].join("\n");
const SAMPLE_FIELDS = [
  "            node-5250    [001] .....   343.419605: inet_sock_set_state: skaddr=0xffff88810876d340 (-131387202546880) oldstate=0x7 (7) newstate=0x2 (2) sport=0x0 (0) dport=0x1f90 (8080) family=0x2 (2)",
  // Ports disagree with the first rendering: this skaddr must not be lent.
  " my worker-x-77    [000] ..s2.   343.420844: inet_sock_set_state: skaddr=0xffff888100000000 (-1) oldstate=0x1 (1) newstate=0x8 (8) sport=0x1 (1) dport=0x1f90 (8080) family=0x2 (2)",
  "            node-5250    [001] b..1.   343.573251: tcp_destroy_sock: skaddr=0xffff88810876d340 (-131387202546880) sport=0xbb36 (47894) dport=0x1f90 (8080) family=0x2 (2)",
].join("\n");

t.test("parseTrace reads this kernel's text format, in any field order", async (t) => {
  const { events, lost, unparsed } = parseTrace(SAMPLE, SAMPLE_FIELDS);
  t.equal(lost, 2, "entries-written minus entries-in-buffer");
  t.same(unparsed, ["something the parser has never seen"]);
  t.equal(events.length, 5);
  const [syn, closeWait, sent, received, destroyed] = events as [
    TraceEvent,
    TraceEvent,
    TraceEvent,
    TraceEvent,
    TraceEvent,
  ];
  t.match(syn, {
    atNs: 343_419_605_000n,
    event: "inet_sock_set_state",
    family: "IPv4",
    saddr: "127.0.0.1",
    sport: 0,
    daddr: "127.0.0.1",
    dport: 8080,
    oldstate: "CLOSE",
    newstate: "SYN_SENT",
    skaddr: "0xffff88810876d340",
    task: "node",
    pid: 5250,
    cpu: 1,
  });
  t.match(closeWait, { task: "my worker-x", pid: 77, sport: 47884, oldstate: "ESTABLISHED", newstate: "CLOSE_WAIT" });
  t.equal(closeWait.skaddr, undefined, "a fields line whose ports disagree lends nothing");
  t.match(sent, {
    event: "tcp_send_reset",
    family: "IPv6",
    saddr: "::1",
    sport: 8080,
    daddr: "::1",
    dport: 47894,
    state: "CLOSE",
    reason: "TCP_STATE",
    skaddr: "0xffff88810876ef00",
  });
  t.match(received, { event: "tcp_receive_reset", family: "IPv6", saddr: "::1", daddr: "::1", sport: 47894 });
  t.equal(received.fields.sock_cookie, "c");
  t.equal(destroyed.skaddr, "0xffff88810876d340");
  t.equal(parseTrace(SAMPLE).events[0]?.skaddr, undefined, "without the fields rendering, no skaddr is invented");
});

t.test("parseTrace reads Debian 6.1's lines: family printed empty, tcp_send_reset without a reason", async (t) => {
  // As the 6.1.0-56-amd64 guest printed them (no options/fields there: skaddr stays unknown).
  const lines = [
    "            node-122     [001] .....    10.753782: inet_sock_set_state: family= protocol=IPPROTO_TCP sport=54086 dport=4321 saddr=127.0.0.1 daddr=127.0.0.1 saddrv6=::ffff:127.0.0.1 daddrv6=::ffff:127.0.0.1 oldstate=TCP_SYN_SENT newstate=TCP_ESTABLISHED",
    "          <idle>-0       [000] ..s2.    11.100000: tcp_send_reset: family= sport=8080 dport=0 saddr=198.18.0.3 daddr=0.0.0.0 saddrv6=::ffff:198.18.0.3 daddrv6=::ffff:0.0.0.0 state=TCP_LISTEN",
    "          <idle>-0       [000] ..s2.    11.200000: tcp_receive_reset: family= sport=47894 dport=8080 saddr=0.0.0.0 daddr=0.0.0.0 saddrv6=::1 daddrv6=::1 sock_cookie=c",
  ].join("\n");
  const { events, unparsed } = parseTrace(lines);
  t.same(unparsed, []);
  t.match(events[0], { family: "IPv4", saddr: "127.0.0.1", daddr: "127.0.0.1", sport: 54086, newstate: "ESTABLISHED" });
  t.match(events[1], { event: "tcp_send_reset", family: "IPv4", saddr: "198.18.0.3", sport: 8080, state: "LISTEN" });
  t.equal(events[1]?.reason, undefined, "6.1's tcp_send_reset has no reason field");
  t.match(events[2], { event: "tcp_receive_reset", family: "IPv6", saddr: "::1", daddr: "::1" });
});

t.test("formatTraceEvent", async (t) => {
  const [syn] = parseTrace(SAMPLE).events as [TraceEvent];
  const e: TraceEvent = {
    ...syn,
    saddr: "198.18.0.1",
    sport: 40000,
    daddr: "198.18.0.2",
    dport: 8080,
    oldstate: "ESTABLISHED",
    newstate: "FIN_WAIT1",
  };
  t.equal(
    formatTraceEvent(e, syn.atNs - 1_234_000n),
    "+0.001234 198.18.0.1:40000 > 198.18.0.2:8080 ESTABLISHED -> FIN_WAIT1",
  );
  t.equal(formatTraceEvent(e, syn.atNs + 2_000_500_000n).slice(0, 9), "-2.000500");
  const sent = parseTrace(SAMPLE).events[2] as TraceEvent;
  t.equal(formatTraceEvent(sent, sent.atNs), "+0.000000 [::1]:8080 > [::1]:47894 RST sent (CLOSE, TCP_STATE)");
});

const status = tracefsStatus();

function ourInstances(): string[] {
  return readdirSync(`${status.root}/instances`).filter((n) => n.startsWith(`sockprobe-${process.pid}-`));
}

// Polls the trace for something the kernel must do, under a bound.
async function waitFor(trace: Trace, what: string, done: (events: TraceEvent[]) => boolean): Promise<void> {
  // The events themselves carry bigints, which the timeout message cannot print: wait on the verdict.
  await waitUntil(
    `${what} in the trace`,
    async () => done(await trace.snapshot()),
    (seen) => seen,
    WAIT_MS,
    10,
  );
}

function transitions(events: TraceEvent[], skaddr: string | undefined): string[] {
  return events
    .filter((e) => e.event === "inet_sock_set_state" && e.skaddr !== undefined && e.skaddr === skaddr)
    .map((e) => `${e.oldstate}->${e.newstate}`);
}

function exitOf(child: ReturnType<typeof spawn>): Promise<number | null> {
  return new Promise((resolve) => child.on("exit", (code) => resolve(code)));
}

if (!status.available) {
  t.skip(`real-kernel tracepoint tests: ${status.reason}`, () => {});
} else {
  t.test("orderly close, server first: both sides' states, in order, on the monotonic clock", async (t) => {
    const ns = Netns.create();
    t.teardown(() => ns.close());
    const listener = Socket.create({ netns: ns }).bind("127.0.0.1", PORT).listen();
    const other = Socket.create({ netns: ns }).bind("127.0.0.1", OTHER_PORT).listen();

    const before = process.hrtime.bigint();
    const trace = await startTrace({ ports: [PORT] });
    // A second recording at the same time, of both ports: proves the first one's exclusions are its filter's doing.
    const both = await startTrace({ ports: [PORT, OTHER_PORT] });
    t.not(trace.instance, both.instance, "two recordings never share a buffer");
    t.ok(trace.kernelFilters.inet_sock_set_state?.includes(`sport == ${PORT}`), "port filtered in the kernel too");

    const client = Socket.create({ netns: ns });
    await client.connectAsync("127.0.0.1", PORT, { timeoutMs: WAIT_MS });
    const server = await listener.acceptAsync({ timeoutMs: WAIT_MS });
    const clientPort = client.localAddress().port;

    // The other connection ends in a RST: tcp_send_reset has no port field, so only the TypeScript filter drops it.
    const otherClient = Socket.create({ netns: ns });
    await otherClient.connectAsync("127.0.0.1", OTHER_PORT, { timeoutMs: WAIT_MS });
    const otherServer = await other.acceptAsync({ timeoutMs: WAIT_MS });
    otherServer.setLinger(true, 0);
    otherServer.close();
    otherClient.close();

    server.close();
    const eof = await client.readAsync(16, { timeoutMs: WAIT_MS });
    t.equal(eof.length, 0, "client sees EOF: it is in CLOSE_WAIT");
    client.close();
    await waitFor(trace, "client LAST_ACK -> CLOSE", (evs) =>
      evs.some((e) => e.sport === clientPort && e.oldstate === "LAST_ACK" && e.newstate === "CLOSE"),
    );
    const events = await trace.stop();
    const wide = await both.stop();
    const after = process.hrtime.bigint();
    listener.close();
    other.close();
    t.comment(events.map((e) => formatTraceEvent(e, before)).join("\n"));

    t.equal(trace.lost, 0);
    t.same(trace.unparsed, []);
    t.ok(
      events.every((e) => e.skaddr !== undefined),
      "every event names its socket",
    );
    const clientSk = events.find((e) => e.newstate === "SYN_SENT")?.skaddr;
    const serverSk = events.find((e) => e.oldstate === "LISTEN" && e.dport === clientPort)?.skaddr;
    t.same(transitions(events, clientSk), [
      "CLOSE->SYN_SENT",
      "SYN_SENT->ESTABLISHED",
      "ESTABLISHED->CLOSE_WAIT",
      "CLOSE_WAIT->LAST_ACK",
      "LAST_ACK->CLOSE",
    ]);
    // The kernel never reports TIME_WAIT here: the full socket hands over to a timewait socket and
    // reports FIN_WAIT2 -> CLOSE; the timewait socket itself has no set_state event.
    t.same(transitions(events, serverSk), [
      "LISTEN->SYN_RECV",
      "SYN_RECV->ESTABLISHED",
      "ESTABLISHED->FIN_WAIT1",
      "FIN_WAIT1->FIN_WAIT2",
      "FIN_WAIT2->CLOSE",
    ]);
    t.ok(
      events.filter((e) => e.skaddr === clientSk && e.newstate !== "SYN_SENT").every((e) => e.sport === clientPort),
      "the client socket's events carry its port",
    );
    t.ok(
      events.some((e) => e.event === "tcp_destroy_sock" && e.skaddr === clientSk),
      "client socket destroyed",
    );
    t.ok(
      events.some((e) => e.event === "tcp_destroy_sock" && e.skaddr === serverSk),
      "server socket destroyed",
    );

    const outOfOrder = events.findIndex((e, i) => i > 0 && e.atNs < (events[i - 1] as TraceEvent).atNs);
    t.equal(outOfOrder, -1, "timestamps never go backwards");
    const outside = events.filter((e) => e.atNs < before - TIMESTAMP_ERROR_NS || e.atNs > after + TIMESTAMP_ERROR_NS);
    t.same(outside, [], `every event between hrtime ${before} and ${after} (±${TIMESTAMP_ERROR_NS} ns rounding)`);

    const onOther = (e: TraceEvent) => e.sport === OTHER_PORT || e.dport === OTHER_PORT;
    t.same(events.filter(onOther), [], "nothing of the connection on the other port");
    t.ok(
      wide.some((e) => onOther(e) && e.event === "tcp_send_reset"),
      "yet the recording of both ports saw its RST",
    );
    t.ok(
      wide.some((e) => e.sport === clientPort && e.newstate === "LAST_ACK"),
      "and this connection too",
    );
    t.same(ourInstances(), [], "no instance of ours left");
  });

  t.test("SO_LINGER {1, 0} close: RST sent by one side, received by the other", async (t) => {
    const ns = Netns.create();
    t.teardown(() => ns.close());
    const listener = Socket.create({ netns: ns }).bind("127.0.0.1", PORT).listen();
    const trace = await startTrace({ ports: [PORT] });
    const client = Socket.create({ netns: ns });
    await client.connectAsync("127.0.0.1", PORT, { timeoutMs: WAIT_MS });
    const server = await listener.acceptAsync({ timeoutMs: WAIT_MS });
    const clientPort = client.localAddress().port;
    server.setLinger(true, 0);
    server.close();
    await t.rejects(client.readAsync(16, { timeoutMs: WAIT_MS }), { code: "ECONNRESET", syscall: "read" });
    client.close();
    listener.close();
    const events = await trace.stop();
    t.comment(events.map((e) => formatTraceEvent(e, events[0]?.atNs ?? 0n)).join("\n"));

    const clientSk = events.find((e) => e.newstate === "SYN_SENT")?.skaddr;
    const serverSk = events.find((e) => e.oldstate === "LISTEN" && e.dport === clientPort)?.skaddr;
    const sent = events.filter((e) => e.event === "tcp_send_reset");
    const received = events.filter((e) => e.event === "tcp_receive_reset");
    t.match(sent, [{ saddr: "127.0.0.1", sport: PORT, daddr: "127.0.0.1", dport: clientPort, skaddr: serverSk }]);
    t.match(received, [{ sport: clientPort, dport: PORT, skaddr: clientSk }]);
    t.ok(serverSk && clientSk && serverSk !== clientSk, "two distinct sockets");
    t.same(transitions(events, serverSk).slice(-1), ["ESTABLISHED->CLOSE"], "server aborts from ESTABLISHED");
    t.same(transitions(events, clientSk).slice(-1), ["ESTABLISHED->CLOSE"], "client reset out of ESTABLISHED");
    t.same(ourInstances(), []);
  });

  t.test("IPv6 loopback: v6 addresses from the v6 fields", async (t) => {
    const ns = Netns.create();
    t.teardown(() => ns.close());
    const listener = Socket.create({ netns: ns, family: "IPv6" }).bind("::1", PORT).listen();
    const trace = await startTrace({ addresses: ["::1"], ports: [PORT] });
    const client = Socket.create({ netns: ns, family: "IPv6" });
    await client.connectAsync("::1", PORT, { timeoutMs: WAIT_MS });
    const server = await listener.acceptAsync({ timeoutMs: WAIT_MS });
    server.setLinger(true, 0);
    server.close();
    client.close();
    listener.close();
    const events = await trace.stop();
    t.ok(events.length > 0);
    t.ok(
      events.every((e) => e.family === "IPv6" && e.saddr === "::1"),
      "every event is IPv6 from ::1",
    );
    t.match(
      events.filter((e) => e.event === "tcp_send_reset"),
      [{ saddr: "::1", sport: PORT, daddr: "::1" }],
    );
  });

  t.test("address filter: either endpoint", async (t) => {
    const ns = Netns.create();
    t.teardown(() => ns.close());
    const listener = Socket.create({ netns: ns }).bind("127.0.0.1", PORT).listen();
    const trace = await startTrace({ addresses: ["127.0.0.2"] });
    const wanted = Socket.create({ netns: ns }).bind("127.0.0.2");
    const unwanted = Socket.create({ netns: ns }).bind("127.0.0.3");
    await wanted.connectAsync("127.0.0.1", PORT, { timeoutMs: WAIT_MS });
    await unwanted.connectAsync("127.0.0.1", PORT, { timeoutMs: WAIT_MS });
    const wantedPort = wanted.localAddress().port;
    const unwantedPort = unwanted.localAddress().port;
    for (const s of [
      await listener.acceptAsync({ timeoutMs: WAIT_MS }),
      await listener.acceptAsync({ timeoutMs: WAIT_MS }),
      wanted,
      unwanted,
      listener,
    ])
      s.close();
    const events = await trace.stop();
    t.ok(
      events.some((e) => e.sport === wantedPort),
      "the connection from 127.0.0.2 is there",
    );
    t.ok(
      events.some((e) => e.dport === wantedPort),
      "seen from the server side too (127.0.0.2 as the remote end)",
    );
    t.same(
      events.filter((e) => e.saddr !== "127.0.0.2" && e.daddr !== "127.0.0.2"),
      [],
    );
    t.same(
      events.filter((e) => e.sport === unwantedPort || e.dport === unwantedPort),
      [],
    );
  });

  t.test("sweepStaleInstances removes a dead pid's instance and nothing live", async (t) => {
    const child = spawn("true");
    await exitOf(child);
    const deadPid = child.pid as number;
    const dead = `sockprobe-${deadPid}-1`;
    const live = `sockprobe-${process.ppid}-999999`;
    mkdirSync(`${status.root}/instances/${dead}`);
    mkdirSync(`${status.root}/instances/${live}`);
    t.teardown(() => {
      for (const n of [dead, live])
        if (existsSync(`${status.root}/instances/${n}`)) rmdirSync(`${status.root}/instances/${n}`);
    });
    const removed = sweepStaleInstances();
    // Another sockprobe process starting a trace at this moment may sweep it first.
    t.ok(removed.includes(dead) || !existsSync(`${status.root}/instances/${dead}`), `${dead} reported removed`);
    t.notOk(existsSync(`${status.root}/instances/${dead}`), "and gone");
    t.notOk(removed.includes(live), "a live pid's instance (our parent's) is left alone");
    t.ok(existsSync(`${status.root}/instances/${live}`));
  });

  t.test("a process killed with SIGKILL leaves an instance that the next startTrace sweeps", async (t) => {
    const script = `import { startTrace } from ${JSON.stringify(MODULE)};
const trace = await startTrace({ ports: [1] });
console.log(trace.instance);
setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ["--import=tsx", "--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const exited = exitOf(child);
    const instance = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout?.setEncoding("utf8").on("data", (d: string) => {
        out += d;
        if (out.includes("\n")) resolve(out.trim());
      });
      child.on("exit", (code) => reject(new Error(`child exited with ${code} before starting a trace`)));
    });
    t.ok(existsSync(instance), `child's ${instance} exists while it runs`);
    child.kill("SIGKILL");
    await exited;
    t.ok(existsSync(instance), "kill -9 skips the exit hook: the instance is left behind");
    const trace = await startTrace({ ports: [1] });
    await trace.stop();
    t.notOk(existsSync(instance), "startTrace swept it");
  });

  t.test("a process that exits without stop() removes its instance on exit", async (t) => {
    const script = `import { startTrace } from ${JSON.stringify(MODULE)};
const trace = await startTrace({ ports: [1] });
console.log(trace.instance);`;
    const child = spawn(process.execPath, ["--import=tsx", "--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    t.equal(await exitOf(child), 0);
    const instance = out.trim();
    t.match(instance, /\/instances\/sockprobe-\d+-\d+$/);
    t.notOk(existsSync(instance), "the exit hook removed it");
  });

  t.test("nothing of ours is left in tracefs", async (t) => {
    t.same(ourInstances(), []);
  });
}
