// Running programs, in a network namespace or in ours. Every child gets PR_SET_PDEATHSIG=KILL
// (setpriv), so a crash or kill -9 of sockprobe takes its children down too: nothing of ours
// outlives the run. Below lab/, vm/ and evidence/, which all spawn programs.
import { type ChildProcess, spawn } from "node:child_process";

/** Where and how a command runs. */
export interface ExecOptions {
  /** Path of the network namespace to enter (a Netns path such as /proc/PID/fd/N); none runs in ours. */
  readonly netns?: string;
  /** Bytes for standard input. */
  readonly input?: string;
  /** Kill the command after this long (default 30 s). */
  readonly timeoutMs?: number;
  /** Resolve even when the command fails, instead of throwing. */
  readonly allowFail?: boolean;
  /** The working directory (default: ours). */
  readonly cwd?: string;
}

/** A finished command. */
export interface ExecResult {
  readonly argv: readonly string[];
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A command that failed, with what it printed. */
export class CommandError extends Error {
  constructor(
    readonly result: ExecResult,
    hint?: string,
  ) {
    const how = result.signal ? `was killed by ${result.signal}` : `exited with ${result.code}`;
    const said = result.stderr.trim() || result.stdout.trim();
    super(`\`${result.argv.join(" ")}\` ${how}${said ? `: ${said}` : ""}${hint ? ` (${hint})` : ""}`);
  }
}
Object.defineProperty(CommandError.prototype, "name", { value: "CommandError" });

/** The argv that runs `argv` inside `netns` and dies with this process. */
export function wrapArgv(argv: readonly string[], netns?: string): string[] {
  const inner = netns ? ["nsenter", `--net=${netns}`, "--", ...argv] : [...argv];
  return ["setpriv", "--pdeathsig", "KILL", "--", ...inner];
}

/** Runs a command to completion. */
export function run(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  const full = wrapArgv(argv, options.netns);
  return new Promise((resolve, reject) => {
    // No input: stdin is not even a pipe, so a command that exits at once cannot raise EPIPE on it.
    const stdin = options.input === undefined ? "ignore" : "pipe";
    const child = spawn(full[0] as string, full.slice(1), {
      stdio: [stdin, "pipe", "pipe"],
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const result = { argv, code, signal, stdout, stderr };
      if ((code !== 0 || signal) && !options.allowFail) reject(new CommandError(result));
      else resolve(result);
    });
    if (child.stdin) {
      child.stdin.on("error", () => {}); // the command may exit before reading it all; its exit says what happened
      child.stdin.end(options.input);
    }
  });
}

/** Starts a long-running program (tcpdump, nc, a server under test) inside `netns`. */
export function spawnIn(argv: readonly string[], netns?: string): ChildProcess {
  const full = wrapArgv(argv, netns);
  return spawn(full[0] as string, full.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
}
