// Nothing leaks: after kill -9 or Ctrl-C of a run holding a full lab, no namespace, link, mount
// or process of it remains; and without privileges the lab says what to do.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import t, { type Test } from "tap";
import { TRACEFS_ROOTS } from "../../src/evidence/tracepoints.js";
import { withLab } from "../helpers/lab.js";
import { descendants, expectGone } from "../helpers/leaks.js";
import { runAsNobody } from "../helpers/nobody.js";
import { waitUntil } from "../helpers/wait.js";

const child = fileURLToPath(new URL("../fixtures/lab-child.ts", import.meta.url));

async function runAndKill(t: Test, signal: NodeJS.Signals) {
  const linksBefore = execFileSync("ip", ["-o", "link"], { encoding: "utf8" });
  const mountsBefore = readFileSync("/proc/self/mounts", "utf8");
  // Names made by others (vagrant/libvirt-netns.sh's, while the Vagrant machines are up) stay.
  const namedBefore = execFileSync("ip", ["netns", "list"], { encoding: "utf8" }).trim();
  const proc = spawn(process.execPath, ["--import=tsx", child], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  proc.stdout.on("data", (d) => {
    out += d;
  });
  const report = await waitUntil(
    "the child's report",
    () => out,
    (o) => o.includes("\n"),
    20_000,
  );
  const { pid, namespaces, trace } = JSON.parse(report) as { pid: number; namespaces: string[]; trace: boolean };
  const family = descendants(pid);
  t.equal(namespaces.length, 3, "the child holds three namespaces of its own: the switch and two hosts");
  const names = family.map((p) => readFileSync(`/proc/${p}/comm`, "utf8").trim());
  t.ok(names.includes("tcpdump"), "it runs tcpdump");
  t.ok(names.filter((n) => n === "sleep").length >= 2, "and a program that forked");
  proc.kill(signal);
  await new Promise((r) => proc.once("exit", r));
  await expectGone(t, family, namespaces);
  t.equal(
    execFileSync("ip", ["-o", "link"], { encoding: "utf8" }),
    linksBefore,
    "no link left in the machine's namespace",
  );
  t.equal(readFileSync("/proc/self/mounts", "utf8"), mountsBefore, "no mount left");
  t.equal(
    execFileSync("ip", ["netns", "list"], { encoding: "utf8" }).trim(),
    namedBefore,
    "nothing named in /run/netns by the run",
  );
  if (trace) {
    const root = TRACEFS_ROOTS.find((r) => existsSync(`${r}/instances`));
    const mine = () => (root ? readdirSync(`${root}/instances`).filter((d) => d.startsWith(`sockprobe-${pid}-`)) : []);
    // A killed process cannot remove its tracing instance; the next run sweeps it.
    const lab = await withLab(t, { name: "sweeper" });
    await lab.addHost("a");
    await lab.startTrace();
    t.same(mine(), [], "the next run swept the killed run's tracing instance");
    await lab.stopTrace();
  }
}

t.test("kill -9 of a run leaves nothing behind", async (t) => runAndKill(t, "SIGKILL"));
t.test("Ctrl-C (SIGINT) of a run leaves nothing behind", async (t) => runAndKill(t, "SIGINT"));

t.test("without privileges, one clear error says what to do", async (t) => {
  const out = runAsNobody(child, ["create-only"]).stdout;
  const r = JSON.parse(out) as { ok: boolean; message?: string };
  t.equal(r.ok, false);
  t.match(r.message, /needs root/);
  t.match(r.message, /unshare --user --map-root-user/);
  t.notMatch(r.message, /\n\s+at /, "no stack trace");
});

t.test("a lab closed while its hosts boot leaves nothing, and closes no descriptor twice", async (t) => {
  const { closeSync, fstatSync, openSync } = await import("node:fs");
  const { createLab } = await import("../../src/lab/create.js");
  const { Netns } = await import("../../src/sys/socket.js");
  // A closed namespace's number is never closed again, nor entered: it may name another file by then.
  const ns = Netns.create();
  ns.close();
  const reused = openSync("/dev/null", "r");
  ns.close();
  t.doesNotThrow(() => fstatSync(reused), "a second close left the number's new file open");
  closeSync(reused);
  t.throws(() => ns.path, /network namespace .* is closed/);

  const captures = mkdtempSync(join(tmpdir(), "sockprobe-closeboot-"));
  t.teardown(() => rmSync(captures, { recursive: true, force: true }));
  const fds = () => readdirSync("/proc/self/fd").length;
  // tsx's esbuild service, started by the imports above, is the test's own.
  const baseline = new Set(descendants(process.pid));
  const before = fds();
  for (const delayMs of [0, 2, 5, 10, 20, 40, 80]) {
    for (const control of ["in-process", "agent"] as const) {
      const lab = await createLab({ name: "closeboot", control });
      await lab.startCapture(captures);
      const booting = Promise.allSettled([lab.addHost("kang"), lab.addHost("kodos")]);
      await new Promise((r) => setTimeout(r, delayMs));
      await lab.close();
      const settled = await booting;
      for (const s of settled) {
        if (s.status === "rejected")
          t.match(String(s.reason), /closed|powered off|booted/, `${control}, ${delayMs} ms`);
      }
      await waitUntil(
        `no process of ours (${control}, closed ${delayMs} ms in)`,
        () =>
          descendants(process.pid)
            .filter((p) => !baseline.has(p))
            .map((p) => `${p} ${readFileSync(`/proc/${p}/cmdline`, "utf8").replaceAll("\0", " ")}`),
        (left) => left.length === 0,
        5000,
      );
    }
  }
  t.equal(fds(), before, "no descriptor left open");
});
