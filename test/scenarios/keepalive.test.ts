// keepalive on the real kernel: idle + intvl x cnt, no probes on a busy socket, TCP_USER_TIMEOUT replacing TCP_KEEPCNT.
import t from "tap";
import { timerChainExpectation } from "../../src/model/tcp.js";
import { keepaliveDeath, keepaliveTimerDelays } from "../../src/model/timers.js";
import { runScenario } from "../../src/runner/run-scenario.js";
import { scenario } from "../../src/scenarios/keepalive.js";

const r = await runScenario(scenario, { trace: true });
const observed = (label: string) => r.checks.find((c) => c.label === label)?.observed;
const ms = (key: string) => Number(r.observations[key]?.value);

t.equal(r.verdict, "pass", r.reason ?? "the verdict");
for (const which of ["idle", "busy", "user timeout short", "user timeout long"]) {
  t.equal(observed(`read (${which}) on kang`), "ETIMEDOUT", `${which}: ETIMEDOUT`);
}
for (const [key, userTimeoutMs] of [
  ["idle death by keepalive 1 s + 1 s x 3", undefined],
  ["death with TCP_USER_TIMEOUT=500 ms", 500],
  ["death with TCP_USER_TIMEOUT=5500 ms", 5500],
] as const) {
  const d = keepaliveDeath({ idleS: 1, intvlS: 1, cnt: 3, ...(userTimeoutMs ? { userTimeoutMs } : {}) });
  const e = timerChainExpectation(keepaliveTimerDelays(d), d.why);
  t.ok(Math.abs(ms(key) - e.ms) <= e.toleranceMs, `${key}: ${ms(key)} ms; model ${e.ms} ± ${e.toleranceMs}`);
}
t.equal(observed("keepalive probes before giving up (TCP_INFO probes)"), "3", "cnt probes, then the error");
t.equal(observed("probes with TCP_USER_TIMEOUT=500 ms"), "1", "a short user timeout still waits for one probe");
t.equal(observed("probes with TCP_USER_TIMEOUT=5500 ms (past TCP_KEEPCNT=3)"), "5", "a long one probes past cnt");
t.equal(observed("keepalive probes on the busy socket"), "0", "data in flight: no keepalive probe");
t.ok(["4", "5"].includes(observed("retransmissions on the busy socket") ?? ""), "5, or 4 where the wheel decides");
t.ok(ms("busy death by tcp_retries2=3, not keepalive") > ms("idle death by keepalive 1 s + 1 s x 3") + 1500);
t.equal(observed("state of the idle socket without SO_KEEPALIVE"), "ESTABLISHED");
t.equal(ms("keepalive death with default sysctls (model)"), 7_875_000, "7200 s + 75 s x 9");
if (r.evidence.trace.available) {
  t.equal(observed("RST sent by the keepalive's end"), "TCP_KEEPALIVE_TIMEOUT");
  t.equal(observed("RSTs sent by the busy socket's end (retransmission timeout)"), "0");
}
