import t from "tap";
import { runScenario } from "../../src/runner/run-scenario.js";
import { scenario } from "../../src/scenarios/abortive-close.js";

t.test("abortive close: RST, queued data still readable, then ECONNRESET; unsent and unacked bytes lost", async (t) => {
  const r = await runScenario(scenario, { trace: true });
  t.equal(r.verdict, "pass", r.reason ?? "passed");
  const checks = (label: string) => r.checks.filter((c) => c.label === label).map((c) => c.observed);
  const check = (label: string) => checks(label)[0];
  for (const when of ["linger", "in flight", "unread"]) {
    t.equal(check(`${when}: poll(POLLIN|POLLRDHUP) on kang`), "POLLIN|POLLERR|POLLHUP|POLLRDHUP", `${when}: revents`);
    const reads = checks(`${when}: read on kang`);
    t.equal(reads.length, 3, `${when}: three reads`);
    t.match(reads[0], /^\d+ bytes$/, `${when}: what arrived before the RST is read first`);
    t.same(reads.slice(1), ["ECONNRESET", "0 (EOF)"], `${when}: then ECONNRESET once, then EOF`);
    t.equal(check(`${when}: kang's state`), "CLOSE");
  }
  t.equal(check("in flight: read on kang"), "500 bytes");
  t.equal(check("unread: read on kang"), "55 bytes", "the response survives the RST");
  t.ok(Number(check("linger: bytes lost (written by kodos, never read by kang)")) > 0, "unsent bytes lost");
  t.equal(check("in flight: bytes lost (sent, unacknowledged, never retransmitted)"), "1000");
  t.equal(check("unread: request bytes unacknowledged at kang (SIOCOUTQ)"), "0", "TCP acknowledged the lost request");
  t.equal(check("linger: write after the error was read on kang"), "EPIPE");
  if (r.evidence.trace.available) {
    t.equal(check("linger: RST kodos sent (tcp_send_reset reason)"), "TCP_STATE");
    t.equal(check("in flight: RSTs kodos's listener sent (answering kang's challenge ACK)"), "TCP_FLAGS");
    t.equal(check("in flight: RSTs kang accepted (of 2 sent)"), "1");
    t.equal(check("unread: RST kodos sent (tcp_send_reset reason)"), "TCP_ABORT_ON_CLOSE");
    t.equal(check("unread: kodos's path (a RST, no FIN)"), "ESTABLISHED>CLOSE");
  }
});
