// Real-kernel tests: each in a fresh network namespace, on its loopback.
import { constants } from "node:os";
import t from "tap";
import {
  errnoNumber,
  Netns,
  native,
  POLLIN,
  POLLOUT,
  POLLRDHUP,
  Socket,
  type SysError,
  WaitTimeoutError,
} from "../../src/sys/index.js";
import { loopback } from "../helpers/loopback.js";
import { traceSignal } from "../helpers/signals.js";

const SIGPIPE = constants.signals.SIGPIPE;

// Waits on the kernel: polls `read` until `done` holds, bounded. Returns the last value either way,
// so the caller's assertion is what fails, with expected against actual.
async function until<T>(read: () => T, done: (v: T) => boolean, timeoutMs = 2000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = read();
    if (done(v) || Date.now() > deadline) return v;
    await new Promise((r) => setImmediate(r));
  }
}

t.test("ECONNREFUSED to a closed port", async (t) => {
  const ns = Netns.create();
  t.teardown(() => ns.close());
  const probe = Socket.create({ netns: ns }).bind("127.0.0.1", 0);
  const port = probe.localAddress().port; // bound, never listening: nothing accepts there
  const c = Socket.create({ netns: ns });
  t.teardown(() => {
    probe.close();
    c.close();
  });
  await t.rejects(c.connectAsync("127.0.0.1", port, { timeoutMs: 2000 }), {
    code: "ECONNREFUSED",
    syscall: "connect",
    errno: -errnoNumber("ECONNREFUSED"),
    message: "ECONNREFUSED: connection refused, connect",
  });
});

t.test("a namespace is isolated: its listener is not reachable from another", async (t) => {
  const a = await loopback(t);
  const other = Netns.create();
  const c = Socket.create({ netns: other });
  t.teardown(() => {
    c.close();
    other.close();
  });
  await t.rejects(c.connectAsync("127.0.0.1", a.port, { timeoutMs: 2000 }), { code: "ECONNREFUSED" });
});

t.test("a non-blocking connect says EINPROGRESS, then completes", async (t) => {
  const lb = await loopback(t);
  const c = lb.open();
  t.throws(() => c.connect(lb.address, lb.port), { code: "EINPROGRESS", syscall: "connect" });
  const r = await c.poll(POLLOUT, 2000);
  t.same(r.outcomes[0]?.names, ["POLLOUT"]);
  t.equal(c.takeError(), 0, "no pending error after the handshake");
  t.equal(c.remoteAddress().port, lb.port);
});

t.test("EAGAIN on an empty non-blocking read, and accept with an empty queue", async (t) => {
  const lb = await loopback(t);
  t.throws(() => lb.client.read(), {
    code: "EAGAIN",
    syscall: "read",
    message: /^EAGAIN: resource temporarily unavailable, read$/,
  });
  t.throws(() => lb.listener.accept(), { code: "EAGAIN", syscall: "accept" });
});

t.test("EPIPE on write after our own shutdown(SHUT_WR), and no SIGPIPE", async (t) => {
  const lb = await loopback(t);
  // Node ignores SIGPIPE, so surviving proves nothing: the kernel's own record of signals does.
  const sigpipe = traceSignal(SIGPIPE);
  if ("reason" in sigpipe) t.comment(`SIGPIPE not traced: ${sigpipe.reason}`);
  else t.teardown(() => sigpipe.close());
  lb.client.shutdown("SHUT_WR");
  t.throws(() => lb.client.write("late"), { code: "EPIPE", syscall: "write" });
  t.throws(() => lb.client.send("late", ["MSG_DONTWAIT"]), { code: "EPIPE", syscall: "send" });
  if (!("reason" in sigpipe)) {
    t.equal(sigpipe.count(), 0, "MSG_NOSIGNAL: the kernel generated no SIGPIPE");
    process.kill(process.pid, "SIGPIPE");
    t.equal(sigpipe.count(), 1, "while one sent on purpose is recorded (and ignored)");
  }
});

