// QMP against a real QEMU (no kernel needed: the firmware runs): status, pause and resume with
// their events, a reset that stays a reset under -no-reboot, a link's carrier, and quit.
import t from "tap";
import { chooseAccel } from "../../src/vm/accel.js";
import { Qemu } from "../../src/vm/qemu.js";
import { Qmp, QmpError } from "../../src/vm/qmp.js";

t.setTimeout(120_000);

t.test("the hypervisor's hand on a VM, through QMP", async (t) => {
  const { accel } = await chooseAccel();
  // Firmware only: a kernel would add nothing QMP needs. -S: the VM starts paused.
  const qemu = Qemu.start({
    accel,
    memoryMiB: 64,
    cpus: 1,
    channels: [{ name: "qmp", kind: "qmp" }],
    extra: ["-S", "-netdev", "user,id=n0,restrict=on", "-device", "virtio-net-pci,netdev=n0,id=nic0"],
  });
  t.teardown(() => qemu.kill());
  const qmp = new Qmp(qemu.channel("qmp"));
  await qmp.negotiate();
  t.equal(await qmp.status(), "prelaunch", "-S: not started yet");
  const resumed = qmp.nextEvent("RESUME", 10_000);
  await qmp.execute("cont");
  await resumed;
  t.equal(await qmp.status(), "running");
  const stopped = qmp.nextEvent("STOP", 10_000);
  await qmp.execute("stop");
  await stopped;
  t.equal(await qmp.status(), "paused", "stop pauses the VM");
  await qmp.execute("cont");
  // -no-reboot turns a reset into a shutdown unless set-action says otherwise.
  await qmp.execute("set-action", { reboot: "reset" });
  const reset = qmp.nextEvent("RESET", 10_000);
  await qmp.execute("system_reset");
  t.match(await reset, { event: "RESET" }, "system_reset resets");
  t.equal(await qmp.status(), "running", "and the VM runs on: no shutdown");
  await qmp.execute("set_link", { name: "nic0", up: false });
  await qmp.execute("set_link", { name: "nic0", up: true });
  await t.rejects(
    qmp.execute("set_link", { name: "no-such-nic", up: false }),
    QmpError,
    "an unknown NIC is QEMU's error",
  );
  await qmp.execute("quit");
  const exit = await qemu.exited;
  t.equal(exit.code, 0, "quit ends QEMU at once");
});
