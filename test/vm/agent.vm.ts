// A host that is a VM: the agent runs inside the guest on its own kernel, its JSON lines over the
// virtio-serial job port, so control never crosses the test network.
import t from "tap";
import { AgentClient, agentCommand } from "../../src/lab/agent-client.js";
import { Transcript } from "../../src/sys/transcript.js";
import { Guest } from "../../src/vm/guest-run.js";
import { resolveKernel } from "../../src/vm/kernels.js";

t.setTimeout(10 * 60_000);

t.test("an agent in a guest answers socket calls on the guest's kernel", async (t) => {
  const kernel = await resolveKernel("6.12");
  const guest = await Guest.boot({ kernel });
  t.teardown(() => guest.kill());
  guest.start(agentCommand("kodos"), kernel);
  const transcript = new Transcript();
  const client = new AgentClient(guest.job, guest.job, { host: "kodos", transcript });
  const hello = await client.hello();
  t.equal(hello.kernel, kernel.release, "the agent runs on the kernel under test");
  const listener = await client.socket();
  await listener.bind("127.0.0.1", 0);
  await listener.listen(4);
  const port = (await listener.localAddress()).port;
  const c = await client.socket();
  await c.connectAsync("127.0.0.1", port, { timeoutMs: 30_000 });
  const s = await listener.acceptAsync({ timeoutMs: 30_000 });
  await c.send(Buffer.from("kodos, are you there?"));
  const got = await s.recvAsync(21, ["MSG_WAITALL"], { timeoutMs: 30_000 });
  t.equal(got.toString(), "kodos, are you there?", "bytes crossed the guest's loopback");
  t.ok(
    transcript.entries.some((e) => e.host === "kodos" && e.call === "connect"),
    "calls are on the lab's transcript",
  );
});
