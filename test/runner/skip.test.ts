// A scenario needing a fault the backend cannot give is skipped with the reason, never run half.
import t from "tap";
import { createLab } from "../../src/lab/create.js";
import { runScenario } from "../../src/runner/run-scenario.js";
import type { Scenario } from "../../src/scenarios/scenario.js";

const base = { seed: "self-test", question: "q?", seedSays: "-", timeoutMs: 10_000 };

t.test("a scenario needing crash is skipped on netns before it runs, naming backend and fault", async (t) => {
  let ran = false;
  const needsCrash: Scenario = {
    ...base,
    name: "self-needs-crash",
    faults: ["powerOff", "crash"],
    async run(ctx) {
      ran = true;
      const kang = await ctx.lab.addHost("kang");
      await ctx.lab.crash(kang);
    },
  };
  const r = await runScenario(needsCrash);
  t.equal(r.verdict, "skip");
  t.match(r.reason, /^the netns backend cannot give crash: .*use --backend qemu/);
  t.equal(ran, false, "nothing of the scenario ran");
  t.same(r.hosts, [], "no host was built");
  t.same(r.checks, []);
  t.same(r.evidence.faults, []);
});

t.test("an UnsupportedFaultError met mid-run makes the verdict skip with its reason", async (t) => {
  const meetsIt: Scenario = {
    ...base,
    name: "self-mid-run",
    faults: [],
    async run(ctx) {
      const kang = await ctx.lab.addHost("kang");
      ctx.expectEqual("kang's state", "running", kang.state);
      // A lab of its own, outside the scenario's declarations: its backend answers for itself.
      const other = await createLab({ name: "other" });
      try {
        await other.crash(await other.addHost("kif"));
      } finally {
        await other.close();
      }
      ctx.expectEqual("never reached", true, false);
    },
  };
  const r = await runScenario(meetsIt);
  t.equal(r.verdict, "skip");
  t.match(r.reason, /^the netns backend cannot give crash: the netns backend has no kernel of its own to panic/);
  t.same(
    r.checks.map((c) => c.label),
    ["kang's state"],
    "what ran before it is kept; nothing after",
  );
});

t.test("a fault the scenario did not declare is an error that says what to add", async (t) => {
  const undeclared: Scenario = {
    ...base,
    name: "self-undeclared",
    faults: ["partition"],
    async run(ctx) {
      const kang = await ctx.lab.addHost("kang");
      await ctx.lab.powerOff(kang);
    },
  };
  const r = await runScenario(undeclared);
  t.equal(r.verdict, "error");
  t.match(
    r.reason,
    /scenario self-undeclared calls lab\.powerOff\(\) without declaring it: add "powerOff" to its faults/,
  );
  t.same(r.evidence.faults, [], "the fault was not given");
});
