// peer-paused on netns: the pause is emulated, so the paused host's clock runs on and what its peer
// retransmitted was dropped at the switch: it finds its connection ESTABLISHED until it writes.
import t from "tap";
import { runScenario } from "../../src/runner/run-scenario.js";
import { scenario } from "../../src/scenarios/peer-paused.js";

const r = await runScenario(scenario, { trace: true });
const observed = (label: string) => r.checks.find((c) => c.label === label)?.observed;

t.equal(r.verdict, "pass", r.reason ?? "the verdict");
t.equal(observed("poll (idle, kang paused) on kodos"), "nothing", "the seed's server sees no EPOLLIN");
t.equal(observed("kodos's state while kang is paused"), "ESTABLISHED");
t.equal(observed("read on kodos"), "ETIMEDOUT", "kodos gives up by tcp_retries2");
t.equal(observed("kang's state once resumed"), "ESTABLISHED", "the segments sent to the paused host were dropped");
t.equal(observed("read on kang"), "ECONNRESET", "kang meets the RST once it writes");
const clock = r.observations["kang's clock across the pause"];
const pause = r.observations["pause length"];
t.ok(
  typeof clock?.value === "number" && typeof pause?.value === "number" && clock.value >= pause.value,
  `the emulated pause stops no clock: ${clock?.value} ms elapsed for kang across a ${pause?.value} ms pause`,
);
