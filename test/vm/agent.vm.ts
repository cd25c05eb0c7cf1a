// A host that is a VM: the agent runs inside the guest on its own kernel, its JSON lines over the
// virtio-serial job port, so control never crosses the test network.
import t from "tap";
import { kernelFactsFrom, localKernelFacts } from "../../src/evidence/kernel-facts.js";
import { AgentClient, agentCommand } from "../../src/lab/agent-client.js";
import { KERNEL_RULES, ruleApplies } from "../../src/model/kernel.js";
import { Transcript } from "../../src/sys/transcript.js";
import { Guest } from "../../src/vm/guest-run.js";
import { resolveKernel } from "../../src/vm/kernels.js";

t.setTimeout(10 * 60_000);

t.test("an agent in a guest answers socket calls on the guest's kernel", async (t) => {
  const kernel = await resolveKernel("6.12");
  const guest = await Guest.boot({ kernel });
  t.teardown(() => guest.kill());
  guest.start(agentCommand("kodos"));
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

t.test("the model's rules read from inside a guest: Debian's 6.1 against this machine's kernel", async (t) => {
  const kernel = await resolveKernel("6.1");
  const guest = await Guest.boot({ kernel, memoryMiB: 1024 });
  t.teardown(() => guest.kill());
  guest.start(agentCommand("kang"));
  const client = new AgentClient(guest.job, guest.job, { host: "kang" });
  const { kernel: release } = await client.hello();
  t.equal(release, kernel.release);
  const facts = await kernelFactsFrom({
    release,
    readdir: (p) => client.readdir(p),
    readFile: (p) => client.readFile(p),
  });
  t.ok(facts.sysctls.has("net.ipv4.tcp_retries2"), "the guest's sysctls are listed");
  t.notOk(facts.sysctls.has("net.ipv4.tcp_syn_linear_timeouts"), "6.1 predates tcp_syn_linear_timeouts (6.5)");
  t.equal(ruleApplies(KERNEL_RULES["syn-linear-timeouts"], facts), false);
  t.ok(facts.tracepointFields.has("tcp/tcp_send_reset"), "the guest's tracefs is mounted and read");
  t.equal(
    ruleApplies(KERNEL_RULES["send-reset-every-rst"], facts),
    false,
    "6.1's tcp_send_reset has no reason field (6.10)",
  );
  t.equal(ruleApplies(KERNEL_RULES["tw-reuse-delay-ms"], facts), false, "no tcp_tw_reuse_delay before 6.14");
  const local = await localKernelFacts();
  t.equal(
    ruleApplies(KERNEL_RULES["syn-linear-timeouts"], local),
    local.sysctls.has("net.ipv4.tcp_syn_linear_timeouts"),
  );
  // A sysctl written through the agent is the guest's, read back by the guest's kernel.
  await client.writeFile("/proc/sys/net/ipv4/tcp_retries2", "5");
  t.equal((await client.readFile("/proc/sys/net/ipv4/tcp_retries2")).trim(), "5");
  await t.rejects(client.readFile("/proc/sys/net/ipv4/no_such_sysctl"), { code: "ENOENT" });
  const ss = await client.run(["ss", "-tan"]);
  t.equal(ss.code, 0, "ss runs inside the guest");
  t.match(ss.stdout, /^State/m);
});