t.test("POLLRDHUP and read 0 after the peer's shutdown(SHUT_WR)", async (t) => {
  const lb = await loopback(t);
  const waiting = lb.client.poll(POLLIN | POLLRDHUP, 2000);
  lb.server.shutdown("SHUT_WR");
  const r = await waiting;
  t.same(r.outcomes[0]?.names, ["POLLIN", "POLLRDHUP"]);
  t.equal(lb.client.read().length, 0, "end of stream");
  const reply = "still open this way";
  t.equal(lb.client.write(reply), reply.length, "the other direction still carries data");
  t.equal((await lb.server.readAsync(100, { timeoutMs: 2000 })).toString(), reply);
});

t.test("EINVAL for out-of-range keepalive values", async (t) => {
  const lb = await loopback(t);
  t.throws(() => lb.client.setOption("TCP_KEEPIDLE", 0), { code: "EINVAL", syscall: "setsockopt" });
  t.throws(() => lb.client.setOption("TCP_KEEPIDLE", 32768), { code: "EINVAL" });
  t.throws(() => lb.client.setOption("TCP_KEEPINTVL", 0), { code: "EINVAL" });
  t.throws(() => lb.client.setOption("TCP_KEEPCNT", 128), { code: "EINVAL" });
  t.throws(() => lb.client.setOption("TCP_USER_TIMEOUT", -1), { code: "EINVAL" });
  lb.client.setOption("TCP_KEEPIDLE", 32767);
  t.equal(lb.client.getOption("TCP_KEEPIDLE"), 32767, "the largest accepted value reads back");
});

t.test("EBADF after close: refused by Socket, and the kernel's own answer", async (t) => {
  const ns = Netns.create();
  t.teardown(() => ns.close());
  const s = Socket.create({ netns: ns });
  const fd = s.fd;
  s.close();
  t.ok(s.closed);
  t.throws(() => s.read(), { code: "EBADF", syscall: "read" });
  t.throws(() => s.close(), { code: "EBADF", syscall: "close" });
  // Nothing has reused the number yet in this single-threaded test, so the kernel answers for it.
  t.equal(native.recv(fd, Buffer.alloc(1), 0, 1, 0), -errnoNumber("EBADF"));
  t.equal(native.close(fd), -errnoNumber("EBADF"));
});

t.test("MSG_PEEK leaves the data in place", async (t) => {
  const lb = await loopback(t);
  lb.client.write("abcdef");
  t.equal(
    await until(
      () => lb.server.inq(),
      (n) => n === 6,
    ),
    6,
    "all six bytes are queued",
  );
  t.equal(lb.server.recv(3, ["MSG_PEEK"]).toString(), "abc");
  t.equal(lb.server.recv(100, ["MSG_PEEK"]).toString(), "abcdef");
  t.equal(lb.server.inq(), 6, "SIOCINQ still counts every byte");
  t.equal(lb.server.read(100).toString(), "abcdef");
  t.throws(() => lb.server.recv(1, ["MSG_PEEK"]), { code: "EAGAIN", syscall: "recv" });
});

t.test("MSG_WAITALL gathers until the length, across writes", async (t) => {
  const lb = await loopback(t);
  const reading = lb.server.recvAsync(10, ["MSG_WAITALL"], { timeoutMs: 2000 });
  lb.client.write("01234");
  setImmediate(() => lb.client.write("56789tail"));
  t.equal((await reading).toString(), "0123456789");
  t.equal(lb.server.read().toString(), "tail");
});

t.test("SO_LINGER {1,0} makes close send RST: the peer's read fails", async (t) => {
  const lb = await loopback(t);
  lb.server.setLinger(true, 0);
  t.same(lb.server.getLinger(), { onoff: 1, linger: 0 });
  const waiting = lb.client.poll(POLLIN | POLLRDHUP, 2000);
  lb.server.close();
  const r = await waiting;
  t.ok(r.outcomes[0]?.names.includes("POLLERR"), `POLLERR after RST (got ${r.outcomes[0]?.names})`);
  t.ok(r.outcomes[0]?.names.includes("POLLHUP"), "POLLHUP after RST");
  t.throws(() => lb.client.read(), { code: "ECONNRESET", syscall: "read" });
  t.equal(lb.client.read().length, 0, "the error was consumed: the next read sees EOF");
  t.equal(lb.client.tcpInfo().stateName, "CLOSE");
});

