// KVM where guests really run; TCG otherwise. /dev/kvm can open and create a VM yet never run a
// guest (nested KVM on these machines hangs), so a short bounded probe decides, once per boot of
// the machine.
import { spawn } from "node:child_process";
import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { wrapArgv } from "../proc/exec.js";
import { cacheDir } from "./cache.js";
import { qemuBinary } from "./qemu.js";

/** The accelerator chosen, and why. */
export interface AccelChoice {
  readonly accel: "kvm" | "tcg";
  readonly why: string;
}

// SeaBIOS writes its banner to the debug port within milliseconds of the guest's first instruction.
const PROBE_MS = 4000;

function bootId(): string {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    return "unknown";
  }
}

/** Runs firmware under KVM for a moment: true when it printed anything. */
export function probeKvm(boundMs = PROBE_MS): Promise<{ ok: boolean; why: string }> {
  const argv = wrapArgv([
    qemuBinary(),
    "-accel",
    "kvm",
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-m",
    "64",
    "-chardev",
    "stdio,id=dbg",
    "-device",
    "isa-debugcon,iobase=0x402,chardev=dbg",
  ]);
  return new Promise((resolve) => {
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    let settled = false;
    const finish = (ok: boolean, why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill("SIGKILL");
      resolve({ ok, why });
    };
    const timer = setTimeout(
      () => finish(false, `a KVM guest printed nothing in ${boundMs} ms (nested KVM that never runs guests?)`),
      boundMs,
    );
    child.stdout?.once("data", () => finish(true, "KVM runs guests"));
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.on("close", () => finish(false, `QEMU refused KVM: ${stderr.trim().split("\n")[0] ?? "no reason given"}`));
    child.on("error", (e) => finish(false, `QEMU did not start: ${e.message}`));
  });
}

/** KVM when it works here, else TCG; `SOCKPROBE_ACCEL=tcg|kvm` forces one. */
export async function chooseAccel(env: NodeJS.ProcessEnv = process.env): Promise<AccelChoice> {
  const forced = env.SOCKPROBE_ACCEL;
  if (forced === "tcg" || forced === "kvm") return { accel: forced, why: `SOCKPROBE_ACCEL=${forced}` };
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
  } catch {
    return { accel: "tcg", why: "no usable /dev/kvm" };
  }
  const file = join(cacheDir(env), "accel.json");
  const id = bootId();
  try {
    const saved = JSON.parse(readFileSync(file, "utf8")) as AccelChoice & { bootId: string };
    if (saved.bootId === id) return { accel: saved.accel, why: saved.why };
  } catch {}
  const probe = await probeKvm();
  const choice: AccelChoice = probe.ok ? { accel: "kvm", why: probe.why } : { accel: "tcg", why: `TCG: ${probe.why}` };
  try {
    mkdirSync(cacheDir(env), { recursive: true });
    writeFileSync(file, `${JSON.stringify({ ...choice, bootId: id })}\n`);
  } catch {}
  return choice;
}
