// Signals the kernel generates for this process, from the signal:signal_generate tracepoint. An
// ignored signal (Node ignores SIGPIPE) leaves no other trace, yet the tracepoint still sees it.
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { tracefsStatus } from "../../src/evidence/tracepoints.js";

let counter = 0;

/** Records `sig` sent to this process; undefined, with the reason, where tracefs is unavailable. */
export function traceSignal(sig: number): { count(): number; close(): void } | { reason: string } {
  const status = tracefsStatus();
  if (!status.available || !status.root) return { reason: status.reason ?? "tracefs unavailable" };
  // Named as sockprobe's instances are, so that a later run sweeps it if this process is killed.
  const dir = `${status.root}/instances/sockprobe-${process.pid}-${900_000 + ++counter}`;
  mkdirSync(dir);
  const event = `${dir}/events/signal/signal_generate`;
  writeFileSync(`${event}/filter`, `sig == ${sig} && pid == ${process.pid}`);
  writeFileSync(`${event}/enable`, "1");
  return {
    count: () =>
      readFileSync(`${dir}/trace`, "utf8")
        .split("\n")
        .filter((l) => l.includes("signal_generate:")).length,
    close() {
      writeFileSync(`${event}/enable`, "0");
      rmdirSync(dir);
    },
  };
}
