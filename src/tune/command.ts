// `sockprobe tune [FILE]` and `sockprobe tune --verify [FILE]`: what sysctls mean for connections,
// and whether this kernel does what they mean. I/O is injectable so tests call it directly.
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { humanMs } from "../model/tcp.js";
import { formatProgress } from "../runner/format.js";
import type { Progress } from "../runner/run-many.js";
import { EXAMPLE_USER_TIMEOUT_MS, formatMeaning, meaningRows, TYPICAL_BACKLOG } from "./meaning.js";
import { defaultSettings, LAN_RTT_MS, lanRtoMs, resolveSettings, TUNE_HZ, tunedKey } from "./model.js";
import {
  kernelFacts,
  readProcSys,
  readSysctlFile,
  readSysctlsInForce,
  type SysctlFile,
  SysctlFileError,
} from "./parse.js";
import { checkSysctls, type VerifyRow, verifyTuning } from "./verify.js";

/** Where tune writes, and how it reads this namespace's sysctls (tests script both). */
export interface TuneIo {
  readonly stdout: { write(chunk: string): unknown };
  readonly stderr: { write(chunk: string): unknown };
  /** A `net.*` sysctl of the namespace sockprobe runs in, read only; undefined if the kernel has none. */
  readonly readSysctl?: (key: string) => string | undefined;
}

/** The usage text of `sockprobe tune`. */
export const TUNE_HELP = `usage:
  sockprobe tune [FILE] [--json] [--backlog N] [--user-timeout MS]
        what the sysctls in force (or those of FILE, as sysctl -p takes it) mean for
        connections: each figure with its formula, beside what the defaults give
  sockprobe tune --verify [FILE] [--max-seconds N] [--json OUT] [--backlog N] [--user-timeout MS]
                 [--backend qemu --kernel K]
        apply them to lab hosts (one lab per probe, in parallel; on qemu one at a time, every
        host a VM booting K), measure each figure and print predicted against measured; exit 0
        when every verdict passes, 1 otherwise

options:
  --json             print the rows as JSON (with --verify: --json OUT writes them to OUT)
  --max-seconds N    with --verify, skip probes predicted to take longer than N s (default 60)
  --backlog N        the listen() backlog of the accept-queue figure (default ${TYPICAL_BACKLOG})
  --user-timeout MS  the TCP_USER_TIMEOUT to show (default ${EXAMPLE_USER_TIMEOUT_MS}); with --verify, also probe it
exit status: 0 done (or every verdict passed), 1 a verdict failed, 2 bad usage or an invalid file
`;

class UsageError extends Error {}
Object.defineProperty(UsageError.prototype, "name", { value: "UsageError" });

interface TuneArgs {
  file?: string;
  verify: boolean;
  json?: string | true;
  maxSeconds: number;
  backlog: number;
  userTimeoutMs?: number;
  help: boolean;
  /** --backend qemu: the probes' hosts are VMs booting `kernel`. */
  qemuKernel?: string;
}

function wholeNumber(name: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min)
    throw new UsageError(`${name} takes a whole number >= ${min}, got ${JSON.stringify(text)}`);
  return n;
}

