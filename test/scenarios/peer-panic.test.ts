// peer-panic on netns: a panic needs a kernel of the host's own, so the scenario is skipped, saying
// so and what to use instead; test/vm/qemu-backend.vm.ts runs it on VMs.
import t from "tap";
import { runScenario } from "../../src/runner/run-scenario.js";
import { scenario } from "../../src/scenarios/peer-panic.js";

const r = await runScenario(scenario, { trace: true });
t.equal(r.verdict, "skip");
t.match(r.reason, /the netns backend cannot give crash: .*--backend qemu/);
t.same(r.checks, [], "nothing ran");
