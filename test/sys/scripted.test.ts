// Unit tests with a scripted syscall layer: errno sequences the kernel rarely gives on demand.
import t from "tap";
import { errnoNumber, native, POLLERR, POLLHUP, POLLOUT, Socket, type SockprobeNative } from "../../src/sys/index.js";

// Native results: -errno, by name.
const ERR = Object.fromEntries(
  ["EINPROGRESS", "ECONNREFUSED", "EHOSTUNREACH", "ETIMEDOUT", "EMFILE"].map((n) => [n, -errnoNumber(n)]),
) as Record<"EINPROGRESS" | "ECONNREFUSED" | "EHOSTUNREACH" | "ETIMEDOUT" | "EMFILE", number>;

// A layer that answers from a script and falls back to the real one for eventfds.
function scripted(script: Partial<Record<keyof SockprobeNative, Array<number | ((...a: unknown[]) => number)>>>) {
  const calls: string[] = [];
  const io = new Proxy(native, {
    get(target, prop: keyof SockprobeNative) {
      const queue = script[prop];
      if (!queue) return target[prop];
      return (...args: unknown[]) => {
        calls.push(prop);
        const next = queue.shift();
        if (next === undefined) throw new Error(`script for ${prop} ran out`);
        return typeof next === "function" ? next(...args) : next;
      };
    },
  }) as SockprobeNative;
  return { io, calls };
}

// poll answering POLLOUT|POLLERR|POLLHUP, as after a failed handshake.
const hangup = (_fds: unknown, _ev: unknown, revents: unknown) => {
  (revents as Int32Array)[0] = POLLOUT | POLLERR | POLLHUP;
  return 1;
};

t.test("connectAsync surfaces the handshake's pending error as a connect error", async (t) => {
  const { io, calls } = scripted({
    socket: [77],
    connect: [ERR.EINPROGRESS],
    poll: [hangup],
    getsockoptInt: [-ERR.EHOSTUNREACH],
    close: [0],
  });
  const s = Socket.create({ io });
  await t.rejects(s.connectAsync("198.18.0.9", 80, { timeoutMs: 10 }), {
    code: "EHOSTUNREACH",
    syscall: "connect",
    message: "EHOSTUNREACH: host is unreachable, connect",
  });
  s.close();
  // One poll: its revents already say the handshake failed, so SO_ERROR is read without polling again.
  t.same(calls, ["socket", "connect", "poll", "getsockoptInt", "close"]);
});

t.test("errors from any call keep errno and syscall", async (t) => {
  const { io } = scripted({ socket: [5], recv: [ERR.ETIMEDOUT, 3], send: [ERR.ECONNREFUSED], close: [0] });
  const s = Socket.create({ io });
  t.throws(() => s.read(), { code: "ETIMEDOUT", errno: ERR.ETIMEDOUT, syscall: "read" });
  t.equal(s.read(8).length, 3, "the next call succeeds where the kernel lets it");
  t.throws(() => s.write("x"), { code: "ECONNREFUSED", syscall: "write" });
  s.close();
});

t.test("a failed socket() is a SysError naming socket", async (t) => {
  const { io } = scripted({ socket: [ERR.EMFILE] });
  t.throws(() => Socket.create({ io }), { code: "EMFILE", syscall: "socket" });
});
