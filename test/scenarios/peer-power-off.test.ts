import t from "tap";
import { retransmissionDeath, tolerance } from "../../src/model/tcp.js";
import { runScenario } from "../../src/runner/run-scenario.js";
import { scenario } from "../../src/scenarios/peer-power-off.js";

t.test("peer power off: ETIMEDOUT by retries2 and by user timeout, EHOSTUNREACH when ARP fails", async (t) => {
  const r = await runScenario(scenario, { trace: true });
  t.equal(r.verdict, "pass", r.reason ?? "passed");
  const checks = (label: string) => r.checks.filter((c) => c.label === label);
  t.same(
    checks("read on kang").map((c) => c.observed),
    ["ETIMEDOUT", "ETIMEDOUT"],
  );
  t.equal(checks("read on amy")[0]?.observed, "EHOSTUNREACH");
  t.same(
    checks("write on kang").map((c) => c.observed),
    ["1", "1", "EPIPE"],
    "writes into silence succeed; after the error, EPIPE",
  );
  const rto = r.observations["RTO before the fault"]?.value as number;
  const model = retransmissionDeath({ rtoMs: rto, retries2: 3 });
  const died = r.observations["death by tcp_retries2=3"]?.value as number;
  t.ok(
    died > model.startMs + model.limitMs - (model.early ? model.limitMs + model.startMs - model.early.deathMs : 0),
    `the limit (${model.limitMs} ms from the first RTO retransmission) was overshot: died at ${died} ms`,
  );
  // One firing sooner where the timer wheel's rounding may take it past the limit.
  t.ok(
    [model.retransmissions, model.early?.retransmissions]
      .map(String)
      .includes(checks("retransmissions before giving up (retries2)")[0]?.observed ?? ""),
  );
  // Compared from each connection's first RTO retransmission: their handshake RTTs may differ.
  const after = (limit: string) => r.observations[`error after the first RTO retransmission (${limit})`]?.value;
  const byRetries = after("tcp_retries2=3") as number;
  const byUser = after("TCP_USER_TIMEOUT=1500") as number;
  t.ok(byRetries >= model.limitMs, `tcp_retries2=3 overshoots its ${model.limitMs} ms: ${byRetries} ms`);
  t.ok(Math.abs(byUser - 1500) <= tolerance(1500), `TCP_USER_TIMEOUT=1500 ends it at the limit: ${byUser} ms`);
  t.ok(byUser < byRetries, "the user timeout ends it sooner");
  t.ok((r.observations["death with default sysctls (model)"]?.value as number) > 900_000, "defaults: over 15 minutes");
  if (r.evidence.trace.available) {
    t.ok(
      r.evidence.states.some((e) => e.event === "tcp_retransmit_skb"),
      "retransmissions traced",
    );
  }
});
