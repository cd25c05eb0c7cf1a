// The sysctls `sockprobe tune` reads: a file as `sysctl -p` takes it, or the values in force in the
// network namespace sockprobe runs in (read only: tune never writes the machine's sysctls).
import { readFileSync } from "node:fs";
import { sysctlPath } from "../lab/sysctl.js";
import { type KernelFacts, TUNED_KEYS, tunedKey } from "./model.js";

/** One `key = value` line of a sysctl file. */
export interface SysctlLine {
  /** Canonical key: dotted, unless a component holds a dot (an interface like eth0.100), then slashed. */
  readonly key: string;
  readonly value: string;
  /** 1-based line number. */
  readonly line: number;
  /** The line began with `-`: sysctl -p ignores errors setting it (an unknown key, for example). */
  readonly ignoreErrors: boolean;
}

/** A parsed sysctl file. */
export interface SysctlFile {
  readonly path: string;
  readonly lines: readonly SysctlLine[];
  /** Key to value, the last line winning, as sysctl -p applies them in order. */
  readonly values: Readonly<Record<string, string>>;
}

/** One thing wrong with one line. */
export interface LineProblem {
  readonly line: number;
  readonly message: string;
}

/** A sysctl file tune cannot use: every invalid line, each as "FILE:LINE: what is wrong". */
export class SysctlFileError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly LineProblem[],
    options?: ErrorOptions,
  ) {
    super(problems.map((p) => `${file}${p.line > 0 ? `:${p.line}` : ""}: ${p.message}`).join("\n"), options);
  }
}
Object.defineProperty(SysctlFileError.prototype, "name", { value: "SysctlFileError" });

const KEY_CHARS = /^[A-Za-z0-9_\-./]+$/;
const WHOLE = /^-?\d+$/;
const NUMBERS = /^-?\d+(\s+-?\d+)*$/;

/** sysctl(8)'s two spellings of a key, folded to one: slashes become dots unless a component holds a dot. */
export function canonicalKey(key: string): string {
  if (!key.includes("/")) return key;
  const parts = key.split("/");
  return parts.some((p) => p.includes(".")) ? key : parts.join(".");
}

/** The kernel's value of a key in the namespace sockprobe runs in, whitespace folded; undefined if it has none. */
export function readProcSys(key: string): string | undefined {
  try {
    return readFileSync(sysctlPath(key), "utf8").trim().split(/\s+/).join(" ");
  } catch {
    return undefined;
  }
}

// What is wrong with a value for this key, if anything. `current` is the kernel's value of a key
// tune does not interpret: numbers there mean the key takes numbers.
function valueProblem(key: string, value: string, current: string | undefined): string | undefined {
  const known = tunedKey(key);
  const shown = JSON.stringify(value);
  if (known?.kind === "int") {
    if (!WHOLE.test(value)) return `${key} needs a whole number, got ${shown}`;
    if (Number(value) < 0) return `${key} needs a whole number >= 0, got ${shown}`;
    return undefined;
  }
  if (known?.kind === "range") {
    const m = /^(\d+)\s+(\d+)$/.exec(value);
    if (!m) return `${key} needs two whole numbers (low high), got ${shown}`;
    if (Number(m[1]) > Number(m[2])) return `${key} needs low <= high, got ${shown}`;
    return undefined;
  }
  if (current !== undefined && NUMBERS.test(current) && !NUMBERS.test(value))
    return `${key} needs a number (this kernel has ${JSON.stringify(current)}), got ${shown}`;
  return undefined;
}

/**
 * Parses sysctl.conf text: `key = value` per line, whitespace around `=` ignored, keys with dots or
 * slashes, `#` and `;` comments and blank lines skipped, a leading `-` meaning "ignore errors setting
 * it". tune takes `net.*` keys only. Throws SysctlFileError listing every invalid line.
 */
export function parseSysctlText(
  text: string,
  file: string,
  options: { kernelValue?: (key: string) => string | undefined } = {},
): SysctlFile {
  const kernelValue = options.kernelValue ?? readProcSys;
  const lines: SysctlLine[] = [];
  const problems: LineProblem[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = i + 1;
    let s = raw.replace(/\r$/, "").trim();
    if (s === "" || s.startsWith("#") || s.startsWith(";")) return;
    const ignoreErrors = s.startsWith("-");
    if (ignoreErrors) s = s.slice(1).trimStart();
    const eq = s.indexOf("=");
    if (eq < 0) {
      problems.push({ line, message: `no "=" in ${JSON.stringify(s)}: write key = value` });
      return;
    }
    const rawKey = s.slice(0, eq).trim();
    const value = s.slice(eq + 1).trim();
    if (rawKey === "") {
      problems.push({ line, message: `no key before "=" in ${JSON.stringify(s)}` });
      return;
    }
    const first = rawKey.split(/[./]/)[0];
    if (first !== "net") {
      problems.push({
        line,
        message: `key ${rawKey} is outside net.*: tune reads network sysctls only (net.ipv4.*, net.ipv6.*, net.core.*)`,
      });
      return;
    }
    if (!KEY_CHARS.test(rawKey) || rawKey.split(/[./]/).some((c) => c === "")) {
      problems.push({
        line,
        message: `invalid key ${JSON.stringify(rawKey)}: letters, digits, _ and - between dots or slashes`,
      });
      return;
    }
    const key = canonicalKey(rawKey);
    if (value === "") {
      problems.push({ line, message: `empty value for ${key}` });
      return;
    }
    const wrong = valueProblem(key, value, tunedKey(key) ? undefined : kernelValue(key));
    if (wrong) {
      problems.push({ line, message: wrong });
      return;
    }
    lines.push({ key, value: value.split(/\s+/).join(" "), line, ignoreErrors });
  });
  if (problems.length > 0) throw new SysctlFileError(file, problems);
  return { path: file, lines, values: Object.fromEntries(lines.map((l) => [l.key, l.value])) };
}

/** Reads and parses a sysctl file; an unreadable file is a SysctlFileError (line 0) naming the errno. */
export function readSysctlFile(
  path: string,
  options: { kernelValue?: (key: string) => string | undefined } = {},
): SysctlFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? "error";
    throw new SysctlFileError(path, [{ line: 0, message: `cannot read the file (${code})` }], { cause });
  }
  return parseSysctlText(text, path, options);
}

/** The sysctls tune interprets, as they are in force in this process's network namespace. */
export function readSysctlsInForce(read: (key: string) => string | undefined = readProcSys): Record<string, string> {
  const out: Record<string, string> = {};
  for (const { key } of TUNED_KEYS) {
    const v = read(key);
    if (v !== undefined) out[key] = v;
  }
  return out;
}

/** What tune needs to know about this kernel, read from this process's namespace. */
export function kernelFacts(read: (key: string) => string | undefined = readProcSys): KernelFacts {
  const ehash = Number(read("net.ipv4.tcp_ehash_entries"));
  return {
    has: (key) => read(key) !== undefined,
    ...(Number.isFinite(ehash) && ehash !== 0 ? { ehashEntries: Math.abs(ehash) } : {}),
  };
}
