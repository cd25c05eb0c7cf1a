// tune --verify on real lab hosts: every prediction measured, within the model's tolerance; skips
// under --max-seconds; and a wrong prediction fails with a readable message.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { retransmissionDeath, timerChainExpectation } from "../../src/model/tcp.js";
import { finWait2Lifetime } from "../../src/model/timers.js";
import { SPARSE_LOOK_MS } from "../../src/scenarios/steps.js";
import { formatVerify, tuneCommand } from "../../src/tune/command.js";
import { LAN_RTT_MS, lanRtoMs, resolveSettings } from "../../src/tune/model.js";
import { kernelFacts } from "../../src/tune/parse.js";
import { type VerifyRow, verifyTuning } from "../../src/tune/verify.js";
// Real namespaces, real /proc/sys (read only): capturedIo(), not scriptedIo().
import { capturedIo, fixture } from "./helpers.js";

t.test("small.conf on lab hosts: every probe passes, each measurement within tolerance", async (t) => {
  const json = join(mkdtempSync(join(tmpdir(), "sockprobe-tune-")), "rows.json");
  const { io, out, err } = capturedIo();
  const code = await tuneCommand(["--verify", fixture("small.conf"), "--user-timeout", "1500", "--json", json], io);
  t.equal(code, 0, `${out.text}\n${err.text}`);
  const rows = JSON.parse(readFileSync(json, "utf8")) as VerifyRow[];
  t.same(
    rows.map((r) => [r.label, r.verdict]),
    [
      ["retransmission death (tcp_retries2=3)", "pass"],
      ["retransmission death (TCP_USER_TIMEOUT=1500 ms)", "pass"],
      ["keepalive death (1 s + 1 s × 3)", "pass"],
      ["SYN give-up (tcp_syn_retries=2)", "pass"],
      ["FIN_WAIT2 lifetime (tcp_fin_timeout=2)", "pass"],
      ["accept-queue capacity (backlog 511, somaxconn 3)", "pass"],
    ],
  );
  for (const r of rows.filter((r) => r.unit === "ms")) {
    const { predictedMs, measuredMs, toleranceMs } = r as {
      predictedMs: number;
      measuredMs: number;
      toleranceMs: number;
    };
    t.ok(
      Math.abs(measuredMs - predictedMs) <= toleranceMs,
      `${r.label}: measured ${measuredMs.toFixed(0)} ms within ${predictedMs.toFixed(0)} ± ${toleranceMs} ms`,
    );
    t.equal(r.pass, true);
    if (r.expectedErrno) t.equal(r.observedErrno, "ETIMEDOUT", `${r.label}: the errno`);
  }
  const byLabel = (prefix: string) => rows.find((r) => r.label.startsWith(prefix)) as VerifyRow;
  // By hand from timerChainExpectation: a timer of 1 s or 2 s (250 or 500 jiffies) may fire up to
  // 32 ms late, so each adds 16 ms to the sum and to tolerance(sum, timers) = 50 + 5% + 10 ms each.
  // Keepalive 1 + 1 × 3 s: four 1 s timers: 4000 + 64 ms, round(50 + 200 + 40) + 64 = 354.
  t.match(byLabel("keepalive"), { predictedMs: 4064, toleranceMs: 354 });
  // SYN, syn_retries=2 with the kernel's 4 linear timeouts: 1 s × 5, then 2 s: 7000 + 96 ms, 460 + 96.
  t.match(byLabel("SYN"), { predictedMs: 7096, toleranceMs: 556 });
  // FIN_WAIT2, tcp_fin_timeout=2: one 2 s timer: 2000 + 16 ms, 160 + 16.
  t.match(byLabel("FIN_WAIT2"), { predictedMs: 2016, toleranceMs: 176 });
  t.match(byLabel("accept-queue"), {
    predictedMs: null,
    measuredMs: null,
    unit: "connections",
    predicted: 4,
    measured: 4,
    pass: true,
  });
  t.match(out.text, /^applied to every host: net\.ipv4\.tcp_retries2 = 3, /m);
  t.match(out.text, /^not applied: net\.ipv4\.no_such_key \(line 9\): a new network namespace has no such key$/m);
  t.match(out.text, /^probe +predicted +measured +verdict$/m);
  t.match(
    out.text,
    /^retransmission death \(tcp_retries2=3\) +\d+\.\d+ s ± \d+ ms, ETIMEDOUT +\d+\.\d+ s, ETIMEDOUT +pass$/m,
  );
  t.match(
    out.text,
    /^accept-queue capacity \(backlog 511, somaxconn 3\) +4 connections exactly +4 connections +pass$/m,
  );
  t.match(out.text, /^6 passed, 0 failed, 0 skipped; wall time \d+\.\d s$/m);
  t.match(err.text, /^pass {2}tune-retrans \(\d+\.\d s\) {2}\[\d\/6\]$/m, "progress on stderr");
});

