import t from "tap";
import { errnoName, errnoNumber, SysError, WaitTimeoutError } from "../../src/sys/index.js";

t.test("SysError has the shape of Node's system errors", async (t) => {
  const e = new SysError(-errnoNumber("ECONNRESET"), "read");
  t.equal(e.code, "ECONNRESET");
  t.equal(e.errno, -errnoNumber("ECONNRESET"));
  t.ok(e.errno < 0, "errno is negative, as in Node");
  t.equal(e.syscall, "read");
  t.equal(e.message, "ECONNRESET: connection reset by peer, read");
  t.equal(e.name, "SysError");
  t.ok(e instanceof Error);
  t.same(Object.keys(e).sort(), ["code", "errno", "syscall"]);
});

t.test("a positive errno is taken as its negative", async (t) => {
  t.equal(new SysError(errnoNumber("EPIPE"), "write").message, "EPIPE: broken pipe, write");
  t.equal(new SysError(errnoNumber("ETIMEDOUT"), "read").code, "ETIMEDOUT");
});

t.test("errno names both ways, and unknown ones", async (t) => {
  t.equal(errnoName(errnoNumber("EINPROGRESS")), "EINPROGRESS");
  t.equal(errnoName(-errnoNumber("EAGAIN")), "EAGAIN");
  t.equal(errnoName(99999), "E99999");
  t.throws(() => errnoNumber("ENOTANERRNO"), TypeError);
});

t.test("the cause is kept", async (t) => {
  const cause = new Error("inner");
  t.equal(new SysError(-errnoNumber("EBADF"), "close", { cause }).cause, cause);
});

t.test("a wait sockprobe bounded is not the kernel's ETIMEDOUT", async (t) => {
  const e = new WaitTimeoutError("read on fd 3 (kang)", 250);
  t.equal(e.code, "ESOCKPROBE_WAIT_TIMEOUT");
  t.equal(e.message, "read on fd 3 (kang) did not complete within 250 ms");
  t.equal(e.name, "WaitTimeoutError");
});
