// The one place a backend is chosen: callers ask for a Lab and never name a class.
import type { Lab, LabOptions } from "./lab.js";
import { NetnsLab } from "./netns/netns.js";

/** How a lab is made, and on which backend. */
export interface CreateLabOptions extends LabOptions {
  /** "netns" (default): each host a network namespace on a bridge. */
  readonly backend?: "netns";
}

/** Builds a lab on the chosen backend (netns by default). */
export async function createLab(options: CreateLabOptions = {}): Promise<Lab> {
  const { backend = "netns", ...lab } = options;
  switch (backend) {
    case "netns":
      return NetnsLab.create(lab);
    default:
      throw new TypeError(`no lab backend ${JSON.stringify(backend)} in this build: it has netns`);
  }
}
