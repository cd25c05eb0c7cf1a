import t from "tap";
import { runScenario } from "../../src/runner/run-scenario.js";
import { scenario } from "../../src/scenarios/half-close-request-response.js";

t.test("half-close request/response: every response arrives in order, EOF only after the last", async (t) => {
  const r = await runScenario(scenario, { trace: true });
  t.equal(r.verdict, "pass", r.reason ?? "passed");
  const check = (label: string) => r.checks.find((c) => c.label === label);
  t.equal(check("read on kodos")?.observed, "0 (EOF)", "the server reads EOF after the requests");
  t.equal(check("kodos's state after reading EOF")?.observed, "CLOSE_WAIT");
  t.equal(check("kang's state while kodos sends response 0")?.observed, "FIN_WAIT2");
  t.equal(check("kodos's state while sending response 2")?.observed, "CLOSE_WAIT", "still sending in CLOSE_WAIT");
  t.ok(Number(r.observations["data segments kodos sent"]?.value) > 1, "more than one segment of responses");
  t.equal(check("poll on kang")?.observed, "POLLIN", "responses queued, no EOF before kodos closes");
  t.equal(check("poll after kodos's close on kang")?.observed, "POLLIN|POLLHUP|POLLRDHUP");
  t.equal(check("response bytes kang read before EOF")?.observed, "9000");
  t.equal(check("response bytes in order (first byte that differs)")?.observed, "none");
  t.equal(check("kang's last read")?.observed, "0 (EOF)");
  t.equal(check("kang's final state")?.observed, "TIME_WAIT", "the client, which closed first, keeps TIME_WAIT");
  t.equal(check("kodos keeps no socket for the connection")?.observed, "true");
  if (r.evidence.trace.available) {
    t.equal(check("kang's path")?.observed, "ESTABLISHED>FIN_WAIT1>FIN_WAIT2>CLOSE");
    t.equal(check("kodos's path")?.observed, "ESTABLISHED>CLOSE_WAIT>LAST_ACK>CLOSE");
  }
});
