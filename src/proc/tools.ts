// The programs the lab runs, checked once with a message that says how to get each.
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/** Each program the netns backend needs, with the Debian package that has it. */
export const REQUIRED_TOOLS: Readonly<Record<string, string>> = {
  ip: "iproute2",
  ss: "iproute2",
  nft: "nftables",
  tcpdump: "tcpdump",
  nsenter: "util-linux",
  setpriv: "util-linux",
};

/** The full path of a program on PATH (and the sbin directories, which a non-login PATH may lack). */
export function which(program: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/sbin", "/usr/bin", "/bin"];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

/** Throws one error naming every missing program and the apt-get line that installs them. */
export function requireTools(programs: readonly string[] = Object.keys(REQUIRED_TOOLS)): void {
  const missing = programs.filter((p) => which(p) === undefined);
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((p) => REQUIRED_TOOLS[p] ?? p))];
  throw new Error(
    `sockprobe needs ${missing.map((p) => `\`${p}\``).join(", ")}, not found on PATH: install with \`apt-get install -y ${packages.join(" ")}\``,
  );
}
