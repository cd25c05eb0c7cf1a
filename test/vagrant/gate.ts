// npm test's last step: the Vagrant suites against vagrant/'s machines when they are up (after
// `cd vagrant && vagrant up`), else one line saying they did not run and how to run them.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defaultVagrantDir, findMachines, machinesCreated } from "../../src/lab/vagrant/machines.js";
import { which } from "../../src/proc/tools.js";

const HOW = "cd vagrant && vagrant up && cd .. && npm test (README: the workstation flow)";
const dir = defaultVagrantDir();

async function main(): Promise<number> {
  if (!which("vagrant") || !machinesCreated(dir)) {
    console.log(`vagrant suites did not run: no machine of vagrant/ is up; to run them: ${HOW}`);
    return 0;
  }
  const machines = await findMachines(dir);
  const down = machines.filter((m) => m.state !== "running");
  if (machines.length === 0 || down.length > 0) {
    const states = machines.map((m) => `${m.name} ${m.state}`).join(", ") || "none";
    console.log(`vagrant suites did not run: vagrant/'s machines are not all running (${states}); to run them: ${HOW}`);
    return 0;
  }
  const here = fileURLToPath(new URL(".", import.meta.url));
  const files = readdirSync(here)
    .filter((f) => f.endsWith(".vagrant.ts"))
    .map((f) => `test/vagrant/${f}`);
  console.log(`vagrant suites: ${machines.map((m) => m.name).join(" and ")} on ${machines[0]?.provider}`);
  const r = spawnSync("npx", ["tap", "--jobs", "1", "--timeout", "3600", ...files], { stdio: "inherit" });
  return r.status ?? 1;
}

process.exitCode = await main();
