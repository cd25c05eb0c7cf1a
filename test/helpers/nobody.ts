// Running a TypeScript entry as an unprivileged user, to test what sockprobe says without root.
//
// The checkout may live where nobody can reach it (cloned into /root, mode 700). Changing the
// machine's permissions is not ours to do, and keeping a capability such as CAP_DAC_READ_SEARCH
// would make the child privileged, and lose it anyway inside the user namespace sockprobe re-runs
// itself in. So the child gets a private mount namespace of its own in which the checkout is also
// bound at a path under the temporary directory; it runs as uid/gid 65534 with no capabilities from
// there. Only the path differs from a user who cloned it somewhere readable; the mount goes when the
// child's namespace does.
import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import { mkdtempSync, rmdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const CHECKOUT = fileURLToPath(new URL("../..", import.meta.url));

/** Runs `entry args...` (a file of this checkout) under tsx as uid/gid 65534 with no capabilities. */
export function runAsNobody(entry: string, args: readonly string[], timeoutMs = 120_000): SpawnSyncReturns<string> {
  const inside = relative(CHECKOUT, entry);
  if (inside.startsWith("..")) throw new Error(`runAsNobody runs files of the checkout ${CHECKOUT}, not ${entry}`);
  // The bind mount opens the way to the checkout, not its files: those must be readable by others.
  if ((statSync(entry).mode & 0o004) === 0)
    throw new Error(`${entry} is not readable by others (checked out with umask 077?): nobody cannot run it`);
  const view = mkdtempSync(join(tmpdir(), "sockprobe-nobody-"));
  try {
    return spawnSync(
      "unshare",
      [
        "--mount",
        "--propagation=private",
        "sh",
        "-c",
        // tsx is found from the working directory, so the child starts in the view. tap's
        // NODE_OPTIONS (which its spawn hook puts back into any env) name its hooks by their
        // path in the checkout: a user runs sockprobe without them.
        'mount --bind "$1" "$2" && cd "$2" && shift 2 && unset NODE_OPTIONS && exec "$@"',
        "sh",
        CHECKOUT,
        view,
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        process.execPath,
        "--import=tsx",
        join(view, inside),
        ...args,
      ],
      { encoding: "utf8", timeout: timeoutMs, env: { ...process.env, HOME: "/tmp" } },
    );
  } finally {
    rmdirSync(view); // empty here: the mount lived only in the child's namespace
  }
}
