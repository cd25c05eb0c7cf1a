// `run --kernel`, `kernels` and `matrix` as a user meets them: bad input is one line and exit 2, a
// kill -9 mid-boot leaves no QEMU and no file of ours.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";
import { readReport } from "../../src/report/schema.js";
import { cacheDir } from "../../src/vm/cache.js";
import { alive, comm, descendants } from "../helpers/leaks.js";
import { waitUntil } from "../helpers/wait.js";

t.setTimeout(10 * 60_000);

const main = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, ["--import=tsx", main, ...args], {
    encoding: "utf8",
    timeout: 300_000,
    env: { ...process.env, ...env },
  });

t.test("bad kernels and a missing QEMU are one line and exit 2", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "sockprobe-test-cli-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const junk = join(dir, "vmlinuz");
  writeFileSync(junk, "x".repeat(4096));
  for (const [args, env, message] of [
    [["run", "--kernel", join(dir, "missing")], {}, /kernel image .*missing does not exist/],
    [["run", "--kernel", junk], {}, /is not a kernel image \(no bzImage header\)/],
    [["run", "--kernel", "9.99"], {}, /no Debian kernel package linux-image-9\.99…-amd64 is known to apt/],
    [["run", "--kernel", "linux"], {}, /unknown kernel "linux"/],
    [["run", "--modules", dir], {}, /--modules goes with --kernel PATH/],
    [
      ["run", "--kernel", "6.12"],
      { SOCKPROBE_QEMU: "/no/such/qemu" },
      /SOCKPROBE_QEMU=\/no\/such\/qemu, which does not exist: install with `apt-get install -y qemu-system-x86`/,
    ],
    [["matrix", "--kernel", "6.12", "--retries", "x"], {}, /--retries takes a whole number >= 0, got "x"/],
    [["matrix", "--kernel", "host"], {}, /the host's kernel is in the matrix unless --no-host/],
    [["matrix", "--from", join(dir, "nope.json")], {}, /nope\.json/],
  ] as const) {
    const r = cli([...args], env);
    t.equal(r.status, 2, args.join(" "));
    t.match(r.stderr, message, args.join(" "));
    t.notMatch(r.stderr, /\n\s+at /, "no stack trace");
  }
});

t.test("kernels lists the cache and the options a self-built kernel needs", async (t) => {
  const list = cli(["kernels", "--fetch", "6.12"]);
  t.equal(list.status, 0);
  t.match(list.stdout, /^6\.12\.\d+ +6\.12\.\d+\S*-amd64 +linux-image-6\.12/m);
  const config = cli(["kernels", "--config"]);
  t.equal(config.status, 0);
  for (const opt of [
    "CONFIG_VIRTIO_PCI",
    "CONFIG_VIRTIO_CONSOLE",
    "CONFIG_NET_9P_VIRTIO",
    "CONFIG_9P_FS",
    "CONFIG_DEVTMPFS",
    "CONFIG_FTRACE",
    "CONFIG_NF_TABLES",
    "CONFIG_VETH",
  ])
    t.match(config.stdout, new RegExp(`^${opt}=y`, "m"));
});

t.test("kill -9 of a matrix run mid-boot leaves no QEMU and no file of ours", async (t) => {
  const out = mkdtempSync(join(tmpdir(), "sockprobe-test-matrix-"));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const ours = () => [
    ...readdirSync(tmpdir()).filter((f) => f.startsWith("sockprobe-") && !out.endsWith(f)),
    ...(existsSync(join(cacheDir(), "initramfs"))
      ? readdirSync(join(cacheDir(), "initramfs")).filter((f) => f.startsWith("."))
      : []),
    ...(existsSync(join(cacheDir(), "kernels"))
      ? readdirSync(join(cacheDir(), "kernels")).filter((f) => f.startsWith("."))
      : []),
  ];
  const before = new Set(ours());
  const child = spawn(
    process.execPath,
    ["--import=tsx", main, "matrix", "--no-host", "--kernel", "6.12", "--out", out],
    {
      stdio: "ignore",
    },
  );
  const pid = child.pid as number;
  const qemu = await waitUntil(
    "QEMU booting under the matrix",
    () => descendants(pid).filter((p) => comm(p).startsWith("qemu-system")),
    (q) => q.length === 1,
    120_000,
    50,
  );
  child.kill("SIGKILL");
  await waitUntil(
    "QEMU gone",
    () => qemu.filter(alive),
    (left) => left.length === 0,
    10_000,
    20,
  );
  t.pass("QEMU died with the matrix run");
  t.same(
    ours().filter((f) => !before.has(f)),
    [],
    "no temporary file or directory of ours is left",
  );
});

t.test("run --kernel writes the guest's report, JUnit and pcaps where the user asked", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "sockprobe-test-kernel-run-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = cli([
    "run",
    "--kernel",
    "6.12",
    "normal-teardown",
    "--json",
    join(dir, "r.json"),
    "--junit",
    join(dir, "r.xml"),
    "--evidence",
    join(dir, "ev"),
  ]);
  t.equal(r.status, 0, r.stderr);
  t.match(
    r.stderr,
    /^running 1 scenario on Linux 6\.12\.\d+\S*-amd64, netns backend$/m,
    "the guest's progress, streamed",
  );
  t.match(r.stdout, /^kernel 6\.12\.\S+ booted in [\d.]+ s under (KVM|TCG) \(.+\); QEMU \d/m);
  const report = readReport(join(dir, "r.json"));
  t.match(report.kernel.release, /^6\.12\./, "the report's kernel is the guest's");
  t.equal(report.boot?.kernel.spec, "6.12");
  const s = report.scenarios[0];
  t.equal(s?.verdict, "pass");
  t.ok((s?.evidence.packets.length ?? 0) > 0, "the ladder has its packets");
  t.ok(s?.evidence.pcapFiles.length, "pcap files are listed");
  for (const f of s?.evidence.pcapFiles ?? []) {
    t.ok(f.startsWith(join(dir, "ev", "normal-teardown")), `${f} is under --evidence`);
    t.ok(existsSync(f), `${f} came back from the guest`);
  }
  t.match(readFileSync(join(dir, "r.xml"), "utf8"), /<testsuite name="sockprobe 6\.12\./);
});
