// The puzzler library: every scenario, in the order of the seeds.
import { scenario as halfOpenFinWait2 } from "./half-open-fin-wait2.js";
import { scenario as keepalive } from "./keepalive.js";
import { scenario as normalTeardown } from "./normal-teardown.js";
import { scenario as peerPowerCycle } from "./peer-power-cycle.js";
import { scenario as peerPowerOff } from "./peer-power-off.js";
import type { Scenario } from "./scenario.js";
import { scenario as unpluggedCable } from "./unplugged-cable.js";

/** Every scenario `sockprobe run` knows, in the order of the seeds. */
export const SCENARIOS: readonly Scenario[] = [
  normalTeardown,
  peerPowerCycle,
  peerPowerOff,
  halfOpenFinWait2,
  keepalive,
  unpluggedCable,
];

/** A scenario by name, or an error listing the names there are. */
export function findScenario(name: string): Scenario {
  const s = SCENARIOS.find((x) => x.name === name);
  if (!s) {
    throw new UnknownScenarioError(
      `unknown scenario ${JSON.stringify(name)}; known: ${SCENARIOS.map((x) => x.name).join(", ")} (see \`sockprobe list\`)`,
    );
  }
  return s;
}

/** A name that no scenario has. */
export class UnknownScenarioError extends Error {}
Object.defineProperty(UnknownScenarioError.prototype, "name", { value: "UnknownScenarioError" });