t.test("SO_ERROR reads and clears the pending error", async (t) => {
  const lb = await loopback(t);
  lb.server.setLinger(true, 0);
  lb.server.close();
  await lb.client.poll(POLLIN, 2000);
  t.equal(lb.client.takeError(), -errnoNumber("ECONNRESET"), "ECONNRESET is pending");
  t.equal(lb.client.takeError(), 0, "and now cleared");
});

t.test("SIOCOUTQ, SIOCOUTQNSD and SIOCINQ count unread bytes", async (t) => {
  const lb = await loopback(t);
  t.equal(lb.client.outq(), 0);
  t.equal(lb.server.inq(), 0);
  const payload = Buffer.alloc(1000, 7);
  t.equal(lb.client.write(payload), payload.length);
  t.equal(
    await until(
      () => lb.server.inq(),
      (n) => n === payload.length,
    ),
    payload.length,
    "every byte reached the peer",
  );
  t.equal(
    await until(
      () => lb.client.outq(),
      (n) => n === 0,
    ),
    0,
    "acknowledged on loopback, so nothing unacked",
  );
  t.equal(lb.client.outqNotSent(), 0);
  const taken = lb.server.read(400).length;
  t.equal(lb.server.inq(), payload.length - taken);
});

t.test("a full peer leaves bytes queued: SIOCOUTQ counts them and POLLOUT clears", async (t) => {
  const lb = await loopback(t);
  lb.server.setOption("SO_RCVBUF", 4096);
  lb.client.setOption("SO_SNDBUF", 4096);
  let sent = 0;
  const chunk = Buffer.alloc(4096, 1);
  for (;;) {
    try {
      sent += lb.client.send(chunk);
    } catch (e) {
      t.equal((e as SysError).code, "EAGAIN", "send stops with EAGAIN when the buffer is full");
      break;
    }
  }
  t.ok(sent > 0);
  const outq = lb.client.outq();
  t.ok(outq > 0 && outq <= sent, `SIOCOUTQ ${outq} of ${sent} sent`);
  t.equal(lb.client.pollNow(POLLOUT).outcomes[0]?.revents, 0, "no POLLOUT while the buffer is full");
});

t.test("TCP_INFO state names through a connection's life", async (t) => {
  const lb = await loopback(t);
  t.equal(lb.listener.tcpInfo().stateName, "LISTEN");
  t.equal(lb.client.tcpInfo().stateName, "ESTABLISHED");
  t.equal(lb.server.tcpInfo().stateName, "ESTABLISHED");
  lb.server.shutdown("SHUT_WR");
  t.equal(
    await until(
      () => lb.server.tcpInfo().stateName,
      (s) => s === "FIN_WAIT2",
    ),
    "FIN_WAIT2",
  );
  t.equal(lb.client.tcpInfo().stateName, "CLOSE_WAIT");
  lb.client.shutdown("SHUT_WR");
  // The client's FIN is acked at once on loopback: LAST_ACK passes, and its socket ends CLOSE.
  t.equal(
    await until(
      () => lb.client.tcpInfo().stateName,
      (s) => s === "CLOSE",
    ),
    "CLOSE",
  );
  // The server's full socket hands over to a TIME_WAIT mini-socket and itself reads CLOSE.
  t.equal(
    await until(
      () => lb.server.tcpInfo().stateName,
      (s) => s === "CLOSE",
    ),
    "CLOSE",
  );
});

t.test("SYN_SENT while the listener's accept queue is full", async (t) => {
  const ns = Netns.create();
  const listener = Socket.create({ netns: ns }).bind("127.0.0.1", 0).listen(0);
  const port = listener.localAddress().port;
  const first = Socket.create({ netns: ns });
  const second = Socket.create({ netns: ns });
  t.teardown(() => {
    for (const s of [first, second, listener]) s.close();
    ns.close();
  });
  await first.connectAsync("127.0.0.1", port, { timeoutMs: 2000 });
  t.throws(() => second.connect("127.0.0.1", port), { code: "EINPROGRESS" });
  t.equal(second.tcpInfo().stateName, "SYN_SENT", "the SYN is dropped: the queue holds backlog + 1 = 1");
  const info = await until(
    () => second.tcpInfo(),
    (i) => (i.total_rto as number) >= 1,
    3000,
  );
  t.ok((info.total_rto as number) >= 1, "the SYN was retransmitted after its RTO");
});

