// A lab per test, closed when the test ends; and bounded waits on conditions.
import type { Test } from "tap";
import { type LabOptions, NetnsLab } from "../../src/lab/netns.js";

/** A lab that the test's teardown closes. */
export async function withLab(t: Test, options: LabOptions = {}): Promise<NetnsLab> {
  const lab = await NetnsLab.create(options);
  t.teardown(() => lab.close());
  return lab;
}

/** Polls `read` until `done` holds, or fails naming what was awaited and the last value. */
export async function waitUntil<T>(
  what: string,
  read: () => Promise<T> | T,
  done: (v: T) => boolean,
  timeoutMs = 3000,
  intervalMs = 5,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms; last ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
