import t from "tap";
import { runScenario } from "../../src/runner/run-scenario.js";
import { scenario } from "../../src/scenarios/what-is-readable.js";

t.test("what is readable: revents and MSG_PEEK after FIN, RST, with and without data", async (t) => {
  const r = await runScenario(scenario, { trace: true });
  t.equal(r.verdict, "pass", r.reason ?? "passed");
  const checks = (label: string) => r.checks.filter((c) => c.label === label).map((c) => c.observed);
  const check = (label: string) => checks(label)[0];
  const peek = (when: string) => check(`${when}: recv(MSG_PEEK|MSG_DONTWAIT) on kang`);
  const poll = (when: string) => check(`${when}: poll(POLLIN|POLLRDHUP) on kang`);

  t.equal(poll("idle"), "nothing", "idle: poll times out");
  t.equal(peek("idle"), "EAGAIN");
  t.ok(Number(r.observations["idle: poll waited its whole timeout"]?.value) >= 250, "idle: the whole timeout");

  t.equal(poll("after FIN"), "POLLIN|POLLRDHUP");
  t.equal(peek("after FIN"), "0 (EOF)");

  t.equal(poll("FIN behind data"), "POLLIN|POLLRDHUP");
  t.equal(peek("FIN behind data"), "26 bytes", "peek gives the data, not 0");
  t.equal(check("FIN behind data: recv(MSG_PEEK|MSG_DONTWAIT) again on kang"), "26 bytes");
  t.same(checks("FIN behind data: read on kang"), ["26 bytes", "0 (EOF)"]);

  t.equal(poll("after RST"), "POLLIN|POLLERR|POLLHUP|POLLRDHUP");
  t.equal(check("after RST: poll(POLLIN|POLLOUT|POLLRDHUP) on kang"), "POLLIN|POLLOUT|POLLERR|POLLHUP|POLLRDHUP");
  t.equal(peek("after RST"), "ECONNRESET", "even a peek takes the error");
  t.equal(poll("after RST, error taken"), "POLLIN|POLLHUP|POLLRDHUP", "POLLERR gone once the error is taken");
  t.same(checks("after RST: read on kang"), ["0 (EOF)"]);

  t.equal(check("RST behind data: bytes still queued (SIOCINQ)"), "26", "a RST does not discard queued data");
  t.equal(poll("RST behind data"), "POLLIN|POLLERR|POLLHUP|POLLRDHUP");
  t.equal(peek("RST behind data"), "26 bytes");
  t.same(checks("RST behind data: read on kang"), ["26 bytes", "ECONNRESET", "0 (EOF)"]);

  t.equal(peek("RST after FIN"), "0 (EOF)", "a RST after the FIN is invisible to recv");
  t.equal(check("RST after FIN: SO_ERROR, which read never returned"), "EPIPE");

  t.equal(poll("FIN both ways"), "POLLIN|POLLHUP|POLLRDHUP", "POLLHUP without error once both directions are shut");
  if (r.evidence.trace.available) {
    t.equal(check("RSTs kang received (tcp_receive_reset)"), "3");
  }
});
