// The JSON report and its schema, the baseline diff on crafted pairs, and JUnit XML.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import t from "tap";
import { diffCommand, diffReports } from "../../src/report/diff.js";
import { renderJunit } from "../../src/report/junit.js";
import { readReport, validateReport } from "../../src/report/schema.js";
import { buildReport, type Report } from "../../src/runner/report.js";
import { runScenario } from "../../src/runner/run-scenario.js";
import { scenario as teardown } from "../../src/scenarios/normal-teardown.js";

const base = JSON.parse(readFileSync(new URL("../fixtures/report/base.json", import.meta.url), "utf8")) as Report;
// Crafted pairs mutate a deep copy freely: the report types are read-only on purpose.
// biome-ignore lint/suspicious/noExplicitAny: test fixtures are edited field by field
const copy = (): any => JSON.parse(JSON.stringify(base));
const dir = mkdtempSync(join(tmpdir(), "sockprobe-report-"));
const save = (name: string, data: unknown) => {
  const f = join(dir, name);
  writeFileSync(f, typeof data === "string" ? data : JSON.stringify(data));
  return f;
};
const sink = () => {
  let text = "";
  const w = new Writable({
    write(c, _e, cb) {
      text += c;
      cb();
    },
  });
  return { w, text: () => text };
};

t.test("a real run's report is valid against the schema", async (t) => {
  const r = await runScenario(teardown, { trace: true });
  const report = JSON.parse(JSON.stringify(buildReport([r], r.durationMs)));
  t.same(validateReport(report), []);
  t.equal(report.kernel.release.length > 0, true);
  delete report.kernel;
  t.match(validateReport(report).join(), /must have required property 'kernel'/);
});

t.test("the schema rejects what is not a report", async (t) => {
  t.same(validateReport(base), [], "the fixture is valid");
  const bad = copy();
  bad.scenarios[0].verdict = "maybe";
  t.match(validateReport(bad).join(), /verdict must be equal to one of the allowed values/);
  const failWithoutReason = copy();
  failWithoutReason.scenarios[0].verdict = "fail";
  t.match(validateReport(failWithoutReason).join(), /must have required property 'reason'/);
});

t.test("identical reports: no change, exit 0", async (t) => {
  t.same(diffReports(base, copy()), []);
  const out = sink();
  t.equal(diffCommand([save("a.json", base), save("b.json", base)], { out: out.w, err: out.w } as never), 0);
  t.match(out.text(), /no behavior changed/);
});

t.test("each kind of change is detected", async (t) => {
  const now = copy();
  const ppo = now.scenarios[0];
  ppo.verdict = "fail";
  ppo.reason = "expected ETIMEDOUT from read on kang, got EHOSTUNREACH at +6.9 s";
  ppo.checks[0].observed = "EHOSTUNREACH";
  ppo.checks[0].pass = false;
  ppo.checks[1].timing.observedMs = 9800;
  ppo.checks[1].observed = "9.80 s";
  ppo.checks[2].observed = "POLLERR|POLLHUP";
  ppo.observations.retransmissions.value = 7;
  ppo.observations["death by tcp_retries2=3"].value = 6900;
  now.scenarios.splice(1, 1);
  now.scenarios.push({ ...copy().scenarios[1], name: "keepalive" });
  const changes = diffReports(base, now);
  const line = (kind: string, what: RegExp) => changes.find((c) => c.kind === kind && what.test(c.what));
  t.match(line("verdict", /verdict/), { base: "pass", now: "fail" });
  t.match(line("check", /^read on kang$/), { base: "ETIMEDOUT", now: "EHOSTUNREACH" }, "an errno");
  t.match(line("check", /^poll on kang$/), { base: "POLLIN|POLLERR|POLLHUP", now: "POLLERR|POLLHUP" }, "revents");
  t.match(
    line("timing", /death by tcp_retries2=3/),
    { base: "6.65 s", now: "9.80 s" },
    "a timing that left its tolerance",
  );
  t.match(line("observation", /^retransmissions$/), { base: "5", now: "7" }, "a count");
  t.notOk(line("observation", /death by tcp_retries2=3/), "6650 -> 6900 ms is inside ± 450 ms: no change");
  t.match(line("missing", /missing/), { scenario: "normal-teardown" });
  t.match(line("added", /added/), { scenario: "keepalive" });
  const out = sink();
  t.equal(diffCommand([save("base.json", base), save("now.json", now)], { out: out.w, err: out.w } as never), 1);
  t.match(out.text(), /^check {7}peer-power-off {2}read on kang: ETIMEDOUT -> EHOSTUNREACH$/m);
  t.match(out.text(), /^\d+ changes$/m);
});

t.test("a timing within tolerance is no change; one just outside is", async (t) => {
  const inside = copy();
  inside.scenarios[0].checks[1].timing.observedMs = 6650 + 450;
  t.same(diffReports(base, inside), []);
  const outside = copy();
  outside.scenarios[0].checks[1].timing.observedMs = 6650 + 451;
  t.equal(diffReports(base, outside).length, 1);
});

t.test("unreadable or mismatched input: exit 2 with a clear message", async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [[save("x.json", base)], /diff takes two reports/],
    [[join(dir, "nope.json"), save("y.json", base)], /cannot read .*nope\.json: ENOENT/],
    [[save("text.json", "not json"), save("y.json", base)], /text\.json is not JSON/],
    [[save("other.json", { hello: 1 }), save("y.json", base)], /other\.json is not a sockprobe report/],
    [
      [save("v2.json", { ...base, version: 2 }), save("y.json", base)],
      /v2\.json is a version 2 report; this sockprobe reads version 1/,
    ],
    [
      [save("broken.json", { ...base, summary: {} }), save("y.json", base)],
      /broken\.json does not match the report schema: \/summary must have required property/,
    ],
    [[save("qemu.json", { ...base, backend: "qemu" }), save("y.json", base)], /different backends \(qemu and netns\)/],
  ];
  for (const [args, message] of cases) {
    const err = sink();
    const out = sink();
    t.equal(diffCommand(args, { out: out.w, err: err.w } as never), 2, args.join(" "));
    t.match(err.text(), message);
    t.equal(out.text(), "");
  }
  t.throws(() => readReport(join(dir, "nope.json")), { name: "ReportError" });
});

t.test("JUnit XML: one test case per scenario, failures with their message, everything escaped", async (t) => {
  const now = copy();
  now.scenarios[0].verdict = "fail";
  now.scenarios[0].reason = `expected <ETIMEDOUT> & "more"`;
  now.summary = { pass: 1, fail: 1, error: 0, skip: 0 };
  const xml = renderJunit(now);
  t.match(
    xml,
    /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites name="sockprobe" tests="2" failures="1" errors="0"/,
  );
  t.match(
    xml,
    /<testcase name="peer-power-off" classname="sockprobe\.netns" time="7\.000"><failure message="expected &lt;ETIMEDOUT&gt; &amp; &quot;more&quot;" type="KernelBehavior">/,
  );
  t.match(xml, /<testcase name="normal-teardown" classname="sockprobe\.netns" time="0\.300"><system-out>/);
  t.equal((xml.match(/<testcase /g) ?? []).length, 2);
  t.notMatch(xml, /<ETIMEDOUT>/, "no raw markup from messages");
});
