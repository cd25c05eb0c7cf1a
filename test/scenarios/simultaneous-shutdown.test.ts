import t from "tap";
import { runScenario } from "../../src/runner/run-scenario.js";
import { scenario } from "../../src/scenarios/simultaneous-shutdown.js";

t.test("simultaneous shutdown: a response is lost silently; the asymmetric termination loses nothing", async (t) => {
  const r = await runScenario(scenario, { trace: true });
  t.equal(r.verdict, "pass", r.reason ?? "passed");
  const check = (label: string) => r.checks.find((c) => c.label === label);
  t.equal(check("symmetric: states as the shutdowns cross (kang, kodos)")?.observed, "FIN_WAIT1, FIN_WAIT1");
  t.equal(
    check("symmetric: write response on kodos")?.observed,
    "EPIPE",
    "the server cannot answer after its shutdown",
  );
  t.equal(check("symmetric: late requests kodos read")?.observed, "REQ 4", "the request itself arrived");
  t.equal(check("symmetric: responses owed to kang")?.observed, "4");
  t.equal(check("symmetric: responses kang received")?.observed, "3", "one response lost");
  t.equal(check("symmetric: kang's last read")?.observed, "EOF");
  t.equal(check("symmetric: errors kang saw")?.observed, "none", "and the client saw no error");
  t.equal(check("symmetric: in TIME_WAIT")?.observed, "kang and kodos");
  t.equal(check("asymmetric: responses owed to kang")?.observed, "4");
  t.equal(check("asymmetric: responses kang received")?.observed, "4", "nothing lost");
  t.equal(check("asymmetric: errors kang saw")?.observed, "none");
  t.equal(check("asymmetric: errors kodos saw")?.observed, "none");
  t.equal(check("asymmetric: in TIME_WAIT")?.observed, "kang");
  t.equal(r.observations["asymmetric: responses kang read"]?.value, "RSP 1, RSP 2, RSP 3, RSP 4");
  if (r.evidence.trace.available) {
    t.match(
      check("symmetric: both paths a simultaneous close")?.observed,
      /^kang ESTABLISHED>FIN_WAIT1>(CLOSING|FIN_WAIT2)>CLOSE; kodos ESTABLISHED>FIN_WAIT1>(CLOSING|FIN_WAIT2)>CLOSE$/,
    );
    t.equal(check("asymmetric: kodos's path")?.observed, "ESTABLISHED>CLOSE_WAIT>LAST_ACK>CLOSE");
  }
});
