// The nightly matrix for real: every scenario on the host's kernel and on Debian's 6.1 and 6.12,
// booted under QEMU through the same code users run. Every scenario passes on every kernel, each
// report is the guest's own, and every difference between the kernels comes with its explanation.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { release, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";
import { FAULTS } from "../../src/lab/lab.js";
import { readReport } from "../../src/report/schema.js";
import type { Matrix } from "../../src/runner/matrix.js";
import { SCENARIOS } from "../../src/scenarios/index.js";
import { resolveKernel } from "../../src/vm/kernels.js";

t.setTimeout(60 * 60_000);

// Every fault but crash: what netns gives (test/lab/lab.test.ts checks the list itself).
const NETNS_FAULTS = FAULTS.filter((f) => f !== "crash");
const main = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));

t.test("matrix --kernel 6.1 --kernel 6.12: every scenario on three kernels, the differences explained", async (t) => {
  const out = mkdtempSync(join(tmpdir(), "sockprobe-test-matrix-"));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const kernels = [await resolveKernel("6.1"), await resolveKernel("6.12")];
  const r = spawnSync(
    process.execPath,
    [
      "--import=tsx",
      main,
      "matrix",
      "--kernel",
      "6.1",
      "--kernel",
      "6.12",
      "--retries",
      "1",
      "--out",
      out,
      "--html",
      join(out, "matrix.html"),
    ],
    { encoding: "utf8", timeout: 55 * 60_000, maxBuffer: 64 << 20 },
  );
  t.comment(r.stdout.split("\n").slice(-40).join("\n"));
  const m = JSON.parse(readFileSync(join(out, "matrix.json"), "utf8")) as Matrix;
  t.same(
    m.kernels.map((k) => k.release),
    [release(), ...kernels.map((k) => k.release)],
    "a column for the host's kernel and one for each kernel booted",
  );
  for (const k of m.kernels) {
    const report = readReport(join(out, k.report));
    t.equal(report.kernel.release, k.release, `${k.label}: the report's kernel is the one it ran on`);
    if (k.release !== release()) {
      t.equal(report.boot?.kernel.release, k.release, `${k.label}: the report says how the guest booted`);
      t.ok(
        report.boot && report.boot.bootMs > 0 && ["kvm", "tcg"].includes(report.boot.accel),
        `${k.label}: boot time and accelerator recorded`,
      );
    }
  }
  // The matrix runs on netns: a scenario needing a fault netns cannot give (peer-panic's crash) is
  // skipped on every kernel alike, with the reason; every other one passes.
  const netns = new Set<string>(NETNS_FAULTS);
  for (const s of SCENARIOS) {
    const skips = s.faults.some((f) => !netns.has(f));
    for (const k of m.kernels) {
      const v = m.scenarios.find((x) => x.name === s.name)?.results[k.label];
      t.ok(
        skips
          ? v?.verdict === "skip" && /cannot give/.test(v.reason ?? "")
          : v?.verdict === "pass" || v?.verdict === "flaky",
        `${s.name} on ${k.label}: ${v?.verdict}${v?.reason ? ` (${v.reason})` : ""}`,
      );
    }
  }
  t.equal(r.status, 0, "the matrix passes");
  const unexplained = m.differences.filter((d) => !d.explained);
  t.same(
    unexplained.map((d) => `${d.scenario}: ${d.what} ${JSON.stringify(d.values)}`),
    [],
    "every difference between the kernels comes with its explanation",
  );
  t.match(readFileSync(join(out, "matrix.html"), "utf8"), /<h1>sockprobe matrix<\/h1>/);
});