t.test("--max-seconds: probes predicted to take longer are skipped with their predicted time", async (t) => {
  const json = join(mkdtempSync(join(tmpdir(), "sockprobe-tune-")), "rows.json");
  const { io, out, err } = capturedIo();
  const code = await tuneCommand(["--verify", fixture("slow.conf"), "--max-seconds", "1", "--json", json], io);
  t.equal(code, 0, `skips are allowed\n${out.text}\n${err.text}`);
  const rows = JSON.parse(readFileSync(json, "utf8")) as VerifyRow[];
  t.same(
    rows.map((r) => r.verdict),
    ["skip", "skip", "skip", "skip", "pass"],
  );
  // retries2=15 on a LAN: (2^10 − 1) × 200 ms + 6 × 120 s = 924.6 s from the first RTO retransmission.
  const death = retransmissionDeath({ rtoMs: lanRtoMs(), srttMs: LAN_RTT_MS, retries2: 15 });
  const expected = timerChainExpectation(death.intervals, death.why);
  const [retrans] = rows;
  t.match(retrans, {
    label: "retransmission death (tcp_retries2=15)",
    predictedMs: expected.ms,
    toleranceMs: expected.toleranceMs,
    measuredMs: null,
    pass: true,
  });
  t.ok((retrans?.predictedMs as number) > 924_600, "over 15 minutes");
  t.match(retrans?.reason, /^predicted 939 s \(15\.6 min\) exceeds --max-seconds 1: not run/);
  t.match(
    out.text,
    /^retransmission death \(tcp_retries2=15\) +939 s \(15\.6 min\) ± [^,]+, ETIMEDOUT +not run +skip$/m,
  );
  t.match(out.text, /^ {4}skip: predicted 939 s \(15\.6 min\) exceeds --max-seconds 1: not run/m);
  t.match(out.text, /^keepalive death \(7200 s \+ 75 s × 9\) +7950 s \(2\.21 h\)/m);
  t.match(out.text, /^ {4}skip: predicted 134 s \(2\.2 min\) exceeds --max-seconds 1/m, "SYN give-up: 131 s nominal");
  t.match(out.text, /^1 passed, 0 failed, 4 skipped/m);
});

t.test("a prediction the kernel does not meet fails, saying expected against observed", async (t) => {
  // The hosts get tcp_fin_timeout=2 and somaxconn 3; the predictions are made for 3 and 4.
  const kernel = kernelFacts();
  const rows = await verifyTuning({
    sysctls: { "net.ipv4.tcp_fin_timeout": "2", "net.core.somaxconn": "3" },
    settings: resolveSettings({ "net.ipv4.tcp_fin_timeout": "3", "net.core.somaxconn": "4" }, kernel),
    maxSeconds: 5,
    backlog: 511,
  });
  t.same(
    rows.map((r) => r.verdict),
    ["skip", "skip", "skip", "fail", "fail"],
  );
  const [finWait2, accept] = rows.slice(3) as [VerifyRow, VerifyRow];
  t.equal(finWait2.pass, false);
  t.match(finWait2.reason, /expected FIN_WAIT2 lifetime \(tcp_fin_timeout=3\) after 3\.\d+ s ± \d+ ms .*got \d\.\d+ s/);
  // What the hosts' tcp_fin_timeout=2 gives, placed by ss looks at most one sparse gap (and a look) apart.
  const measured = finWait2.measuredMs as number;
  const given = finWait2Lifetime({ finTimeoutS: 2, rtoMs: lanRtoMs() });
  const e = timerChainExpectation(given.timersMs, given.why);
  const within = e.toleranceMs + SPARSE_LOOK_MS + 50;
  t.ok(Math.abs(measured - e.ms) <= within, `the hosts' tcp_fin_timeout=2: ${measured} ms, ${e.ms} ± ${within} ms`);
  t.match(accept.reason, /expected connections completed to be 5, got 4/);
  t.match(formatVerify(rows), /^FIN_WAIT2 lifetime \(tcp_fin_timeout=3\) +3\.\d+ s ± \d+ ms +\d\.\d+ s +fail$/m);
});
