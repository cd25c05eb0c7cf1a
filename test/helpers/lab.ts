// A lab per test, closed when the test ends.
import type { Test } from "tap";
import { type CreateLabOptions, createLab } from "../../src/lab/create.js";
import type { Lab, LabOptions } from "../../src/lab/lab.js";
import { NetnsLab } from "../../src/lab/netns/netns.js";

/** A lab on the default backend that the test's teardown closes. */
export async function withLab(t: Test, options: CreateLabOptions = {}): Promise<Lab> {
  const lab = await createLab(options);
  t.teardown(() => lab.close());
  return lab;
}

/** A netns lab, for tests that look at what only that backend has (its switch namespace, its lab id). */
export async function withNetnsLab(t: Test, options: LabOptions = {}): Promise<NetnsLab> {
  const lab = await NetnsLab.create(options);
  t.teardown(() => lab.close());
  return lab;
}
