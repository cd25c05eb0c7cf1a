// Hosts that are VMs on the lab's switch: each VM's NIC a tap that QEMU makes inside the switch's
// namespace, plugged into its bridge like a veth, so a TCP connection crosses from one guest's
// kernel to the other's over the switch, where a capture or a filter would see it.
import t from "tap";
import { AddressPlan, leaseLabId } from "../../src/lab/addressing.js";
import { AgentClient, agentCommand } from "../../src/lab/agent-client.js";
import { run } from "../../src/proc/exec.js";
import { Netns } from "../../src/sys/socket.js";
import { Guest } from "../../src/vm/guest-run.js";
import { resolveKernel } from "../../src/vm/kernels.js";

t.setTimeout(10 * 60_000);

t.test("two guests talk TCP through taps on a bridge in a namespace of ours", async (t) => {
  const kernel = await resolveKernel("6.12");
  const lease = await leaseLabId();
  t.teardown(() => lease.release());
  const plan = new AddressPlan(lease.id);
  const sw = Netns.create();
  t.teardown(() => sw.close());
  await run(["ip", "-batch", "-"], {
    netns: sw.path,
    input: "link add br0 type bridge forward_delay 0 stp_state 0\nlink set br0 up",
  });
  const hosts = ["kang", "kodos"].map((name, i) => ({ name, port: `h${i}`, ...plan.iface(0, i) }));
  const guests = await Promise.all(
    hosts.map((h) =>
      Guest.boot({
        kernel,
        memoryMiB: 1024,
        netns: sw.path,
        extra: [
          "-netdev",
          `tap,id=n0,ifname=${h.port},script=no,downscript=no`,
          "-device",
          `virtio-net-pci,netdev=n0,mac=${h.mac}`,
        ],
      }),
    ),
  );
  t.teardown(() => Promise.all(guests.map((g) => g.kill())));
  await run(["ip", "-batch", "-"], {
    netns: sw.path,
    input: hosts.map((h) => `link set ${h.port} master br0 up`).join("\n"),
  });
  const clients = guests.map((g, i) => {
    const h = hosts[i] as (typeof hosts)[number];
    g.start([
      "/bin/sh",
      "-c",
      `ip link set eth0 address ${h.mac} up && ip addr add ${h.ipv4}/${h.prefix4} dev eth0 && exec "$@"`,
      "sh",
      ...agentCommand(h.name),
    ]);
    return new AgentClient(g.job, g.job, { host: h.name });
  });
  const [kang, kodos] = clients as [AgentClient, AgentClient];
  const [hk, hd] = hosts as [(typeof hosts)[number], (typeof hosts)[number]];
  t.equal((await kang.hello()).kernel, kernel.release);
  const listener = await kodos.socket();
  await listener.bind(hd.ipv4, 8080);
  await listener.listen(4);
  const c = await kang.socket();
  await c.connectAsync(hd.ipv4, 8080, { timeoutMs: 60_000 });
  const s = await listener.acceptAsync({ timeoutMs: 60_000 });
  t.equal((await s.remoteAddress()).address, hk.ipv4, "kodos sees kang's address from across the switch");
  await c.send(Buffer.from("kodos, are you there?"));
  t.equal((await s.recvAsync(21, ["MSG_WAITALL"], { timeoutMs: 30_000 })).toString(), "kodos, are you there?");
  const fdb = (await run(["bridge", "fdb", "show", "br", "br0"], { netns: sw.path })).stdout;
  t.match(fdb, new RegExp(`${hk.mac} dev h0`), "the switch learnt kang's MAC on its tap");
});
