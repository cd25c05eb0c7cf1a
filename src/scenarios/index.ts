// The puzzler library: every scenario, in the order of the seeds.

import { scenario as abortiveClose } from "./abortive-close.js";
import { scenario as acceptQueueOverflow } from "./accept-queue-overflow.js";
import { scenario as dataDiesUnaccepted } from "./data-dies-unaccepted.js";
import { scenario as halfCloseRequestResponse } from "./half-close-request-response.js";
import { scenario as halfOpenFinWait2 } from "./half-open-fin-wait2.js";
import { scenario as keepalive } from "./keepalive.js";
import { scenario as normalTeardown } from "./normal-teardown.js";
import { scenario as peerPanic } from "./peer-panic.js";
import { scenario as peerPaused } from "./peer-paused.js";
import { scenario as peerPowerCycle } from "./peer-power-cycle.js";
import { scenario as peerPowerOff } from "./peer-power-off.js";
import { scenario as polloutVsWriteBuffer } from "./pollout-vs-write-buffer.js";
import type { Scenario } from "./scenario.js";
import { scenario as simultaneousShutdown } from "./simultaneous-shutdown.js";
import { scenario as timeWaitSymmetry } from "./time-wait-symmetry.js";
import { scenario as unpluggedCable } from "./unplugged-cable.js";
import { scenario as whatIsReadable } from "./what-is-readable.js";

/** Every scenario `sockprobe run` knows, in the order of the seeds. */
export const SCENARIOS: readonly Scenario[] = [
  normalTeardown,
  peerPowerCycle,
  peerPowerOff,
  halfOpenFinWait2,
  keepalive,
  halfCloseRequestResponse,
  simultaneousShutdown,
  abortiveClose,
  dataDiesUnaccepted,
  acceptQueueOverflow,
  polloutVsWriteBuffer,
  timeWaitSymmetry,
  whatIsReadable,
  unpluggedCable,
  peerPanic,
  peerPaused,
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