t.test("IPv6 on ::1", async (t) => {
  const lb = await loopback(t, "IPv6");
  t.equal(lb.client.family, "IPv6");
  t.same(lb.client.remoteAddress(), { family: "IPv6", address: "::1", port: lb.port });
  lb.client.write("six");
  t.equal((await lb.server.readAsync(10, { timeoutMs: 2000 })).toString(), "six");
  lb.client.setOption("IP_RECVERR", 1);
  t.equal(lb.client.getOption("IP_RECVERR"), 1);
});

t.test("every integer option round-trips through setsockopt/getsockopt", async (t) => {
  const lb = await loopback(t);
  const s = lb.client;
  const cases: Array<[Parameters<Socket["setOption"]>[0], number]> = [
    ["SO_KEEPALIVE", 1],
    ["TCP_KEEPIDLE", 7],
    ["TCP_KEEPINTVL", 3],
    ["TCP_KEEPCNT", 4],
    ["TCP_USER_TIMEOUT", 1500],
    ["TCP_NODELAY", 1],
    ["TCP_NOTSENT_LOWAT", 16384],
    ["SO_REUSEADDR", 1],
    ["SO_REUSEPORT", 1],
    ["TCP_LINGER2", 5],
    ["IP_RECVERR", 1],
    ["TCP_SYNCNT", 3],
  ];
  for (const [name, value] of cases) {
    s.setOption(name, value);
    t.equal(s.getOption(name), value, name);
  }
  const buf = 8192;
  s.setOption("SO_SNDBUF", buf);
  t.equal(s.getOption("SO_SNDBUF"), 2 * buf, "the kernel doubles SO_SNDBUF for its bookkeeping");
  s.setOption("SO_RCVBUF", buf);
  t.equal(s.getOption("SO_RCVBUF"), 2 * buf, "and SO_RCVBUF");
  s.setOption("SO_KEEPALIVE", false);
  t.equal(s.getOption("SO_KEEPALIVE"), 0);
});

t.test("poll over many sockets; revents as mask and names", async (t) => {
  const lb = await loopback(t);
  const { poll } = await import("../../src/sys/index.js");
  lb.client.write("x");
  const r = await poll(
    [
      { fd: lb.server.fd, events: POLLIN | POLLOUT },
      { fd: lb.client.fd, events: POLLIN },
      { fd: lb.listener.fd, events: POLLIN },
    ],
    1000,
  );
  t.equal(r.ready, 1, "only the server is ready");
  t.equal(r.ready, r.outcomes.filter((o) => o.revents !== 0).length, "ready counts the descriptors with revents");
  t.equal(r.outcomes[0]?.revents, POLLIN | POLLOUT);
  t.same(r.outcomes[0]?.names, ["POLLIN", "POLLOUT"]);
  t.equal(r.outcomes[1]?.revents, 0);
  t.equal(r.outcomes[2]?.revents, 0);
});

t.test("a poll that times out, and one that never blocks the event loop", async (t) => {
  const lb = await loopback(t);
  const started = process.hrtime.bigint();
  let ticks = 0;
  const timeoutMs = 120;
  const slackMs = 5; // poll(2) does not wake early; this only absorbs reading the clock on two threads
  const timer = setInterval(() => ticks++, 5);
  const r = await lb.client.poll(POLLIN, timeoutMs);
  clearInterval(timer);
  const waitedMs = Number(process.hrtime.bigint() - started) / 1e6;
  t.ok(r.timedOut);
  t.equal(r.ready, 0);
  t.ok(waitedMs >= timeoutMs - slackMs, `waited ${waitedMs.toFixed(1)} ms for a ${timeoutMs} ms timeout`);
  t.ok(ticks >= 5, `timers kept firing during the wait (${ticks} ticks)`);
  await t.rejects(lb.client.readAsync(10, { timeoutMs: 50 }), WaitTimeoutError);
});

