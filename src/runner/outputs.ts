// Where a run writes: every output path is checked before a lab is built, so that a run that could
// only fail at its end is refused at once, naming the path and what is wrong with it. Directories
// are made here, one component at a time: Node's recursive mkdir spins for ever on a path under
// /proc, whose mkdir answers ENOENT for a missing name although the parent exists.
import {
  accessSync,
  closeSync,
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmdirSync,
  rmSync,
  type Stats,
  statSync,
  unlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";

/** An output path that cannot be used; the message names the option, the path and what is wrong. */
export class OutputPathError extends Error {}
Object.defineProperty(OutputPathError.prototype, "name", { value: "OutputPathError" });

// "ENOENT (no such file or directory)", without the syscall and path Node appends.
function why(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (!err.code) return err.message;
  const text = err.message.replace(/^[A-Z]+: /, "").replace(/, \w+ '.*$/s, "");
  return `${err.code} (${text})`;
}

// What is at `path`, or undefined when nothing is (ENOENT, or ENOTDIR: a file stands in the way).
function lookUp(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw new Error(`cannot look at ${path}: ${why(e)}`, { cause: e });
  }
}

// ENOENT from mkdir or open in an existing directory: a filesystem such as /proc that makes no entries.
function noEntries(e: unknown, parent?: string): string {
  if ((e as NodeJS.ErrnoException).code !== "ENOENT") return why(e);
  return `${why(e)}${parent ? `, although ${parent} exists` : ""}: its filesystem takes no new entries`;
}

/** mkdir -p that ends: each missing component made once, an error (never a loop) for one that cannot be. */
export function makeDirectory(dir: string): string {
  const target = resolve(dir);
  const missing: string[] = [];
  for (let p = target; ; p = dirname(p)) {
    const st = lookUp(p);
    if (st) {
      if (!st.isDirectory()) throw new Error(`${p} is ${st.isFile() ? "a file, " : ""}not a directory`);
      break;
    }
    missing.unshift(p);
    if (dirname(p) === p) break;
  }
  for (const p of missing) {
    try {
      mkdirSync(p);
    } catch (e) {
      // Made meanwhile by someone else is fine; anything else in the way is not.
      if ((e as NodeJS.ErrnoException).code === "EEXIST" && lookUp(p)?.isDirectory()) continue;
      throw new Error(`cannot create directory ${p}: ${noEntries(e, dirname(p))}`, { cause: e });
    }
  }
  return target;
}

/** Makes `dir` if needed and checks that directories and files can be made in it; returns it absolute. */
export function checkOutputDirectory(option: string, dir: string): string {
  if (dir === "") throw new OutputPathError(`${option} needs a directory name`);
  let target: string;
  try {
    target = makeDirectory(dir);
  } catch (e) {
    throw new OutputPathError(`${option} ${dir}: ${(e as Error).message}`, { cause: e });
  }
  try {
    rmdirSync(mkdtempSync(join(target, ".sockprobe-probe-")));
  } catch (e) {
    throw new OutputPathError(`${option} ${dir}: cannot create directories in it: ${noEntries(e)}`, {
      cause: e,
    });
  }
  return target;
}

/** Checks that `file` can be written: an existing file opened for writing (not truncated), a new one made and removed. */
export function checkOutputFile(option: string, file: string): void {
  if (file === "") throw new OutputPathError(`${option} needs a file name`);
  const fail = (what: string, cause?: unknown) =>
    new OutputPathError(`${option} ${file}: ${what}`, cause === undefined ? {} : { cause });
  let st: Stats | undefined;
  try {
    st = lookUp(file);
  } catch (e) {
    throw fail((e as Error).message, e);
  }
  if (st?.isDirectory()) throw fail("is a directory; name a file to write");
  if (st) {
    try {
      // A file is opened for writing (not truncated); a FIFO or a terminal is not opened, which
      // could wait for a reader: its permissions say.
      if (st.isFile()) closeSync(openSync(file, constants.O_WRONLY));
      else accessSync(file, constants.W_OK);
    } catch (e) {
      throw fail(`cannot be written: ${why(e)}`, e);
    }
    return;
  }
  const parent = dirname(resolve(file));
  const pst = lookUp(parent);
  if (!pst) throw fail(`directory ${parent} does not exist`);
  if (!pst.isDirectory()) throw fail(`${parent} is not a directory`);
  try {
    closeSync(openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o666));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return; // made meanwhile: it exists, as it will
    throw fail(`cannot create it: ${noEntries(e, parent)}`, e);
  }
  unlinkSync(file);
}

/** Checks that no two options name the same file. */
export function checkDistinct(paths: ReadonlyArray<readonly [option: string, path: string | undefined]>): void {
  const seen = new Map<string, string>();
  for (const [option, path] of paths) {
    if (path === undefined) continue;
    const other = seen.get(resolve(path));
    if (other) throw new OutputPathError(`${other} and ${option} both name ${path}: each needs a file of its own`);
    seen.set(resolve(path), option);
  }
}

/** A directory of this process's own under the temporary directory, removed when the process exits. */
export function privateDirectory(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  // 'exit' runs on a normal end and on process.exit from a signal handler; a kill -9 leaves it in /tmp.
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
