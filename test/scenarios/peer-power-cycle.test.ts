// peer-power-cycle on the real kernel: nothing is noticed until the write, then one RST and its errors in order.
import t from "tap";
import { runScenario } from "../../src/runner/run-scenario.js";
import { scenario } from "../../src/scenarios/peer-power-cycle.js";

const r = await runScenario(scenario, { trace: true });
const observed = (label: string) => r.checks.find((c) => c.label === label)?.observed;

t.equal(r.verdict, "pass", r.reason ?? "the verdict");
t.equal(observed("poll (across the reboot) on kang"), "nothing", "the idle side's poll sees nothing across the reboot");
t.equal(observed("kang's state after the peer's reboot"), "ESTABLISHED");
t.equal(observed("kodos's sockets for the connection after the reboot"), "none", "the rebooted peer has no socket");
t.equal(observed("write on kang"), "22", "the first write succeeds");
t.equal(observed("poll (after the write) on kang"), "POLLIN|POLLERR|POLLHUP|POLLRDHUP", "woken by the RST");
t.equal(observed("poll (after the RST) on kang"), "POLLIN|POLLOUT|POLLERR|POLLHUP|POLLRDHUP");
t.equal(observed("read on kang"), "ECONNRESET");
t.equal(observed("read again on kang"), "0 (EOF)", "the error is taken once; then end of stream");
t.equal(observed("write again on kang"), "EPIPE");
t.equal(observed("SO_ERROR on kang"), "0");
t.equal(observed("poll (error taken) on kang"), "POLLIN|POLLOUT|POLLHUP|POLLRDHUP");
const rst = r.observations["RST after the write"];
t.ok(rst && typeof rst.value === "number" && rst.value < 50, `the RST comes within about one RTT (${rst?.value} ms)`);
if (r.evidence.trace.available) {
  t.equal(observed("kodos's RST")?.endsWith("NO_SOCKET"), true, "kodos's kernel answers with RST for no socket");
  t.equal(observed("kang's path"), "ESTABLISHED>CLOSE");
}
