// unplugged-cable on the real kernel: queued writes delivered in order after the replug, or ETIMEDOUT and a stale peer.
import t from "tap";
import { runScenario } from "../../src/runner/run-scenario.js";
import { scenario } from "../../src/scenarios/unplugged-cable.js";

const r = await runScenario(scenario, { trace: true });
const observed = (label: string) => r.checks.find((c) => c.label === label)?.observed;
const ms = (key: string) => Number(r.observations[key]?.value);

t.equal(r.verdict, "pass", r.reason ?? "the verdict");
t.equal(observed('write "one," on kang'), "4", "writes during the outage succeed");
t.equal(observed('write "three." on kang'), "6");
t.equal(observed("SIOCOUTQ during the outage"), "14 bytes", "every byte is queued, none acknowledged");
t.equal(observed("kodos's SIOCINQ during the outage"), "0 bytes");
t.equal(observed("poll (during the outage) on kang"), "POLLOUT");
t.equal(observed("bytes kodos received, in order"), "one,two,three.");
t.ok(
  ms("delivery, at the first retransmission after the replug") > ms("outage"),
  "delivery waits for a retransmission timer after the replug",
);
t.equal(observed("read (user timeout) on kang"), "ETIMEDOUT", "the outage outlasting TCP_USER_TIMEOUT kills it");
t.ok(ms("death by TCP_USER_TIMEOUT=1500 during the outage") >= 1500);
t.equal(observed("kodos's state of the dead connection"), "ESTABLISHED", "the peer never noticed");
t.equal(observed("read on kodos"), "ECONNRESET", "its later data draws an RST");
if (r.evidence.trace.available) t.match(observed("kang's answer to kodos's data"), /NO_SOCKET/);
