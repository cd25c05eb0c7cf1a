// The agent and its client: the codec, the agent over in-memory streams, and real agents in a fresh
// namespace talking TCP to each other on its loopback.
import { spawnSync } from "node:child_process";
import { release } from "node:os";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import t, { type Test } from "tap";
import { runAgent } from "../../src/agent/agent.js";
import {
  decodeError,
  decodeValue,
  encodeError,
  encodeValue,
  PROTOCOL_VERSION,
  type Response,
  type Wire,
} from "../../src/agent/protocol.js";
import { AgentClient, AgentExitedError } from "../../src/lab/agent-client.js";
import { Netns, POLLIN, POLLRDHUP, SysError, Transcript, WaitTimeoutError } from "../../src/sys/index.js";

const AGENT_MAIN = fileURLToPath(new URL("../../src/agent/main.ts", import.meta.url));
const TSX = import.meta.resolve("tsx");
const spawnedPids = new Set<number>();
// A hang (a call that never answers) must fail in seconds, not at tap's file timeout.
const BOUND = { timeout: 30_000 };

// Through real JSON text, as a line would carry it.
const overTheWire = (v: unknown): unknown => decodeValue(JSON.parse(JSON.stringify(encodeValue(v))) as Wire);
const errorOverTheWire = (e: unknown): Error => decodeError(JSON.parse(JSON.stringify(encodeError(e))));

async function spawnAgent(t: Test, netns: string, host: string, transcript?: Transcript): Promise<AgentClient> {
  const agent = await AgentClient.spawn(netns, host, transcript);
  if (agent.pid !== undefined) spawnedPids.add(agent.pid);
  t.teardown(() => agent.close());
  return agent;
}

function freshNetns(t: Test): Netns {
  const ns = Netns.create();
  t.teardown(() => ns.close());
  return ns;
}

t.test("codec: values survive a JSON line exactly", BOUND, async (t) => {
  const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  t.ok(every.equals(overTheWire(every) as Buffer), "all 256 byte values, non-UTF-8 included");
  t.equal((overTheWire(Buffer.alloc(0)) as Buffer).length, 0, "an empty Buffer stays a Buffer (EOF)");
  const nested = {
    ready: 1,
    outcomes: [{ fd: 7, revents: 8193, names: ["POLLIN", "POLLRDHUP"] }],
    data: [Buffer.from([0xff, 0x00]), null, true, "é", { deeper: { still: Buffer.from("x") } }],
    missing: undefined,
    gaps: [undefined, 1],
    forever: -Infinity,
    notANumber: Number.NaN,
  };
  const back = overTheWire(nested) as typeof nested;
  t.strictSame(back, nested, "nested objects, arrays, Buffers, undefined and non-finite numbers");
  const deep = back.data[4] as { deeper: { still: unknown } };
  t.ok(Buffer.isBuffer(back.data[0]) && Buffer.isBuffer(deep.deeper.still), "Buffers stay Buffers at any depth");
  t.ok("missing" in back && back.gaps.length === 2 && back.gaps[0] === undefined, "undefined keeps its place");
  const lookalike = { $buf: "AAAA", $sock: 3 };
  t.strictSame(overTheWire(lookalike), lookalike, "a plain object with marker-like keys is not read as a marker");
  t.throws(() => encodeValue(10n), TypeError, "a bigint cannot cross");
  t.throws(() => encodeValue(new Map()), { name: "TypeError", message: /Map/ });
  t.throws(() => decodeValue({ $what: 1 }), { name: "TypeError", message: /unknown marker \$what/ });
});

