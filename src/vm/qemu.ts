// One QEMU process: a kernel booted with the host's root shared read-only, its channels to us over
// socket pairs handed down as descriptors (no socket file, no temporary file), dying with sockprobe
// (PR_SET_PDEATHSIG) so that nothing of it outlives a crash or kill -9.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import type { Socket } from "node:net";
import { wrapArgv } from "../proc/exec.js";
import { which } from "../proc/tools.js";

/** A virtio-serial port, or the QMP monitor. */
export interface Channel {
  readonly name: string;
  readonly kind: "port" | "qmp";
}

/** How a VM is made. */
export interface QemuOptions {
  /** The kernel; none boots the firmware alone. */
  readonly image?: string;
  readonly initrd?: string;
  readonly append?: string;
  readonly accel: "kvm" | "tcg";
  readonly memoryMiB: number;
  readonly cpus: number;
  readonly channels: readonly Channel[];
  /** Extra arguments: NICs and the like. */
  readonly extra?: readonly string[];
  /** A network namespace to run QEMU in, so its taps are made there. */
  readonly netns?: string;
  /** Lines of the serial console, as they come. */
  readonly onConsole?: (line: string) => void;
}

/** The QEMU binary (`SOCKPROBE_QEMU` names another), or a clear error naming the package. */
export function qemuBinary(env: NodeJS.ProcessEnv = process.env): string {
  const bin = env.SOCKPROBE_QEMU
    ? existsSync(env.SOCKPROBE_QEMU)
      ? env.SOCKPROBE_QEMU
      : undefined
    : which("qemu-system-x86_64");
  if (!bin) {
    const what = env.SOCKPROBE_QEMU
      ? `SOCKPROBE_QEMU=${env.SOCKPROBE_QEMU}, which does not exist`
      : "`qemu-system-x86_64`, not found on PATH";
    throw Object.assign(
      new Error(`sockprobe boots kernels with ${what}: install with \`apt-get install -y qemu-system-x86\``),
      {
        code: "ESOCKPROBE_NO_QEMU",
      },
    );
  }
  return bin;
}

/** `7.2.22`, from `qemu-system-x86_64 --version`. */
export function qemuVersion(): string {
  const r = spawnSync(qemuBinary(), ["--version"], { encoding: "utf8" });
  return /version (\S+)/.exec(r.stdout ?? "")?.[1] ?? "unknown";
}

const CONSOLE_LINES = 400;

/** A running VM. */
export class Qemu {
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly startedMs = performance.now();
  readonly #child: ChildProcess;
  readonly #channels = new Map<string, Socket>();
  readonly #console: string[] = [];
  #stderr = "";
  #done = false;

  private constructor(options: QemuOptions) {
    const base = [
      qemuBinary(),
      "-accel",
      options.accel,
      ...(options.accel === "tcg" ? ["-cpu", "max"] : ["-cpu", "host"]),
      "-m",
      String(options.memoryMiB),
      "-smp",
      String(options.cpus),
      "-nodefaults",
      "-no-user-config",
      "-display",
      "none",
      "-no-reboot",
      // Without an image the firmware runs alone: enough for what QMP does to a machine.
      ...(options.image
        ? [
            "-kernel",
            options.image,
            "-initrd",
            options.initrd ?? "",
            "-append",
            options.append ?? "",
            "-virtfs",
            "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
          ]
        : []),
      "-serial",
      "stdio",
      "-device",
      "virtio-serial-pci",
    ];
    options.channels.forEach((c, i) => {
      const fd = 3 + i;
      base.push("-chardev", `socket,id=ch${i},fd=${fd}`);
      if (c.kind === "port") base.push("-device", `virtserialport,chardev=ch${i},name=${c.name}`);
      else base.push("-mon", `chardev=ch${i},mode=control`);
    });
    base.push(...(options.extra ?? []));
    const argv = wrapArgv(base, options.netns);
    // Each channel a socket pair (libuv makes one per "pipe"), so QEMU gets a connected descriptor.
    this.#child = spawn(argv[0] as string, argv.slice(1), {
      stdio: ["ignore", "pipe", "pipe", ...options.channels.map(() => "pipe" as const)],
    });
    for (const [i, c] of options.channels.entries()) this.#channels.set(c.name, this.#child.stdio[3 + i] as Socket);
    let partial = "";
    this.#child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      const lines = (partial + d).split(/\r?\n/);
      partial = lines.pop() ?? "";
      for (const l of lines) {
        this.#console.push(l);
        if (this.#console.length > CONSOLE_LINES) this.#console.shift();
        options.onConsole?.(l);
      }
    });
    this.#child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      this.#stderr = (this.#stderr + d).slice(-4000);
    });
    this.exited = new Promise((resolve) => {
      this.#child.on("close", (code, signal) => {
        this.#done = true;
        if (partial) this.#console.push(partial);
        resolve({ code, signal });
      });
      this.#child.on("error", () => {
        this.#done = true;
        resolve({ code: null, signal: null });
      });
    });
  }

  /** Starts QEMU; the kernel boots from here on. */
  static start(options: QemuOptions): Qemu {
    return new Qemu(options);
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }
  get done(): boolean {
    return this.#done;
  }
  /** The last lines of the serial console. */
  get console(): readonly string[] {
    return this.#console;
  }
  /** What QEMU itself said on stderr. */
  get stderr(): string {
    return this.#stderr;
  }

  /** A channel's socket: a port's bytes, or QMP's JSON. */
  channel(name: string): Socket {
    const s = this.#channels.get(name);
    if (!s) throw new Error(`no channel ${name} on this VM`);
    return s;
  }

  /** Ends QEMU at once: a power cut. */
  kill(): void {
    if (!this.#done) this.#child.kill("SIGKILL");
    for (const s of this.#channels.values()) s.destroy();
  }
}
