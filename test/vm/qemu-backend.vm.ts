// --backend qemu: every host a VM on the lab's switch, faults through QMP. The scenarios whose point is
// the hypervisor's hand run on real VMs under the CI's accelerator and must reach their verdicts,
// with the hypervisor's commands in the report; a host that cannot boot is a clear error; a kill -9
// mid-run leaves no QEMU and no namespace.
import { spawn, spawnSync } from "node:child_process";
import {
  copyFileSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";
import { createLab } from "../../src/lab/create.js";
import { runScenario } from "../../src/runner/run-scenario.js";
import { findScenario } from "../../src/scenarios/index.js";
import { resolveKernel } from "../../src/vm/kernels.js";
import { alive, comm, descendants, heldNamespaces } from "../helpers/leaks.js";
import { waitUntil } from "../helpers/wait.js";

t.setTimeout(30 * 60_000);

const main = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));

// Each scenario, and the hypervisor commands its faults must show.
const CASES: ReadonlyArray<readonly [string, ReadonlyArray<readonly [string, RegExp]>]> = [
  ["peer-power-off", [["powerOff", /^QMP quit$/]]],
  [
    "peer-power-cycle",
    [
      ["powerCycle", /QMP set-action reboot=reset; stop; system_reset; 1000 ms later cont/],
      ["boot", /agent started/],
    ],
  ],
  ["peer-panic", [["crash", /sysrq-trigger/]]],
  [
    "peer-paused",
    [
      ["pause", /^QMP stop$/],
      ["resume", /^QMP cont$/],
    ],
  ],
  ["keepalive", [["powerOff", /^QMP quit$/]]],
  [
    "unplugged-cable",
    [
      ["unplug", /^QMP set_link name=nic0 up=false$/],
      ["replug", /^QMP set_link name=nic0 up=true$/],
    ],
  ],
];

t.test("the hypervisor's faults reach their verdicts on VM hosts", async (t) => {
  const kernel = await resolveKernel("6.12");
  const dir = mkdtempSync(join(tmpdir(), "sockprobe-test-qemu-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, faults] of CASES) {
    await t.test(name, async (t) => {
      const r = await runScenario(findScenario(name), {
        backend: "qemu",
        qemu: { kernel },
        trace: true,
        captureDir: dir,
      });
      t.equal(r.verdict, "pass", `${name}: ${r.reason ?? ""}`);
      for (const [fault, command] of faults) {
        const f = r.evidence.faults.find((e) => e.fault === fault);
        t.match(f?.command ?? "", command, `${fault} given by ${command.source}`);
      }
      t.ok(r.evidence.packets.length > 0, "the switch captured the VMs' packets");
      t.ok(r.evidence.trace.available, "the guests' tracepoints were read through their agents");
      t.ok(
        r.evidence.states.some((e) => e.event === "inet_sock_set_state" && e.newstate === "ESTABLISHED"),
        "the guests' state changes are on the lab's clock",
      );
      const handshake = r.evidence.states.find((e) => e.newstate === "ESTABLISHED");
      const syn = r.evidence.packets.find((p) => p.kind === "tcp" && p.flags === "S");
      if (handshake && syn)
        t.ok(
          Math.abs(handshake.atUs - syn.atUs) < 1_000_000,
          "a guest's tracepoint and the switch's capture of the same handshake lie within a second on one clock",
        );
      if (name === "peer-panic") {
        t.match(
          r.evidence.faults.find((e) => e.fault === "crash")?.detail ?? "",
          /Kernel panic - not syncing/,
          "the guest's console shows the panic",
        );
      }
    });
  }
});

t.test("a host VM that cannot boot is one line and exit 2, and leaves no QEMU", async (t) => {
  const kernel = await resolveKernel("6.12");
  const dir = mkdtempSync(join(tmpdir(), "sockprobe-test-badimage-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // A bzImage cut in half: its header still names the release, its payload cannot decompress.
  const half = join(dir, "vmlinuz-half");
  copyFileSync(kernel.image, half);
  const size = statSync(half).size;
  writeFileSync(half, readFileSync(half).subarray(0, Math.floor(size / 2)));
  const r = spawnSync(
    process.execPath,
    ["--import=tsx", main, "run", "--backend", "qemu", "--kernel", half, "normal-teardown"],
    { encoding: "utf8", timeout: 400_000 },
  );
  t.equal(r.status, 2, r.stderr);
  t.match(r.stderr, /did not boot|was not ready/, "says the image did not boot");
  t.notMatch(r.stderr, /\n\s+at /, "no stack trace");
  const unknown = spawnSync(process.execPath, ["--import=tsx", main, "run", "--backend", "xen"], {
    encoding: "utf8",
  });
  t.equal(unknown.status, 2);
  t.match(unknown.stderr, /unknown backend "xen": use netns \(the default\), qemu or vagrant/);
});

t.test("a lab closed while its VMs boot kills them before close returns", async (t) => {
  const kernel = await resolveKernel("6.12");
  const before = new Set(descendants(process.pid));
  const ours = () => descendants(process.pid).filter((p) => !before.has(p) && comm(p).startsWith("qemu"));
  // Closed during QEMU's start, then during the guest's boot (before its agent's hello).
  for (const delayMs of [200, 3000]) {
    const lab = await createLab({ backend: "qemu", name: "closeboot", qemu: { kernel } });
    const booting = Promise.allSettled([lab.addHost("kang"), lab.addHost("kodos")]);
    await new Promise((r) => setTimeout(r, delayMs));
    await lab.close();
    t.same(ours(), [], `no QEMU once close returned (closed ${delayMs} ms in)`);
    for (const s of await booting) t.equal(s.status, "rejected", `the boot says it was cut short (${delayMs} ms)`);
    t.same(ours(), [], "nor after the boots gave up");
  }
});

t.test("kill -9 of a qemu-backend run mid-scenario leaves no QEMU and no namespace", async (t) => {
  const log = join(mkdtempSync(join(tmpdir(), "sockprobe-test-kill-")), "stderr");
  t.teardown(() => rmSync(join(log, ".."), { recursive: true, force: true }));
  const child = spawn(
    process.execPath,
    ["--import=tsx", main, "run", "--backend", "qemu", "--kernel", "6.12", "peer-paused"],
    { stdio: ["ignore", "ignore", openSync(log, "w")] },
  );
  const pid = child.pid as number;
  // Both hosts' QEMU running in the lab's switch namespace (the kernel's probe boot runs in ours).
  const home = readlinkSync("/proc/self/ns/net");
  const netnsOf = (p: number) => {
    try {
      return readlinkSync(`/proc/${p}/ns/net`);
    } catch {
      return home;
    }
  };
  const qemu = await waitUntil(
    "two host VMs",
    () => descendants(pid).filter((p) => comm(p).startsWith("qemu-system") && netnsOf(p) !== home),
    (q) => q.length === 2,
    300_000,
    50,
  );
  // The switch namespace: where QEMU runs, so that its taps are made there.
  const switchNs = [...new Set(qemu.map(netnsOf))];
  t.equal(switchNs.length, 1, "both VMs' QEMU run in one namespace, the lab's own");
  const held = switchNs;
  child.kill("SIGKILL");
  await waitUntil(
    "QEMU gone",
    () => qemu.filter(alive),
    (left) => left.length === 0,
    10_000,
    20,
  );
  t.pass("every host VM died with the run");
  const stillHeld = heldNamespaces();
  t.same(
    held.filter((ns) => stillHeld.has(ns)),
    [],
    "no process holds the run's switch namespace (its taps and bridge went with it)",
  );
});
