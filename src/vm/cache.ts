// Where sockprobe keeps what it fetched or built once and reuses offline: kernels and their initramfs.
import { homedir } from "node:os";
import { join } from "node:path";

/** `$XDG_CACHE_HOME/sockprobe`, or `~/.cache/sockprobe`; `SOCKPROBE_CACHE` overrides both. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SOCKPROBE_CACHE) return env.SOCKPROBE_CACHE;
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), ".cache");
  return join(base, "sockprobe");
}

/** Where unpacked kernels live, one folder per release. */
export function kernelsDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheDir(env), "kernels");
}
