// A lab per test, closed when the test ends.
import type { Test } from "tap";
import { type LabOptions, NetnsLab } from "../../src/lab/netns.js";

/** A lab that the test's teardown closes. */
export async function withLab(t: Test, options: LabOptions = {}): Promise<NetnsLab> {
  const lab = await NetnsLab.create(options);
  t.teardown(() => lab.close());
  return lab;
}