function parseTuneArgs(args: readonly string[]): TuneArgs {
  const verify = args.includes("--verify");
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        verify: { type: "boolean" },
        json: { type: verify ? "string" : "boolean" },
        "max-seconds": { type: "string" },
        backlog: { type: "string" },
        "user-timeout": { type: "string" },
        help: { type: "boolean", short: "h" },
        backend: { type: "string" },
        kernel: { type: "string" },
      },
    });
  } catch (e) {
    const msg = (e as Error).message;
    throw new UsageError(
      verify && /--json.*argument missing/.test(msg) ? "--json takes a file with --verify: --json OUT" : msg,
    );
  }
  const { values, positionals } = parsed;
  if (positionals.length > 1)
    throw new UsageError(`tune takes one FILE at most, got ${positionals.map((p) => JSON.stringify(p)).join(" ")}`);
  if (values["max-seconds"] !== undefined && !verify) throw new UsageError("--max-seconds applies to --verify only");
  const backend = (values.backend as string | undefined) ?? "netns";
  if (backend !== "netns" && backend !== "qemu")
    throw new UsageError(`unknown backend ${JSON.stringify(backend)}: use netns (the default) or qemu`);
  if (backend === "qemu" && !verify) throw new UsageError("--backend applies to --verify only");
  if (values.kernel !== undefined && backend !== "qemu")
    throw new UsageError("--kernel goes with --verify --backend qemu: the kernel each probe's hosts boot");
  const out: TuneArgs = {
    verify,
    maxSeconds: wholeNumber("--max-seconds", values["max-seconds"] as string | undefined, 1) ?? 60,
    backlog: wholeNumber("--backlog", values.backlog as string | undefined, 0) ?? TYPICAL_BACKLOG,
    help: values.help === true,
  };
  const ut = wholeNumber("--user-timeout", values["user-timeout"] as string | undefined, 1);
  if (ut !== undefined) out.userTimeoutMs = ut;
  if (positionals[0] !== undefined) out.file = positionals[0];
  if (backend === "qemu") out.qemuKernel = (values.kernel as string | undefined) ?? "host";
  if (values.json !== undefined) out.json = values.json === true ? true : (values.json as string);
  return out;
}

const say = (io: TuneIo, text: string) => io.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
const assignments = (values: Readonly<Record<string, string>>) =>
  Object.entries(values)
    .map(([k, v]) => `${k} = ${v}`)
    .join(", ");
const warn = (io: TuneIo, text: string) => io.stderr.write(`sockprobe tune: ${text}\n`);

/** Runs `sockprobe tune ARGS`; returns the exit code (0 ok, 1 a verdict failed, 2 bad usage or file). */
export async function tuneCommand(
  args: string[],
  io: TuneIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const read = io.readSysctl ?? readProcSys;
  try {
    const a = parseTuneArgs(args);
    if (a.help) {
      say(io, TUNE_HELP);
      return 0;
    }
    const file = a.file === undefined ? undefined : readSysctlFile(a.file, { kernelValue: read });
    return a.verify ? await verify(a, file, io, read) : explain(a, file, io, read);
  } catch (e) {
    if (e instanceof SysctlFileError) {
      for (const line of e.message.split("\n")) warn(io, line);
      return 2;
    }
    if (e instanceof UsageError) {
      warn(io, `${e.message}; see \`sockprobe tune --help\``);
      return 2;
    }
    // A kernel that is unknown or cannot boot (--backend qemu) is bad input too.
    if (
      ["KernelError", "BootError"].includes((e as Error).name) ||
      (e as { code?: string }).code === "ESOCKPROBE_NO_QEMU"
    ) {
      warn(io, (e as Error).message);
      return 2;
    }
    warn(io, (e as Error).message);
    return 1;
  }
}

function explain(a: TuneArgs, file: SysctlFile | undefined, io: TuneIo, read: (key: string) => string | undefined) {
  const kernel = kernelFacts(read);
  const values = file ? file.values : readSysctlsInForce(read);
  const settings = resolveSettings(values, kernel);
  const rows = meaningRows(settings, defaultSettings(kernel), {
    backlog: a.backlog,
    userTimeoutMs: a.userTimeoutMs ?? EXAMPLE_USER_TIMEOUT_MS,
  });
  if (a.json) {
    say(io, JSON.stringify(rows, null, 2));
    return 0;
  }
  const lines = file
    ? [
        `sockprobe tune: what the sysctls of ${file.path} mean for connections`,
        `set there: ${assignments(file.values) || "nothing"}; the others take this kernel's defaults`,
      ]
    : ["sockprobe tune: what the sysctls in force in this network namespace mean for connections"];
  const ignored = file ? file.lines.filter((l) => tunedKey(l.key) === undefined) : [];
  if (ignored.length > 0)
    lines.push(`not interpreted by tune: ${ignored.map((l) => `${l.key} (line ${l.line})`).join(", ")}`);
  lines.push(
    `times assume a LAN (RTT ${LAN_RTT_MS} ms, RTO ${lanRtoMs(settings.rtoMinMs)} ms, HZ=${TUNE_HZ}) and a peer that sends nothing back; the defaults are those of a new network namespace on this kernel`,
  );
  say(io, formatMeaning(rows, lines.join("\n")));
  return 0;
}

