// The Lab interface as every backend gives it: createLab picks the backend, capabilities say which
// faults it gives and how, and a fault it cannot give is a typed error naming both.
import t from "tap";
import { createLab } from "../../src/lab/create.js";
import { FAULTS, isUnsupportedFault, UnsupportedFaultError } from "../../src/lab/lab.js";
import { NetnsLab } from "../../src/lab/netns/netns.js";
import { withLab } from "../helpers/lab.js";

t.test(
  "createLab builds the netns backend by default, and refuses one this build lacks or a qemu lab without its kernel",
  async (t) => {
    const lab = await withLab(t, { name: "create" });
    t.equal(lab.backend, "netns");
    t.ok(lab instanceof NetnsLab, "callers never name the class, but it is the netns one");
    await t.rejects(createLab({ backend: "xen" as never }), {
      name: "TypeError",
      message: /no lab backend "xen" in this build: it has netns, qemu and vagrant/,
    });
    await t.rejects(createLab({ backend: "qemu" }), {
      name: "TypeError",
      message: /a qemu lab needs the kernel its hosts boot/,
    });
  },
);

t.test("netns capabilities: every fault but crash, each with how it is given", async (t) => {
  const lab = await withLab(t, { name: "caps" });
  t.same(
    FAULTS.filter((f) => !lab.capabilities.has(f)),
    ["crash"],
  );
  t.match(lab.capabilities.get("pause"), /emulated: port drops \+ SIGSTOP; kernel timers keep running/);
  t.ok(
    [...lab.capabilities.values()].every((how) => how.length > 0),
    "each says how",
  );
  t.equal(lab.unsupported("powerOff"), undefined, "a fault it gives has no error");
});

t.test("crash on netns is an UnsupportedFaultError naming the backend, the fault and what to do", async (t) => {
  const lab = await withLab(t, { name: "crash" });
  const kang = await lab.addHost("kang");
  const e = await lab.crash(kang).catch((x: unknown) => x);
  t.ok(e instanceof UnsupportedFaultError);
  t.ok(isUnsupportedFault(e));
  t.match(e, {
    name: "UnsupportedFaultError",
    code: "ESOCKPROBE_UNSUPPORTED_FAULT",
    backend: "netns",
    fault: "crash",
    message:
      /^the netns backend cannot give crash: the netns backend has no kernel of its own to panic; use --backend qemu/,
  });
  t.notOk(Object.hasOwn(e as object, "name"), "name lives on the prototype");
  t.equal(kang.state, "running", "nothing was done to the host");
  t.same(lab.faults, [], "and no fault was recorded");
  await t.rejects(lab.crash("nobody"), TypeError, "a host not in the lab is still a usage error");
});

t.test("faults record what the backend did to give them", async (t) => {
  const lab = await withLab(t, { name: "commands" });
  const kang = await lab.addHost("kang");
  await lab.addHost("kodos");
  await lab.unplug(kang);
  await lab.replug(kang);
  await lab.loss("kodos", 20);
  await lab.powerCycle(kang);
  t.same(
    lab.faults.map((f) => [f.fault, f.command]),
    [
      ["unplug", "ip link set h0 down"],
      ["replug", "ip link set h0 up"],
      ["loss", "nft bridge drop iifname/oifname h1 numgen random mod 100 < 20"],
      ["powerOff", "ip link del h0; SIGKILL to its programs; its namespace closed"],
      ["boot", `a new namespace; ip link add h0 type veth peer name eth0 address ${kang.mac}`],
    ],
  );
});