t.test("close wakes a pending wait; AbortSignal cancels one", async (t) => {
  const lb = await loopback(t);
  const { pendingWaits, cancelAllWaits } = await import("../../src/sys/index.js");
  const waiting = lb.client.poll(POLLIN, -1);
  t.equal(pendingWaits(), 1, "an idle connected socket makes the poll wait");
  lb.client.close();
  await t.rejects(waiting, { code: "ECANCELED", syscall: "poll" });
  const idle = lb.open();
  await idle.connectAsync(lb.address, lb.port, { timeoutMs: 2000 });
  const controller = new AbortController();
  const aborted = idle.poll(POLLIN, 10_000, { signal: controller.signal });
  controller.abort();
  await t.rejects(aborted, { code: "ECANCELED" });
  await t.rejects(
    idle.readAsync(10, { signal: AbortSignal.abort() }),
    { code: "ECANCELED" },
    "an already aborted signal stops the wait at once",
  );
  const other = lb.open();
  await other.connectAsync(lb.address, lb.port, { timeoutMs: 2000 });
  const forgotten = other.poll(POLLIN, -1);
  t.equal(cancelAllWaits(), 1);
  await t.rejects(forgotten, { code: "ECANCELED" });
  t.equal(pendingWaits(), 0);
});

t.test("wrong argument types give a TypeError stating the usage", async (t) => {
  const ns = Netns.create();
  const s = Socket.create({ netns: ns });
  t.teardown(() => {
    s.close();
    ns.close();
  });
  t.throws(() => s.bind("not-an-ip", 1), new TypeError("Socket.bind(address: string (an IP literal), port?: number)"));
  t.throws(() => s.bind(42 as unknown as string), TypeError);
  t.throws(() => s.connect("127.0.0.1", 70000), /port: integer 1..65535/);
  t.throws(() => s.recv(10, ["MSG_BOGUS" as "MSG_PEEK"]), /unknown flag "MSG_BOGUS"/);
  t.throws(() => s.shutdown("SHUT_SIDEWAYS" as "SHUT_WR"), /shutdown\(how: 'SHUT_RD' \| 'SHUT_WR' \| 'SHUT_RDWR'\)/);
  t.throws(() => s.setOption("SO_NOPE" as "SO_KEEPALIVE", 1), /unknown socket option "SO_NOPE"/);
  t.throws(() => s.write(123 as unknown as string), /Socket.write\(data: Buffer \| string\)/);
  // The native layer checks types too, for callers that bypass the TypeScript surface.
  t.throws(() => (native.recv as unknown as (...a: unknown[]) => number)("3", 1), {
    name: "TypeError",
    message: "recv(fd: number, buffer: Buffer, offset: number, length: number, flags: number)",
  });
  t.throws(() => (native.poll as unknown as (...a: unknown[]) => number)([1], [1], [0], 0), {
    name: "TypeError",
    message: /^poll\(fds: Int32Array/,
  });
  t.throws(() => native.recv(0, Buffer.alloc(4), 2, 8, 0), RangeError);
});

t.test("the transcript records every call with host, args, result or errno, and duration", async (t) => {
  const lb = await loopback(t);
  const hello = "kodos, are you there?";
  const n = String(hello.length);
  lb.client.write(hello);
  await lb.server.readAsync(100, { timeoutMs: 2000 });
  t.throws(() => lb.server.read());
  const entries = lb.transcript.entries;
  const calls = entries.map((e) => `${e.host}:${e.call}`);
  t.ok(calls.includes("kodos:listen"));
  t.ok(calls.includes("kang:connect"));
  const write = entries.find((e) => e.call === "write");
  t.match(write, { host: "kang", args: [String(lb.client.fd), n], result: n });
  const failed = entries.at(-1);
  t.match(failed, { host: "kodos", call: "read", error: "EAGAIN", errno: -errnoNumber("EAGAIN") });
  t.ok(entries.every((e) => e.durationUs >= 0 && e.atUs >= 0));
  const text = lb.transcript.format();
  t.match(text, new RegExp(`kang +\\d+\\.\\d{6} {2}write\\(\\d+, ${n}\\) {2}= ${n} {2}\\[\\d+ µs\\]`));
  t.match(text, new RegExp(`kodos +\\d+\\.\\d{6} {2}read\\(\\d+, 65536\\) {2}Err#${errnoNumber("EAGAIN")} EAGAIN`));
  const times = text.split("\n").map((l) => Number(l.trim().split(/\s+/)[1]));
  t.same(
    times,
    [...times].sort((a, b) => a - b),
    "lines are in time order on one clock",
  );
});
