// The harness tested on itself: a wrong expectation must fail, readably; a broken scenario is an error.
import t from "tap";
import { runScenario } from "../../src/runner/run-scenario.js";
import type { Scenario } from "../../src/scenarios/scenario.js";

const base = { seed: "self-test", question: "q?", seedSays: "-", faults: [], timeoutMs: 5000 };

// A wrong expectation on purpose: after a graceful close the client reads 0, not ECONNRESET.
const wrongErrno: Scenario = {
  ...base,
  name: "self-wrong-errno",
  async run(ctx) {
    const kang = await ctx.lab.addHost("kang");
    const kodos = await ctx.lab.addHost("kodos");
    const l = await kodos.listen(8080);
    const c = await kang.connect(kodos.ipv4, 8080);
    const s = await l.acceptAsync({ timeoutMs: 2000 });
    await s.close();
    await c.poll(1, 2000);
    ctx.expectErrno(await ctx.attempt("kang", "read", () => c.read()), "ECONNRESET", { headline: true });
  },
};

t.test("a wrong errno expectation fails with a readable message", async (t) => {
  const r = await runScenario(wrongErrno);
  t.equal(r.verdict, "fail");
  t.match(r.reason, /^expected ECONNRESET from read on kang, got 0 \(EOF\) at \+\d+\.\d{3} s$/);
  t.equal(r.expected, "read on kang: ECONNRESET");
  t.equal(r.observed, "read on kang: 0 (EOF)");
});

t.test("a wrong timing expectation names the model's reason", async (t) => {
  const r = await runScenario({
    ...base,
    name: "self-wrong-time",
    async run(ctx) {
      ctx.expectTime("an instant", { ms: 5000, toleranceMs: 100, why: "a deliberately wrong model" }, 0);
    },
  });
  t.equal(r.verdict, "fail");
  t.match(r.reason, /expected an instant after 5\.00 s ± 100 ms \(a deliberately wrong model\), got 0 ms/);
});

t.test("an exception that is not a system error makes the verdict error", async (t) => {
  const r = await runScenario({
    ...base,
    name: "self-throws",
    async run() {
      throw new TypeError("a bug in the scenario");
    },
  });
  t.equal(r.verdict, "error");
  t.equal(r.reason, "TypeError: a bug in the scenario");
});

t.test("a scenario that overruns its bound is stopped", async (t) => {
  const r = await runScenario({
    ...base,
    name: "self-hangs",
    timeoutMs: 200,
    async run(ctx) {
      const h = await ctx.lab.addHost("kang");
      const l = await h.listen(8080);
      await l.acceptAsync({ timeoutMs: 5000 });
    },
  });
  t.equal(r.verdict, "error");
  t.match(r.reason, /did not finish within its bound of 200 ms/);
  t.ok(r.durationMs < 2000, "and the lab was torn down at once");
});

t.test("a scenario that checks nothing is not a pass", async (t) => {
  const r = await runScenario({ ...base, name: "self-empty", async run() {} });
  t.equal(r.verdict, "error");
  t.equal(r.reason, "the scenario made no check");
});
