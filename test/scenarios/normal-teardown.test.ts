import t from "tap";
import { TCP_TIMEWAIT_LEN_MS } from "../../src/model/tcp.js";
import { runScenario } from "../../src/runner/run-scenario.js";
import { scenario } from "../../src/scenarios/normal-teardown.js";

t.test("normal teardown: the client is woken with POLLIN, reads 0; the server ends in TIME_WAIT", async (t) => {
  const r = await runScenario(scenario, { trace: true });
  t.equal(r.verdict, "pass", r.reason ?? "passed");
  const check = (label: string) => r.checks.find((c) => c.label === label);
  t.equal(check("poll on kang")?.observed, "POLLIN|POLLRDHUP");
  t.equal(check("read on kang")?.observed, "0 (EOF)");
  t.equal(check("kang's state after the FIN")?.observed, "CLOSE_WAIT");
  t.equal(check("kodos's final state")?.observed, "TIME_WAIT");
  t.equal(check("kang's sockets for the connection after close")?.observed, "none");
  const timer = r.observations["kodos TIME_WAIT timer"]?.value as number;
  t.ok(
    timer <= TCP_TIMEWAIT_LEN_MS && timer > TCP_TIMEWAIT_LEN_MS - 5000,
    `TIME_WAIT timer ${timer} ms: TCP_TIMEWAIT_LEN, nearly whole`,
  );
  if (r.evidence.trace.available) t.equal(check("kang's path")?.observed, "ESTABLISHED>CLOSE_WAIT>LAST_ACK>CLOSE");
});
