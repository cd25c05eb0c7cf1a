// Nothing leaks: after kill -9 or Ctrl-C of a run holding a full lab, no namespace, link, mount
// or process of it remains; and without privileges the lab says what to do.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
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
