// Per-host sysctls: opened inside the host's namespace (native openAt), then read and written from here.
import { closeSync, constants, readFileSync, writeSync } from "node:fs";
import { SysError } from "../sys/errors.js";
import { native } from "../sys/native.js";
import type { Netns } from "../sys/socket.js";

/** A sysctl the kernel does not have, or a value it refused. */
export class SysctlError extends Error {
  constructor(
    message: string,
    readonly key: string,
    readonly value?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
Object.defineProperty(SysctlError.prototype, "name", { value: "SysctlError" });

/** /proc/sys path of a `net.*` key (dots or slashes, as sysctl(8) takes them). */
export function sysctlPath(key: string): string {
  if (typeof key !== "string" || !/^net[./][A-Za-z0-9_.\-/]+$/.test(key) || key.includes("..")) {
    throw new SysctlError(
      `invalid sysctl key ${JSON.stringify(key)}: a host takes net.* keys only, e.g. net.ipv4.tcp_retries2`,
      String(key),
    );
  }
  return `/proc/sys/${key.includes("/") ? key : key.replaceAll(".", "/")}`;
}

function openIn(ns: Netns, key: string, flags: number, value?: string): number {
  const path = sysctlPath(key);
  const fd = native.openAt(ns.fd, path, flags);
  if (fd >= 0) return fd;
  const cause = new SysError(fd, "open");
  if (cause.code === "ENOENT") {
    throw new SysctlError(`unknown sysctl ${key}: this kernel has no ${path} in a network namespace`, key, value, {
      cause,
    });
  }
  throw new SysctlError(`cannot open sysctl ${key} (${cause.code}): run as root`, key, value, { cause });
}

/** The value as the kernel prints it, whitespace folded ("4096 131072 6291456"). */
export function readSysctl(ns: Netns, key: string): string {
  const fd = openIn(ns, key, constants.O_RDONLY);
  try {
    return readFileSync(fd, "utf8").trim().split(/\s+/).join(" ");
  } finally {
    closeSync(fd);
  }
}

/** Writes a value and returns what the kernel then reports, so a clamped or normalized value shows. */
export function writeSysctl(ns: Netns, key: string, value: string | number): string {
  const text = String(value);
  if (!/^[\x20-\x7e]*$/.test(text) || text.trim() === "") {
    throw new SysctlError(`invalid value ${JSON.stringify(text)} for sysctl ${key}: give printable text`, key, text);
  }
  const fd = openIn(ns, key, constants.O_WRONLY, text);
  try {
    writeSync(fd, `${text}\n`);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? "error";
    throw new SysctlError(
      `the kernel refused ${key} = ${text} (${code}); see its range in the kernel's ip-sysctl documentation`,
      key,
      text,
      {
        cause,
      },
    );
  } finally {
    closeSync(fd);
  }
  return readSysctl(ns, key);
}