t.test("codec: errors come back as the same class with the same fields", BOUND, async (t) => {
  const sys = errorOverTheWire(new SysError(-104, "read", { cause: new Error("why") }));
  t.ok(sys instanceof SysError, "instanceof SysError");
  t.match(sys, { name: "SysError", code: "ECONNRESET", errno: -104, syscall: "read" });
  t.equal(sys.message, "ECONNRESET: connection reset by peer, read");
  t.equal((sys.cause as Error).message, "why", "cause kept");

  const worded = encodeError(new SysError(-111, "connect"));
  const reworded = decodeError({ ...worded, message: "ECONNREFUSED: refused, as another libuv says it, connect" });
  t.equal(reworded.message, "ECONNREFUSED: refused, as another libuv says it, connect", "the agent's wording wins");
  t.match(reworded.stack, /^SysError: ECONNREFUSED: refused, as another/);

  const wait = errorOverTheWire(new WaitTimeoutError("read on fd 5 (kodos)", 2000));
  t.ok(wait instanceof WaitTimeoutError, "instanceof WaitTimeoutError");
  t.equal(wait.name, "WaitTimeoutError");
  t.equal((wait as WaitTimeoutError).code, "ESOCKPROBE_WAIT_TIMEOUT");
  t.equal(wait.message, "read on fd 5 (kodos) did not complete within 2000 ms");

  const type = errorOverTheWire(new TypeError("Socket.read(length?: integer >= 0)"));
  t.ok(type instanceof TypeError);
  t.equal(type.message, "Socket.read(length?: integer >= 0)");
  t.ok(errorOverTheWire(new RangeError("too far")) instanceof RangeError);
  const odd = errorOverTheWire(Object.assign(new Error("odd"), { name: "OddError", code: "EODD" }));
  t.match(odd, { name: "OddError", code: "EODD", message: "odd" });
  t.equal(errorOverTheWire("a string").message, "non-error thrown: a string");
});

// The socket number in a `socket` answer.
const refIn = (r: Response): number => (r as unknown as { value: { $sock: number } }).value.$sock;

