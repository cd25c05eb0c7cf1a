// Running a TypeScript entry as an unprivileged user, to test what sockprobe says without root.
import { type SpawnSyncReturns, spawnSync } from "node:child_process";

/** Runs `entry args...` under tsx as uid/gid 65534 with no capabilities, and returns what it did. */
export function runAsNobody(entry: string, args: readonly string[], timeoutMs = 120_000): SpawnSyncReturns<string> {
  return spawnSync(
    "setpriv",
    [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      "--inh-caps=-all",
      process.execPath,
      "--import=tsx",
      entry,
      ...args,
    ],
    { encoding: "utf8", timeout: timeoutMs, env: { ...process.env, HOME: "/tmp" } },
  );
}
