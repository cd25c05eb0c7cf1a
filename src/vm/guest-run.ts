// A kernel under test: boot it in one QEMU guest with the host's root shared read-only, run one
// sockprobe command inside (the same scenarios on the netns backend, on the guest's kernel), relay
// its output as it comes, and bring back the files it wrote.
import { existsSync, readdirSync, statSync } from "node:fs";
import type { Socket } from "node:net";
import { join, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { Parser } from "tar";
import { chooseAccel } from "./accel.js";
import { GUEST_OUT, initramfsFor, MARK, PORTS } from "./initramfs.js";
import { type Kernel, KernelError } from "./kernels.js";
import { type Channel, Qemu, qemuBinary, qemuVersion } from "./qemu.js";

// Measured here: node starts 3 to 9 times slower in a TCG guest than on the host.
const TCG_SLOWDOWN = 8;

/** How the guest booted, for the report. */
export interface BootInfo {
  readonly qemu: string;
  readonly accel: "kvm" | "tcg";
  /** Why that accelerator: "KVM runs guests", or why TCG. */
  readonly accelWhy: string;
  readonly memoryMiB: number;
  readonly cpus: number;
  /** From QEMU's start to the guest's init saying it is ready to run the job. */
  readonly bootMs: number;
  readonly kernel: {
    readonly spec: string;
    readonly release: string;
    readonly image: string;
    readonly package?: string;
    readonly packageVersion?: string;
  };
}

/** What a guest run gives back. */
export interface GuestRunResult {
  readonly exitCode: number;
  /** Files the command wrote under its output folder, by path relative to it. */
  readonly files: ReadonlyMap<string, Buffer>;
  readonly boot: BootInfo;
}

/** A guest that did not come up: bad input (an image that cannot boot), with what was seen. */
export class BootError extends KernelError {}
Object.defineProperty(BootError.prototype, "name", { value: "BootError" });

/** A guest that booted and then died under its job (a panic, QEMU gone): a failed run, not bad input. */
export class GuestDiedError extends Error {}
Object.defineProperty(GuestDiedError.prototype, "name", { value: "GuestDiedError" });

/** How the guest runs. */
export interface GuestRunOptions extends BootOptions {
  /** sockprobe's arguments inside the guest; output paths go under `GUEST_OUT`. */
  readonly args: readonly string[];
  /** Runs this program instead of sockprobe (`args` ignored). */
  readonly command?: readonly string[];
  readonly onStdout?: (line: string) => void;
  readonly onStderr?: (line: string) => void;
  /** Bound on the whole job once booted. */
  readonly runTimeoutMs?: number;
}

/**
 * The guest's command line prefix that runs this same sockprobe. Built JavaScript starts three times
 * faster than TypeScript through tsx under TCG (9 s against 28 s here), so the build is used
 * whenever it is as new as every source file.
 */
export function sockprobeEntry(): string[] {
  const here = fileURLToPath(new URL(".", import.meta.url));
  if (here.includes(`${sep}dist${sep}`)) return [process.execPath, join(here, "..", "cli", "main.js")];
  const root = join(here, "..", "..");
  const dist = join(root, "dist", "cli", "main.js");
  if (existsSync(dist) && newestMtime(join(root, "src")) <= statSync(dist).mtimeMs) return [process.execPath, dist];
  return [process.execPath, `--import=${import.meta.resolve("tsx")}`, join(root, "src", "cli", "main.ts")];
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) newest = Math.max(newest, statSync(join(e.parentPath ?? e.path, e.name)).mtimeMs);
  }
  return newest;
}

