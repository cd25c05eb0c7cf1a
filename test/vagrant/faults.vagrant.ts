// The workstation flow: scenarios on vagrant/'s running machines, each fault given through the
// provider's own API and recorded as the command used; the machines are left running as found.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";
import { defaultVagrantDir, findMachines } from "../../src/lab/vagrant/machines.js";
import { runScenario } from "../../src/runner/run-scenario.js";
import { findScenario } from "../../src/scenarios/index.js";

t.setTimeout(60 * 60_000);

const main = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const dir = defaultVagrantDir();
const provider = (await findMachines(dir))[0]?.provider ?? "libvirt";
const tool = provider === "libvirt" ? /^virsh -c qemu:\/\/\/system / : /^VBoxManage /;

// Each scenario, and the provider commands its faults must show. keepalive's power-off also checks
// the writer's ETIMEDOUT on tcp_retries2's chain (its busy socket).
const CASES: ReadonlyArray<readonly [string, ReadonlyArray<readonly [string, RegExp]>]> = [
  [
    "keepalive",
    [["powerOff", provider === "libvirt" ? /^virsh -c qemu:\/\/\/system destroy \S+$/ : /controlvm \S+ poweroff$/]],
  ],
  ["peer-power-cycle", [["powerCycle", provider === "libvirt" ? /reset \S+/ : /controlvm \S+ reset/]]],
  [
    "peer-paused",
    [
      ["pause", provider === "libvirt" ? /suspend \S+$/ : /controlvm \S+ pause$/],
      ["resume", provider === "libvirt" ? /resume \S+$/ : /controlvm \S+ resume$/],
    ],
  ],
];

for (const [name, faults] of CASES) {
  t.test(`${name} on the Vagrant machines`, async (t) => {
    const r = await runScenario(findScenario(name), { backend: "vagrant", vagrantDir: dir, trace: true });
    t.equal(r.verdict, "pass", `${name}: ${r.reason ?? ""}`);
    for (const [fault, command] of faults) {
      const f = r.evidence.faults.find((e) => e.fault === fault);
      t.match(f?.command ?? "", tool, `${fault} through the provider`);
      t.match(f?.command ?? "", command, `${fault}: ${command.source}`);
    }
    t.ok(r.evidence.trace.available, "the guests' tracepoints, through their agents");
    const after = await findMachines(dir);
    t.same(
      after.map((m) => m.state),
      after.map(() => "running"),
      "the lab left every machine running",
    );
  });
}

t.test("a scenario that needs a machine the Vagrantfile lacks is skipped, saying which", async (t) => {
  const r = await runScenario(findScenario("peer-power-off"), { backend: "vagrant", vagrantDir: dir });
  t.equal(r.verdict, "skip");
  t.match(
    r.reason,
    /the vagrant backend cannot run it: it needs a host amy, and the Vagrantfile in .* has kang, kodos/,
  );
});

t.test("run --backend vagrant names the provider, the boxes and the guests' kernels", async (t) => {
  const out = mkdtempSync(join(tmpdir(), "sockprobe-test-vagrant-"));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const r = spawnSync(
    process.execPath,
    ["--import=tsx", main, "run", "--backend", "vagrant", "normal-teardown", "--json", join(out, "r.json")],
    { encoding: "utf8", timeout: 600_000 },
  );
  t.equal(r.status, 0, r.stderr);
  t.match(
    r.stderr,
    /^running 1 scenario on vagrant backend: kang and kodos \((libvirt|virtualbox), box \S+, Linux \S+\)/m,
  );
  const report = JSON.parse(
    (await import("node:fs")).readFileSync(join(out, "r.json"), "utf8"),
  ) as import("../../src/runner/report.js").Report;
  t.equal(report.backend, "vagrant");
  t.equal(report.vagrant?.provider, provider);
  t.same(
    report.vagrant?.machines.map((m) => m.name),
    ["kang", "kodos"],
  );
  t.not(report.kernel.release, "", "the guests' kernel");
  const bad = spawnSync(process.execPath, ["--import=tsx", main, "run", "--backend", "vagrant", "--vagrant-dir", out], {
    encoding: "utf8",
  });
  t.equal(bad.status, 2);
  t.match(bad.stderr, /no Vagrantfile in .*: give --vagrant-dir the folder with sockprobe's Vagrantfile/);
});
