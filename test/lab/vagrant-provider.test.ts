// The provider adapters' command lines: libvirt's run in the Vagrant suites; VirtualBox's cannot run
// on these machines (Debian has no VirtualBox), so its lines are checked here against its manual.
import t from "tap";
import { adapterFor, LIBVIRT, parseState, VIRTUALBOX } from "../../src/lab/vagrant/provider.js";

const ID = "0b5f9a0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
const MAC = "52:54:00:aa:bb:cc";

t.test("libvirt: virsh on the system connection, never vagrant halt or suspend", async (t) => {
  const v = ["virsh", "-c", "qemu:///system"];
  t.same(LIBVIRT.powerOff(ID), [...v, "destroy", ID]);
  t.same(LIBVIRT.start(ID), [...v, "start", ID]);
  t.same(LIBVIRT.reset(ID), [...v, "reset", ID]);
  t.same(LIBVIRT.pause(ID), [...v, "suspend", ID]);
  t.same(LIBVIRT.resume(ID), [...v, "resume", ID]);
  t.same(LIBVIRT.setLink(ID, MAC, 2, false), [...v, "domif-setlink", ID, MAC, "down"]);
  t.same(LIBVIRT.setLink(ID, MAC, 2, true), [...v, "domif-setlink", ID, MAC, "up"]);
  t.equal(parseState("libvirt", "paused\n\n"), "paused");
  t.equal(parseState("libvirt", "shut off\n"), "off");
  t.equal(parseState("libvirt", "running\n"), "running");
});

t.test("VirtualBox: VBoxManage controlvm, never a save-state", async (t) => {
  t.same(VIRTUALBOX.powerOff(ID), ["VBoxManage", "controlvm", ID, "poweroff"]);
  t.same(VIRTUALBOX.start(ID), ["VBoxManage", "startvm", ID, "--type", "headless"]);
  t.same(VIRTUALBOX.reset(ID), ["VBoxManage", "controlvm", ID, "reset"]);
  t.same(VIRTUALBOX.pause(ID), ["VBoxManage", "controlvm", ID, "pause"]);
  t.same(VIRTUALBOX.resume(ID), ["VBoxManage", "controlvm", ID, "resume"]);
  t.same(VIRTUALBOX.setLink(ID, MAC, 2, false), ["VBoxManage", "controlvm", ID, "setlinkstate2", "off"]);
  t.equal(parseState("virtualbox", 'name="kang"\nVMState="paused"\n'), "paused");
  t.equal(parseState("virtualbox", 'VMState="poweroff"\n'), "off");
  for (const a of [LIBVIRT, VIRTUALBOX]) {
    const all = [a.powerOff(ID), a.reset(ID), a.pause(ID), a.resume(ID), a.start(ID)].flat().join(" ");
    t.notMatch(all, /savestate|managedsave|halt|shutdown/, `${a.provider}: nothing graceful, nothing saved`);
  }
});

t.test("the adapter follows vagrant status's provider name", async (t) => {
  t.equal(adapterFor("libvirt"), LIBVIRT);
  t.equal(adapterFor("virtualbox"), VIRTUALBOX);
  t.equal(adapterFor("docker"), undefined);
});
