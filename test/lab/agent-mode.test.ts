// The same lab and scenarios with every host reached through its agent, as the VM backends will be.
import t from "tap";
import { runScenario } from "../../src/runner/run-scenario.js";
import { scenario as teardown } from "../../src/scenarios/normal-teardown.js";
import { scenario as powerOff } from "../../src/scenarios/peer-power-off.js";
import { POLLIN, POLLRDHUP } from "../../src/sys/index.js";
import { withLab } from "../helpers/lab.js";

t.test("hosts behind agents: sockets, errors and a power cycle behave as in-process", async (t) => {
  const lab = await withLab(t, { name: "agents", control: "agent" });
  const kang = await lab.addHost("kang");
  const kodos = await lab.addHost("kodos");
  const l = await kodos.listen(8080);
  const c = await kang.connect(kodos.ipv4, 8080);
  const s = await l.acceptAsync({ timeoutMs: 2000 });
  await c.write("over the agent");
  t.equal((await s.readAsync(100, { timeoutMs: 2000 })).toString(), "over the agent");
  await lab.powerCycle(kodos);
  await c.write("again");
  const r = await c.poll(POLLIN | POLLRDHUP, 1000);
  t.ok(r.outcomes[0]?.names.includes("POLLERR"));
  await t.rejects(c.read(), { name: "SysError", code: "ECONNRESET", syscall: "read" });
  t.ok(
    lab.transcript.entries.some((e) => e.host === "kodos" && e.call === "accept"),
    "agent calls are in the transcript",
  );
});

t.test("scenarios pass unchanged with hosts behind agents", async (t) => {
  for (const s of [teardown, powerOff]) {
    const r = await runScenario(s, { trace: true, control: "agent" });
    t.equal(r.verdict, "pass", `${s.name}: ${r.reason ?? "passed"}`);
  }
});
