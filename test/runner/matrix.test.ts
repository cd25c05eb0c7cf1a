// The matrix from reports: what differs between kernels, explained by the rules each kernel's model
// recorded or flagged, flakes counted apart, and the exit rule.
import { readFileSync } from "node:fs";
import t from "tap";
import { formatMatrix, renderMatrixHtml } from "../../src/report/matrix.js";
import { buildMatrix, finalVerdict, type KernelRun, matrixPasses } from "../../src/runner/matrix.js";
import type { Report } from "../../src/runner/report.js";

const base = JSON.parse(readFileSync(new URL("../fixtures/report/base.json", import.meta.url), "utf8")) as Report;

// A copy of the base report as another kernel's, with one scenario changed by `edit`.
function kernel(release: string, edit: (s: Record<string, unknown>) => void = () => {}): Report {
  const r = structuredClone(base) as unknown as { kernel: { release: string }; scenarios: Record<string, unknown>[] };
  r.kernel.release = release;
  edit(r.scenarios[0] as Record<string, unknown>);
  return r as unknown as Report;
}

const run = (label: string, report: Report, attempts: KernelRun["attempts"] = {}): KernelRun => ({
  label,
  reportFile: `${label}.json`,
  report,
  attempts,
});

type Check = { label: string; observed: string; expected: string; pass: boolean };

t.test("a difference the model predicted names the rule that differs", async (t) => {
  const rules = (applies: boolean) => ({
    release: "x",
    rules: {
      "syn-linear-timeouts": {
        applies,
        text: 'tcp_syn_linear_timeouts (6.5, "tcp: make the first N SYN RTO backoffs linear")',
      },
    },
    values: {},
  });
  const older = kernel("6.1.0-56-amd64", (s) => {
    s.kernelModel = rules(false);
  });
  const newer = kernel("6.12.117+deb12-amd64", (s) => {
    s.kernelModel = rules(true);
    const c = (s.checks as Check[])[0] as Check;
    c.observed = "EHOSTUNREACH";
    c.expected = "EHOSTUNREACH";
  });
  const m = buildMatrix([run("6.1.192", older), run("6.12.117", newer)]);
  t.equal(m.differences.length, 1, "one check differs");
  const d = m.differences[0];
  t.equal(d?.scenario, "peer-power-off");
  t.equal(d?.what, "read on kang");
  t.same(d?.values, { "6.1.192": "ETIMEDOUT", "6.12.117": "EHOSTUNREACH" });
  t.ok(d?.explained);
  t.match(d?.explanation, /^predicted by the model: tcp_syn_linear_timeouts \(6\.5, .*\) \(applies on 6\.12\.117\)/);
  t.equal(m.summary.unexplained, 0);
  t.ok(matrixPasses(m), "differences alone are not a failure");
  const table = formatMatrix(m);
  t.match(table, /6\.1\.192 +6\.12\.117/);
  t.match(table, /peer-power-off: read on kang +ETIMEDOUT +EHOSTUNREACH +predicted by the model/);
  t.match(renderMatrixHtml(m), /<td>ETIMEDOUT<\/td><td>EHOSTUNREACH<\/td>/);
});

t.test("a difference no rule accounts for is flagged unexplained", async (t) => {
  const other = kernel("6.12.117+deb12-amd64", (s) => {
    (s.observations as Record<string, { value: number }>).retransmissions = { value: 7 };
  });
  const m = buildMatrix([run("6.1.192", kernel("6.1.0-56-amd64")), run("6.12.117", other)]);
  t.equal(m.differences.length, 1);
  t.equal(m.differences[0]?.kind, "observation");
  t.notOk(m.differences[0]?.explained);
  t.match(m.differences[0]?.explanation, /^unexplained/);
  t.equal(m.summary.unexplained, 1);
  t.match(formatMatrix(m), /UNEXPLAINED unexplained: the model knows no difference/);
});

t.test(
  "a failure that passes on a retry is flaky, counted apart; one that never passes fails the matrix",
  async (t) => {
    t.equal(finalVerdict(["fail", "pass"]), "flaky");
    t.equal(finalVerdict(["pass"]), "pass");
    t.equal(finalVerdict(["fail", "fail"]), "fail");
    const flaky = buildMatrix([run("host", base, { "peer-power-off": ["fail", "pass"] })]);
    t.equal(flaky.summary.flaky, 1);
    t.equal(flaky.summary.pass, base.scenarios.length - 1);
    t.ok(matrixPasses(flaky));
    t.match(formatMatrix(flaky), /peer-power-off +flaky \(2 tries\)/);
    const failing = buildMatrix([
      run(
        "host",
        kernel("6.18", (s) => (s.verdict = "fail")),
      ),
    ]);
    t.equal(failing.summary.fail, 1);
    t.notOk(matrixPasses(failing));
  },
);

