// half-open-fin-wait2 on the real kernel: orphan FIN_WAIT2 lifetimes against the model, CLOSE_WAIT kept, the RST's EPIPE.
import t from "tap";
import { TCP_RTO_MIN_MS, timerChainExpectation } from "../../src/model/tcp.js";
import { finWait2Lifetime } from "../../src/model/timers.js";
import { runScenario } from "../../src/runner/run-scenario.js";
import { scenario } from "../../src/scenarios/half-open-fin-wait2.js";

const r = await runScenario(scenario, { trace: true });
const observed = (label: string) => r.checks.find((c) => c.label === label)?.observed;
const ms = (key: string) => Number(r.observations[key]?.value);

t.equal(r.verdict, "pass", r.reason ?? "the verdict");
t.equal(observed("kang's state after reading 0"), "CLOSE_WAIT");
t.equal(observed("kodos's state after the exit"), "FIN_WAIT2");
t.equal(observed("kodos's FIN_WAIT2 timer with TCP_LINGER2=61"), "keepalive");
for (const [label, lifetime] of [
  ["tcp_fin_timeout=3", finWait2Lifetime({ finTimeoutS: 3, rtoMs: TCP_RTO_MIN_MS })],
  ["TCP_LINGER2=1", finWait2Lifetime({ finTimeoutS: 3, linger2S: 1, rtoMs: TCP_RTO_MIN_MS })],
  ["TCP_LINGER2=61", finWait2Lifetime({ finTimeoutS: 3, linger2S: 61, rtoMs: TCP_RTO_MIN_MS })],
] as const) {
  // The RTO only sets a floor (3.5 RTO) far below these lifetimes.
  const e = timerChainExpectation(lifetime.timersMs, lifetime.why);
  const got = ms(`FIN_WAIT2 lifetime with ${label}`);
  t.ok(
    Math.abs(got - e.ms) <= e.toleranceMs,
    `FIN_WAIT2 with ${label} lasts ${got} ms; model ${e.ms} ± ${e.toleranceMs}`,
  );
}
t.ok(ms("FIN_WAIT2 lifetime with TCP_LINGER2=61") < ms("FIN_WAIT2 lifetime with tcp_fin_timeout=3"), "61 s lasts 2 s");
t.equal(ms("FIN_WAIT2 lifetime with default sysctls (model)"), 60_000);
t.equal(observed("kang's row after kodos's FIN_WAIT2 is gone"), "CLOSE_WAIT", "the CLOSE_WAIT side outlives it");
t.equal(observed("write on kang"), "22", "the later write succeeds");
t.equal(observed("poll (after the write) on kang"), "POLLIN|POLLOUT|POLLERR|POLLHUP|POLLRDHUP");
t.equal(observed("read on kang"), "0 (EOF)", "Linux: the FIN already received comes before the RST's error");
t.equal(observed("SO_ERROR on kang"), "EPIPE", "Linux: tcp_reset in CLOSE_WAIT records EPIPE");
t.equal(observed("write again on kang"), "EPIPE");
if (r.evidence.trace.available) {
  t.equal(observed("RSTs kodos sent as its FIN_WAIT2s went away"), "0", "the FIN_WAIT2 goes away silently");
  t.equal(observed("kodos's answer to the write")?.endsWith("NO_SOCKET"), true);
}