// An agent in this process, over in-memory streams, serving a fresh namespace.
function inProcessAgent(t: Test, host = "kif") {
  const ns = freshNetns(t);
  const input = new PassThrough();
  const output = new PassThrough();
  const logs: string[] = [];
  const done = runAgent(input, output, { host, netns: ns, log: (l) => logs.push(l) });
  const raw: string[] = [];
  const answers: Response[] = [];
  const waiters: Array<() => void> = [];
  let partial = "";
  output.setEncoding("utf8").on("data", (d: string) => {
    partial += d;
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      raw.push(line);
      answers.push(JSON.parse(line));
      for (const w of waiters.splice(0)) w();
    }
  });
  const answerTo = async (id: number | string | null): Promise<Response> => {
    for (;;) {
      const found = answers.find((a) => a.id === id);
      if (found) return found;
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  const sent: string[] = [];
  const send = (line: string) => {
    sent.push(line);
    return input.write(`${line}\n`);
  };
  t.teardown(() => {
    input.end();
    return done;
  });
  return { ns, input, output, done, raw, answers, answerTo, send, sent, logs };
}

t.test("runAgent over in-memory streams: every line answered, malformed ones included", BOUND, async (t) => {
  const a = inProcessAgent(t);
  a.send(JSON.stringify({ id: 1, op: "hello" }));
  const hello = await a.answerTo(1);
  t.match(hello, { id: 1, ok: true, value: { protocol: PROTOCOL_VERSION, host: "kif", pid: process.pid } });

  a.send("this is not json");
  t.match(await a.answerTo(null), { ok: false, error: { name: "SyntaxError", message: /not a JSON line/ } });
  a.answers.length = 0;
  a.send(JSON.stringify({ op: "hello" }));
  t.match(await a.answerTo(null), { ok: false, error: { name: "TypeError", message: /an id/ } }, "no id: id null");
  a.send(JSON.stringify({ id: "x", op: "reboot" }));
  t.match(await a.answerTo("x"), { ok: false, error: { name: "TypeError", message: /unknown op "reboot"/ } });

  a.send(JSON.stringify({ id: 2, op: "socket", family: "IPv4" }));
  const sock = await a.answerTo(2);
  t.match(sock, { ok: true, value: { $sock: Number, fd: Number, family: "IPv4", host: "kif" } });
  const ref = refIn(sock);
  a.send(JSON.stringify({ id: 3, op: "call", sock: ref, method: "__proto__", args: [] }));
  t.match(await a.answerTo(3), {
    ok: false,
    error: { name: "TypeError", message: /"__proto__" is not a socket call a host offers; use one of bind, listen,/ },
  });
  a.send(JSON.stringify({ id: 4, op: "call", sock: 999, method: "close" }));
  t.match(await a.answerTo(4), { ok: false, error: { message: /no socket 999 on host kif/ } });
  a.send(JSON.stringify({ id: 5, op: "call", sock: ref, method: "bind", args: ["127.0.0.1", 0] }));
  t.strictSame((await a.answerTo(5)) as unknown, { id: 5, ok: true, value: (sock as { value: Wire }).value }, "this");
  a.send(JSON.stringify({ id: 6, op: "call", sock: ref, method: "listen", args: [{ $undef: true }] }));
  t.match(await a.answerTo(6), { ok: true }, "undefined crosses as undefined, so the default backlog applies");

  // A long poll first, then a quick call: the quick one answers first.
  a.send(JSON.stringify({ id: 7, op: "call", sock: ref, method: "poll", args: [POLLIN, 5000] }));
  a.send(JSON.stringify({ id: 8, op: "call", sock: ref, method: "tcpInfo" }));
  t.match(await a.answerTo(8), { ok: true, value: { stateName: "LISTEN" } });
  t.notOk(
    a.answers.some((x) => x.id === 7),
    "the poll is still pending",
  );
  a.send(JSON.stringify({ id: 9, op: "closeAll" }));
  t.match(await a.answerTo(9), { ok: true, value: 1 });
  t.match(
    await a.answerTo(7),
    { ok: false, error: { name: "SysError", code: "ECANCELED", syscall: "poll" } },
    "closing wakes the pending poll, which answers",
  );
  a.input.end();
  await a.done;
  t.ok(
    a.raw.every((l) => typeof JSON.parse(l).ok === "boolean"),
    "nothing but protocol lines on output",
  );
  t.equal(a.raw.length, a.sent.length, "one answer per non-empty line");
});

t.test("runAgent: end of input closes sockets and answers what was pending", BOUND, async (t) => {
  const a = inProcessAgent(t);
  a.send(JSON.stringify({ id: 1, op: "socket" }));
  const ref = refIn(await a.answerTo(1));
  a.send(JSON.stringify({ id: 2, op: "call", sock: ref, method: "bind", args: ["127.0.0.1", 0] }));
  a.send(JSON.stringify({ id: 3, op: "call", sock: ref, method: "listen", args: [] }));
  a.send(JSON.stringify({ id: 4, op: "call", sock: ref, method: "acceptAsync", args: [] }));
  a.input.end(JSON.stringify({ id: 5, op: "hello" })); // the last line has no newline: still read
  await a.done;
  t.match(await a.answerTo(4), { ok: false, error: { code: "ECANCELED" } }, "the pending accept answered");
  t.match(await a.answerTo(5), { ok: true, value: { host: "kif" } });
});

t.test("runAgent: exit answers, then stops", BOUND, async (t) => {
  const a = inProcessAgent(t);
  a.send(JSON.stringify({ id: 1, op: "exit" }));
  await a.done;
  t.match(await a.answerTo(1), { ok: true, value: true });
  a.send(JSON.stringify({ id: 2, op: "hello" }));
  await new Promise((r) => setTimeout(r, 50));
  t.equal(a.answers.length, 1, "nothing read after exit");
});

t.test("AgentClient over in-memory streams: signals cross, a closed stream fails everything", BOUND, async (t) => {
  const ns = freshNetns(t);
  const toAgent = new PassThrough();
  const fromAgent = new PassThrough();
  const done = runAgent(toAgent, fromAgent, { host: "kif", netns: ns, log: () => {} });
  const client = new AgentClient(fromAgent, toAgent, { host: "kif" });
  t.teardown(() => client.close());
  t.match(await client.hello(), { protocol: PROTOCOL_VERSION, host: "kif" });
  const l = await client.socket();
  t.equal(await l.bind("127.0.0.1", 0), l, "a method returning this gives the same HostSocket");
  await l.listen();
  const controller = new AbortController();
  const started = Date.now();
  const waiting = l.poll(POLLIN, 10_000, { signal: controller.signal });
  setTimeout(() => controller.abort(), 100);
  await t.rejects(waiting, { name: "SysError", code: "ECANCELED", syscall: "poll" }, "the abort reached the agent");
  t.ok(Date.now() - started < 5000, "well before the poll's own timeout");

  const pending = l.acceptAsync();
  toAgent.end();
  await done;
  fromAgent.end();
  await t.rejects(pending, { code: "ECANCELED" }, "the agent answered its pending call before it went");
  await t.rejects(l.tcpInfo(), AgentExitedError);
  await t.rejects(client.hello(), { message: "agent on host kif exited (its output ended)" });
});

t.test("two agents in one namespace, talking TCP over its loopback", BOUND, async (t) => {
  const ns = freshNetns(t);
  const transcript = new Transcript();
  const kodos = await spawnAgent(t, ns.path, "kodos", transcript);
  const kang = await spawnAgent(t, ns.path, "kang", transcript);

  const hello = await kodos.hello();
  t.match(hello, { protocol: PROTOCOL_VERSION, host: "kodos", kernel: release(), node: process.version });
  t.equal(hello.pid, kodos.pid, "the agent is the spawned process itself, not a wrapper");
  t.not(kodos.pid, kang.pid);

  const sock = await kodos.socket();
  const listener = await sock.bind("127.0.0.1", 0);
  t.equal(listener, sock, "bind returns the same HostSocket");
  await listener.listen(4);
  const port = (await listener.localAddress()).port;

  const c = await kang.socket();
  await c.connectAsync("127.0.0.1", port, { timeoutMs: 2000 });
  const s = await listener.acceptAsync({ timeoutMs: 2000 });
  t.not(s, listener, "accept gives a new socket");
  t.match(s, { host: "kodos", family: "IPv4", fd: Number });
  t.strictSame(await s.remoteAddress(), await c.localAddress(), "the accepted socket is the other end of kang's");

  const payload = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0xc3, 0x28, 0x0a, 0x0d, 0xed, 0xa0, 0x80]);
  t.equal(await c.write(payload), payload.length);
  const got = await s.readAsync(100, { timeoutMs: 2000 });
  t.ok(Buffer.isBuffer(got), "a Buffer comes back");
  t.ok(got.equals(payload), `exact bytes, non-UTF-8 included: ${got.toString("hex")}`);
  t.equal((await s.tcpInfo()).stateName, "ESTABLISHED");
  t.equal((await c.tcpInfo()).stateName, "ESTABLISHED");

  // A second connection, for the concurrency and reset checks.
  const c2 = await kang.socket();
  await c2.connectAsync("127.0.0.1", port, { timeoutMs: 2000 });
  const s2 = await listener.acceptAsync({ timeoutMs: 2000 });

  const t0 = Date.now();
  let writeAt = 0;
  let readAt = 0;
  const slowRead = s.readAsync(10, { timeoutMs: 2000 }).finally(() => {
    readAt = Date.now() - t0;
  });
  slowRead.catch(() => {});
  t.equal(await s2.write("ping"), 4);
  writeAt = Date.now() - t0;
  t.ok(writeAt < 1000, `the write on another socket of the same agent answered after ${writeAt} ms`);
  t.equal(readAt, 0, "while the read was still pending");
  const err = await slowRead.then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof WaitTimeoutError, "the read then timed out, as WaitTimeoutError");
  t.match(err, { code: "ESOCKPROBE_WAIT_TIMEOUT", message: /did not complete within 2000 ms/ });
  t.ok(readAt >= 1900, `after its 2 s bound (${readAt} ms)`);
  t.equal((await c2.readAsync(10, { timeoutMs: 2000 })).toString(), "ping");

  await c.shutdown("SHUT_WR");
  const polled = await s.poll(POLLIN | POLLRDHUP, 2000);
  t.strictSame(polled.outcomes[0]?.names, ["POLLIN", "POLLRDHUP"], "the peer's FIN: POLLIN and POLLRDHUP");
  const eof = await s.read(100);
  t.ok(Buffer.isBuffer(eof) && eof.length === 0, "then read gives 0 bytes");

  const probe = await (await kodos.socket()).bind("127.0.0.1", 0);
  const closedPort = (await probe.localAddress()).port; // bound, never listening
  const refused = await (await kang.socket()).connectAsync("127.0.0.1", closedPort, { timeoutMs: 2000 }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(refused instanceof SysError, "ECONNREFUSED rebuilt as a SysError");
  t.match(refused, { code: "ECONNREFUSED", errno: -111, syscall: "connect" });
  t.equal((refused as Error).message, "ECONNREFUSED: connection refused, connect");
  t.match((refused as Error).stack, /at agent on host kang/, "its stack names the host");

  await c2.setLinger(true, 0);
  t.strictSame(await c2.getLinger(), { onoff: 1, linger: 0 });
  await c2.close();
  await t.rejects(
    s2.readAsync(100, { timeoutMs: 2000 }),
    { name: "SysError", code: "ECONNRESET", errno: -104, syscall: "read" },
    "SO_LINGER {1, 0} close: the peer reads ECONNRESET",
  );
  await t.rejects(c2.write("late"), { code: "EBADF", syscall: "write" }, "a closed socket says EBADF, as locally");

  await t.rejects(
    kodos.call(s, "destroy"),
    {
      name: "TypeError",
      message: /^"destroy" is not a socket call a host offers; use one of bind, listen, accept, .*, close, closeAsync$/,
    },
    "an unknown method is refused, naming it and the allowed ones",
  );
  await t.rejects(kodos.call(s, "constructor", []), TypeError);
  t.equal((await s.tcpInfo()).stateName, "CLOSE_WAIT", "the refused calls did nothing to the socket");

  const entries = transcript.entries;
  const first = (host: string, call: string, pred: (e: (typeof entries)[number]) => boolean = () => true) =>
    entries.find((e) => e.host === host && e.call === call && pred(e));
  const connect = first("kang", "connect", (e) => e.result === "0");
  const accept = first("kodos", "accept");
  const write = first("kang", "write");
  const read = first("kodos", "read", (e) => e.result === String(payload.length));
  t.ok(connect && accept && write && read, "entries from both hosts");
  t.ok(
    connect!.atUs < accept!.atUs && accept!.atUs < write!.atUs && write!.atUs < read!.atUs,
    "in the order they happened, on one clock",
  );
  t.match(
    first("kang", "connect", (e) => e.error !== undefined),
    {
      args: [/^\d+$/, `127.0.0.1:${closedPort}`],
      error: "ECONNREFUSED",
      errno: -111,
    },
  );
  t.match(
    first("kodos", "read", (e) => e.error !== undefined && e.error !== "ESOCKPROBE_WAIT_TIMEOUT"),
    {
      error: "ECONNRESET",
      errno: -104,
      args: [String(s2.fd), "100"],
    },
  );
  t.match(
    first("kodos", "poll", (e) => e.args[1] === "POLLIN|POLLRDHUP"),
    { result: "1 [POLLIN|POLLRDHUP]" },
  );
  t.match(
    first("kodos", "getsockopt", (e) => e.args[1] === "TCP_INFO"),
    { result: /^\{state=ESTABLISHED, \d+ bytes\}$/ },
  );
  const listing = transcript.format();
  t.match(listing, /kang +\d+\.\d{6} {2}connect\(\d+, 127\.0\.0\.1:\d+\) {2}Err#111 ECONNREFUSED/);
  t.match(listing, /kodos +\d+\.\d{6} {2}read\(\d+, 100\) {2}Err#104 ECONNRESET/);
  const times = listing.split("\n").map((l) => Number(l.trim().split(/\s+/)[1]));
  t.ok(
    times.every((v, i) => i === 0 || v >= (times[i - 1] ?? 0)),
    "the listing is in time order",
  );
  t.comment(listing);

  const open = await kodos.closeAll();
  t.equal(open, 4, "closeAll closed what kodos still held: the listener, the probe and both accepted sockets");
  await t.rejects(listener.tcpInfo(), { code: "EBADF" });
});

t.test("a killed agent fails its pending calls and every later one", BOUND, async (t) => {
  const ns = freshNetns(t);
  const agent = await spawnAgent(t, ns.path, "kodos");
  const l = await (await (await agent.socket()).bind("127.0.0.1", 0)).listen();
  const pending = l.acceptAsync();
  process.kill(agent.pid as number, "SIGKILL");
  await t.rejects(pending, { name: "AgentExitedError", message: /^agent on host kodos exited \(signal SIGKILL\)/ });
  t.ok((await pending.catch((e: unknown) => e)) instanceof AgentExitedError, "an AgentExitedError");
  const t0 = Date.now();
  await t.rejects(l.tcpInfo(), { message: /^agent on host kodos exited \(signal SIGKILL\)/ });
  await t.rejects(agent.socket(), { message: /^agent on host kodos exited/ });
  await t.rejects(agent.hello(), AgentExitedError);
  t.ok(Date.now() - t0 < 100, "later calls reject at once");
  t.strictSame(await agent.exited, { code: null, signal: "SIGKILL" });
});

t.test("spawn fails clearly when the agent cannot start", BOUND, async (t) => {
  await t.rejects(AgentClient.spawn("/nonexistent/netns", "kodos"), {
    message:
      /^agent on host kodos did not start: agent on host kodos exited \(code 1\): nsenter: [\s\S]*--- its stderr ---\nnsenter: /,
  });
});

t.test("main: usage and a clean exit at end of input", BOUND, async (t) => {
  for (const args of [[], ["--host"], ["--bogus", "x"], ["--host", "--x"], ["--host", "a", "b"]]) {
    const r = spawnSync(process.execPath, [`--import=${TSX}`, AGENT_MAIN, ...args], { encoding: "utf8" });
    t.equal(r.status, 2, `exit 2 for ${JSON.stringify(args)}`);
    t.match(r.stderr, /^usage: main\.js --host NAME[^\n]*\n {7}main\.js --check[^\n]*\n$/, "the usage on stderr");
    t.equal(r.stdout, "", "nothing on stdout");
  }
  const r = spawnSync(process.execPath, [`--import=${TSX}`, AGENT_MAIN, "--host=kif"], {
    encoding: "utf8",
    input: `${JSON.stringify({ id: 1, op: "hello" })}\n`,
    timeout: 20_000,
  });
  t.equal(r.status, 0, `exits 0 when stdin ends (stderr: ${r.stderr})`);
  const check = spawnSync(process.execPath, [`--import=${TSX}`, AGENT_MAIN, "--check"], { encoding: "utf8" });
  t.equal(check.status, 0, "--check: the agent can run here");
  t.match(check.stdout, /^sockprobe agent can run: Node v\d+\.\d+\.\d+, Linux \S+\n$/);
  const lines = r.stdout.split("\n").filter(Boolean);
  t.equal(lines.length, 1, "exactly one line out");
  t.match(JSON.parse(lines[0] ?? "null"), { id: 1, ok: true, value: { host: "kif", protocol: PROTOCOL_VERSION } });
});

t.test("no agent of ours outlives the tests", BOUND, async (t) => {
  const r = spawnSync("pgrep", ["-P", String(process.pid), "-f", "agent/main"], { encoding: "utf8" });
  t.equal(r.stdout.trim(), "", "pgrep finds no agent whose parent is this test");
  const alive = [...spawnedPids].filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
  t.strictSame(alive, [], `none of the ${spawnedPids.size} agents spawned is alive`);
  t.ok(spawnedPids.size >= 3, "the agents were spawned and tracked");
});