t.test("with a baseline, each kernel is compared with its own earlier report", async (t) => {
  const now = kernel("6.12.117+deb12-amd64", (s) => (s.verdict = "fail"));
  const m = buildMatrix([run("6.12.117", now)], { "6.12.117": kernel("6.12.117+deb12-amd64") });
  t.match(m.baseline?.["6.12.117"], [{ scenario: "peer-power-off", kind: "verdict", base: "pass", now: "fail" }]);
});

t.test("matrix --from builds the table, matrix.json and page from reports made elsewhere", async (t) => {
  const { mkdtempSync, rmSync, writeFileSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { matrixCommand } = await import("../../src/cli/vm-commands.js");
  const dir = mkdtempSync(join(tmpdir(), "sockprobe-test-from-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const a = join(dir, "a.json");
  const b = join(dir, "b.json");
  writeFileSync(a, JSON.stringify(kernel("6.1.0-56-amd64")));
  writeFileSync(
    b,
    JSON.stringify(
      kernel("6.12.117+deb12-amd64", (s) => {
        s.verdict = "fail";
        s.reason = "expected ETIMEDOUT from read on kang, got EHOSTUNREACH";
      }),
    ),
  );
  const lines: string[] = [];
  const log = console.log;
  console.log = (...x: unknown[]) => lines.push(x.join(" "));
  let code: number;
  try {
    code = await matrixCommand(
      ["--from", a, "--from", b, "--out", join(dir, "m"), "--html", join(dir, "m.html")],
      async () => {
        throw new Error("--from runs nothing");
      },
    );
  } finally {
    console.log = log;
  }
  t.equal(code, 1, "a scenario failed on one kernel: exit 1");
  const m = JSON.parse(readFileSync(join(dir, "m", "matrix.json"), "utf8"));
  t.same(
    m.kernels.map((k: { release: string }) => k.release),
    ["6.1.0-56-amd64", "6.12.117+deb12-amd64"],
  );
  t.match(lines.join("\n"), /peer-power-off +pass +fail/);
  t.match(readFileSync(join(dir, "m.html"), "utf8"), /<td class="fail"/);
});

t.test("two kernels that meet the same timing expectation do not differ, however far apart within it", async (t) => {
  const timed = (observedMs: number) => (s: Record<string, unknown>) => {
    const c = (s.checks as Array<Check & { timing?: unknown }>)[1] as Check & { timing?: unknown };
    c.timing = { expectedMs: 6650, observedMs, toleranceMs: 450 };
    c.expected = "6.65 s ± 450 ms";
    (s.observations as Record<string, unknown>)[c.label] = { value: observedMs, unit: "ms", toleranceMs: 450 };
  };
  const m = buildMatrix([run("a", kernel("6.1.0-56-amd64", timed(6300))), run("b", kernel("6.12.1", timed(7000)))]);
  t.same(m.differences, [], "700 ms apart, each within 450 ms of the same expectation");
  const n = buildMatrix([
    run("a", kernel("6.1.0-56-amd64", timed(6300))),
    run(
      "b",
      kernel("6.12.1", (s) => {
        timed(7300)(s);
        ((s.checks as Check[])[1] as Check).pass = false;
      }),
    ),
  ]);
  t.equal(n.differences.filter((d) => d.kind === "check").length, 1, "one kernel outside it: a difference");
});

t.test("run-to-run noise is no difference: expectations from each run's own RTO, bare durations", async (t) => {
  const own = (expectedMs: number, observedMs: number, fin: number) => (s: Record<string, unknown>) => {
    const c = (s.checks as Array<Check & { timing?: unknown }>)[1] as Check & { timing?: unknown };
    c.timing = { expectedMs, observedMs, toleranceMs: 450 };
    c.expected = `${expectedMs} ms ± 450 ms`;
    (s.observations as Record<string, unknown>)["kang's FIN acknowledged after"] = { value: fin, unit: "ms" };
  };
  const m = buildMatrix([
    run("a", kernel("6.1.0-56-amd64", own(6650, 6500, 2))),
    run("b", kernel("6.12.1", own(6700, 7000, 38))),
  ]);
  t.same(m.differences, [], "each kernel met its own run's expectation; a bare duration is a measurement");
});