function progress(io: TuneIo): Progress {
  return {
    started() {},
    finished(r, done, total) {
      io.stderr.write(`${formatProgress(r, done, total)}\n`);
    },
  };
}

async function verify(
  a: TuneArgs,
  file: SysctlFile | undefined,
  io: TuneIo,
  read: (key: string) => string | undefined,
): Promise<number> {
  const lines = file ? file.lines : Object.entries(readSysctlsInForce(read)).map(([key, value]) => ({ key, value }));
  let checked: ReturnType<typeof checkSysctls>;
  try {
    checked = checkSysctls(file?.path ?? "sysctls in force", lines);
  } catch (e) {
    if (e instanceof SysctlFileError) throw e;
    throw new UsageError(`--verify builds lab namespaces and cannot here: ${(e as Error).message}`);
  }
  const setup = a.qemuKernel ? await (await import("../runner/lab-setup.js")).qemuSetup(a.qemuKernel) : undefined;
  // The predictions follow the kernel the probes run on: the VM's, where the hosts are VMs. Its
  // hash table (and so the memory-scaled defaults) is not read from afar: those keep their table values.
  const kernel = setup ? { has: (key: string) => setup.facts.sysctls.has(key) } : kernelFacts(read);
  const settings = resolveSettings(checked.values, kernel);
  const started = performance.now();
  say(
    io,
    `sockprobe tune --verify: ${file ? `the sysctls of ${file.path}` : "the sysctls in force"} on lab hosts (${setup ? `${setup.describe}), one lab per probe, one at a time` : "netns), one lab per probe, in parallel"}`,
  );
  say(io, `applied to every host: ${assignments(checked.values) || "nothing (defaults)"}`);
  for (const l of checked.left) say(io, `not applied: ${l.key}${l.line ? ` (line ${l.line})` : ""}: ${l.reason}`);
  say(
    io,
    "each dead peer's ARP entry is made permanent on the host that probes it, so that TCP's timers alone decide (on a LAN, failed ARP would end things sooner with EHOSTUNREACH)\n",
  );
  const rows = await verifyTuning({
    sysctls: checked.values,
    settings,
    maxSeconds: a.maxSeconds,
    backlog: a.backlog,
    ...(a.userTimeoutMs ? { userTimeoutMs: a.userTimeoutMs } : {}),
    ...(setup ? { qemu: setup.lab.qemu } : {}),
    progress: progress(io),
  });
  say(io, formatVerify(rows));
  const n = (v: VerifyRow["verdict"]) => rows.filter((r) => r.verdict === v).length;
  say(
    io,
    `${n("pass")} passed, ${n("fail")} failed, ${n("skip")} skipped; wall time ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  if (typeof a.json === "string") writeFileSync(a.json, `${JSON.stringify(rows, null, 2)}\n`);
  return n("fail") > 0 ? 1 : 0;
}

/** The predicted-against-measured table, then each prediction's arithmetic and each skip's or failure's reason. */
export function formatVerify(rows: readonly VerifyRow[]): string {
  const value = (r: VerifyRow, v: number | null) =>
    v === null ? "-" : r.unit === "ms" ? humanMs(v) : `${v} ${r.unit}`;
  const cells = rows.map((r) => [
    r.label,
    r.unit === "ms"
      ? `${value(r, r.predicted)} ± ${humanMs(r.tolerance)}${r.expectedErrno ? `, ${r.expectedErrno}` : ""}`
      : `${value(r, r.predicted)} exactly`,
    r.verdict === "skip" ? "not run" : `${value(r, r.measured)}${r.observedErrno ? `, ${r.observedErrno}` : ""}`,
    r.verdict,
  ]);
  const head = ["probe", "predicted", "measured", "verdict"];
  const width = head.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] as string).length)));
  const line = (c: string[]) =>
    c
      .map((x, i) => (i < c.length - 1 ? x.padEnd(width[i] as number) : x))
      .join("   ")
      .trimEnd();
  const out = [line(head), ...cells.map(line), ""];
  for (const r of rows) {
    out.push(`${r.label}: ${r.why}`);
    if (r.reason) out.push(`    ${r.verdict}: ${r.reason}`);
  }
  return out.join("\n");
}