/** Quotes a word for the guest's shell. */
export function shellWord(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Reads the tar the guest sends (busybox's) into a map of relative path to bytes: node-tar's parser. */
export async function parseTar(buf: Buffer): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const parser = new Parser({
    onReadEntry: (entry) => {
      const chunks: Buffer[] = [];
      entry.on("data", (c: Buffer) => chunks.push(c));
      entry.on("end", () => {
        if (entry.type === "File") files.set(entry.path.replace(/^\.\//, ""), Buffer.concat(chunks));
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    parser.on("end", resolve);
    parser.on("error", reject);
    parser.end(buf);
  });
  return files;
}

// The reason a boot failed, from what the console showed.
function bootFailure(console: readonly string[], stderr: string): string {
  const marked = console.find((l) => l.includes(MARK.bootError));
  if (marked) return marked.slice(marked.indexOf(MARK.bootError) + MARK.bootError.length).trim();
  const panic = console.find((l) => l.includes("Kernel panic - not syncing"));
  if (panic) return `the kernel panicked: ${panic.replace(/^\[[\s\d.]+\]\s*/, "").trim()}`;
  if (stderr.trim()) return `QEMU: ${stderr.trim().split("\n").slice(-3).join(" ")}`;
  const tail = console
    .filter((l) => l.trim())
    .slice(-5)
    .join(" | ");
  return tail ? `it stopped; the console's last lines: ${tail}` : "the console stayed silent";
}

/** How a guest boots. */
export interface BootOptions {
  readonly kernel: Kernel;
  readonly memoryMiB?: number;
  readonly cpus?: number;
  /** More kernel command line. */
  readonly append?: string;
  /** Bound on boot to ready; by default 60 s under KVM, 180 s under TCG. */
  readonly bootTimeoutMs?: number;
  /** More channels (QMP) and QEMU arguments (NICs), and a namespace to run QEMU in (for its taps). */
  readonly channels?: readonly Channel[];
  readonly extra?: readonly string[];
  readonly netns?: string;
  readonly signal?: AbortSignal;
}

// sockprobe's own work runs several times slower under TCG (its timers do not): see slowdown().
function guestEnv(accel: "kvm" | "tcg"): string[] {
  return [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/run/sockprobe/home",
    "TMPDIR=/run/sockprobe/tmp",
    "SOCKPROBE_GUEST=1",
    ...(accel === "tcg" ? [`SOCKPROBE_SLOWDOWN=${TCG_SLOWDOWN}`] : []),
  ];
}

/**
 * A booted guest whose init waits for one program to run: its stdin and stdout are the job port,
 * its stderr the err port. Use `runInGuest` for a command with output files, or the job port
 * directly for a long-lived program (an agent).
 */
export class Guest {
  /** Bytes that came on the job port after the ready mark. */
  #early: Buffer = Buffer.alloc(0);

  private constructor(
    readonly qemu: Qemu,
    readonly kernel: Kernel,
    readonly boot: BootInfo,
    readonly accel: "kvm" | "tcg",
  ) {}

  /** Starts QEMU and waits, bounded, for the guest's init to say it is ready; BootError if it does not. */
  static async boot(options: BootOptions): Promise<Guest> {
    qemuBinary();
    const { kernel } = options;
    const initrd = await initramfsFor(kernel);
    const accel = await chooseAccel();
    const memoryMiB = options.memoryMiB ?? 2048;
    const cpus = options.cpus ?? 2;
    const qemu = Qemu.start({
      image: kernel.image,
      initrd,
      append: `console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init ${options.append ?? ""}`.trim(),
      accel: accel.accel,
      memoryMiB,
      cpus,
      // SOCKPROBE_VM_CONSOLE=1 shows the guest's console (kernel messages) as it comes, for debugging a boot.
      ...(process.env.SOCKPROBE_VM_CONSOLE
        ? { onConsole: (l: string) => process.stderr.write(`[console] ${l}\n`) }
        : {}),
      channels: [{ name: PORTS.job, kind: "port" }, { name: PORTS.err, kind: "port" }, ...(options.channels ?? [])],
      ...(options.extra ? { extra: options.extra } : {}),
      ...(options.netns ? { netns: options.netns } : {}),
    });
    const abort = () => qemu.kill();
    options.signal?.addEventListener("abort", abort, { once: true });
    try {
      const job = qemu.channel(PORTS.job);
      let buf = Buffer.alloc(0);
      let readyAt: number | undefined;
      const onData = (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        const nl = buf.indexOf(10);
        if (readyAt === undefined && nl >= 0 && buf.subarray(0, nl).toString().startsWith(MARK.ready)) {
          readyAt = performance.now();
          buf = buf.subarray(nl + 1);
        }
      };
      job.on("data", onData);
      const boundMs = options.bootTimeoutMs ?? (accel.accel === "tcg" ? 180_000 : 60_000);
      await waitFor(
        qemu,
        () => readyAt !== undefined,
        boundMs,
        job,
        `${kernel.release}: the guest was not ready`,
        options.signal,
      );
      job.off("data", onData);
      const guest = new Guest(
        qemu,
        kernel,
        {
          qemu: qemuVersion(),
          accel: accel.accel,
          accelWhy: accel.why,
          memoryMiB,
          cpus,
          bootMs: Math.round((readyAt as number) - qemu.startedMs),
          kernel: {
            spec: kernel.spec,
            release: kernel.release,
            image: kernel.image,
            ...(kernel.source.kind === "debian"
              ? { package: kernel.source.package, packageVersion: kernel.source.packageVersion }
              : {}),
          },
        },
        accel.accel,
      );
      guest.#early = buf;
      return guest;
    } catch (e) {
      qemu.kill();
      await qemu.exited;
      throw e;
    } finally {
      options.signal?.removeEventListener("abort", abort);
    }
  }

  /** The job port: the program's stdin and stdout once started. */
  get job(): Socket {
    return this.qemu.channel(PORTS.job);
  }

  /** The err port: the program's stderr. */
  get err(): Socket {
    return this.qemu.channel(PORTS.err);
  }

  /** Bytes that arrived on the job port before anyone listened: hand them to the reader first. */
  takeEarly(): Buffer {
    const b = this.#early;
    this.#early = Buffer.alloc(0);
    return b;
  }

  /**
   * After a reset: waits, bounded, for the new boot's init to say it is ready again. Call it before
   * the reset: it listens from the call on, and drops what the old boot still sent.
   */
  async rebooted(boundMs = this.accel === "tcg" ? 180_000 : 60_000): Promise<number> {
    const marker = Buffer.from(`${MARK.ready}`);
    let buf = Buffer.alloc(0);
    let readyAt: number | undefined;
    const onData = (d: Buffer) => {
      if (readyAt !== undefined) {
        this.#early = Buffer.concat([this.#early, d]);
        return;
      }
      buf = Buffer.concat([buf, d]);
      const at = buf.indexOf(marker);
      if (at < 0 || (at > 0 && buf[at - 1] !== 10)) {
        buf = buf.subarray(Math.max(0, buf.length - marker.length - 1));
        return;
      }
      const nl = buf.indexOf(10, at);
      if (nl < 0) return;
      readyAt = performance.now();
      this.#early = buf.subarray(nl + 1);
    };
    this.#early = Buffer.alloc(0);
    this.job.on("data", onData);
    try {
      await waitFor(
        this.qemu,
        () => readyAt !== undefined,
        boundMs,
        this.job,
        `${this.kernel.release}: the guest was not ready after its reset`,
        undefined,
        true,
      );
      return readyAt as number;
    } finally {
      this.job.off("data", onData);
    }
  }

  /** Runs `command` in the guest, in this process's working directory, with the modules of its kernel. */
  start(command: readonly string[], env: readonly string[] = []): void {
    const words = [
      this.kernel.modulesRoot ?? "",
      ...guestEnv(this.accel),
      ...env,
      "/bin/sh",
      "-c",
      'cd "$0" && exec "$@"',
      process.cwd(),
      ...command,
    ];
    this.job.write(`${words.map(shellWord).join(" ")}\n`);
  }

  /** Power cut: QEMU ends at once. */
  async kill(): Promise<void> {
    this.qemu.kill();
    await this.qemu.exited;
  }
}

// Waits until `cond` holds after data on `stream`, bounded; a QEMU that exits first is a BootError.
function waitFor(
  qemu: Qemu,
  cond: () => boolean,
  boundMs: number,
  stream: Socket,
  what: string,
  signal?: AbortSignal,
  booted = false,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (e?: Error) => {
      clearTimeout(timer);
      stream.off("data", check);
      if (e) reject(e);
      else resolve();
    };
    const check = () => {
      if (cond()) done();
    };
    const timer = setTimeout(() => {
      qemu.kill();
      done(new BootError(`${what} within ${Math.round(boundMs / 1000)} s; ${bootFailure(qemu.console, qemu.stderr)}`));
    }, boundMs);
    // After the data handlers that feed cond, which were attached before.
    stream.on("data", check);
    qemu.exited.then(() => {
      if (cond()) return done();
      if (signal?.aborted) done(signal.reason instanceof Error ? signal.reason : new Error("interrupted"));
      else if (booted) done(new GuestDiedError(`${what}: the guest died: ${bootFailure(qemu.console, qemu.stderr)}`));
      else
        done(
          new BootError(
            `${what.replace(/: the guest was not ready$/, "")} did not boot: ${bootFailure(qemu.console, qemu.stderr)}`,
          ),
        );
    });
    check();
  });
}

/** Boots the kernel, runs one sockprobe command in it, and powers it off. */
export async function runInGuest(options: GuestRunOptions): Promise<GuestRunResult> {
  const guest = await Guest.boot(options);
  const { qemu } = guest;
  const abort = () => qemu.kill();
  options.signal?.addEventListener("abort", abort, { once: true });
  try {
    let errPartial = "";
    guest.err.setEncoding("utf8").on("data", (d: string) => {
      const lines = (errPartial + d).split("\n");
      errPartial = lines.pop() ?? "";
      for (const l of lines) options.onStderr?.(l);
    });
    // The job port carries text lines until the exit mark, then the tar of the output folder.
    let buf = guest.takeEarly();
    let exit: { code: number; size: number } | undefined;
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (!exit) {
        const nl = buf.indexOf(10);
        if (nl < 0) break;
        const line = buf.subarray(0, nl).toString("utf8");
        buf = buf.subarray(nl + 1);
        if (line.startsWith(MARK.exit)) {
          const [, code, size] = line.split(" ");
          exit = { code: Number(code), size: Number(size) };
        } else options.onStdout?.(line);
      }
    };
    guest.job.on("data", onData);
    guest.start(options.command ?? [...sockprobeEntry(), ...options.args]);
    await waitFor(
      qemu,
      () => exit !== undefined && buf.length >= exit.size,
      options.runTimeoutMs ?? 3_600_000,
      guest.job,
      `${options.kernel.release}: the job did not finish`,
      options.signal,
      true,
    );
    if (errPartial) options.onStderr?.(errPartial);
    const done = exit as { code: number; size: number };
    const files = await parseTar(buf.subarray(0, done.size));
    guest.job.write("ok\n");
    const timer = setTimeout(() => qemu.kill(), 30_000);
    await qemu.exited;
    clearTimeout(timer);
    return { exitCode: done.code, files, boot: guest.boot };
  } finally {
    options.signal?.removeEventListener("abort", abort);
    await guest.kill();
  }
}

export { GUEST_OUT };
