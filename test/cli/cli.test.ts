// The command line as a user meets it: exit codes, messages without stack traces, the JSON report.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";
import { comm, descendants, expectGone, namespacesHeldBy } from "../helpers/leaks.js";
import { runAsNobody } from "../helpers/nobody.js";
import { waitUntil } from "../helpers/wait.js";

const main = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const cli = (...args: string[]) =>
  spawnSync(process.execPath, ["--import=tsx", main, ...args], { encoding: "utf8", timeout: 120_000 });

t.test("help, version, list", async (t) => {
  const help = cli("help");
  t.equal(help.status, 0);
  t.match(help.stdout, /sockprobe run \[NAME\.\.\.\]/);
  t.match(cli("version").stdout, /^\d+\.\d+\.\d+\n$/);
  const list = cli("list");
  t.equal(list.status, 0);
  t.match(list.stdout, /^normal-teardown\n {4}When the server process exits/m);
  t.match(list.stdout, /seed: 000_c3942d4e008b9feb\.txt/);
});

t.test("bad usage exits 2 with one line that says what to do", async (t) => {
  for (const [args, message] of [
    [["frobnicate"], /unknown command "frobnicate"; try `sockprobe help`/],
    [["run", "no-such-scenario"], /unknown scenario "no-such-scenario"; known: .*normal-teardown/],
    [["run", "--jobs", "0"], /--jobs takes a whole number >= 1, got "0"/],
    [["run", "--bogus"], /Unknown option '--bogus'/],
    [["explain"], /explain takes one scenario name/],
  ] as const) {
    const r = cli(...args);
    t.equal(r.status, 2, args.join(" "));
    t.match(r.stderr, message);
    t.notMatch(r.stderr, /\n\s+at /, "no stack trace");
  }
});

t.test("run one scenario: the table, exit 0, and the JSON report", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "sockprobe-cli-"));
  const json = join(dir, "report.json");
  const r = cli("run", "normal-teardown", "--json", json);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /normal-teardown .* PASS/);
  t.match(r.stdout, /^1 passed, 0 failed, 0 errors, 0 skipped$/m);
  t.match(r.stderr, /pass {2}normal-teardown \(\d+\.\d s\) {2}\[1\/1\]/, "plain progress lines off a terminal");
  const report = JSON.parse(readFileSync(json, "utf8"));
  t.equal(report.format, "sockprobe-report");
  t.equal(report.version, 1);
  t.equal(report.backend, "netns");
  t.match(report.kernel.release, /^\d+\.\d+/);
  t.equal(report.scenarios[0].name, "normal-teardown");
  t.equal(report.scenarios[0].verdict, "pass");
  t.ok(report.scenarios[0].evidence.transcript.length > 5, "the transcript is in the report");
});

t.test("explain tells the story with the evidence", async (t) => {
  const r = cli("explain", "normal-teardown");
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /Question: When the server process exits/);
  t.match(r.stdout, /The seed says: /);
  t.match(r.stdout, /System calls, every host on one clock/);
  t.match(r.stdout, /kang +\d+\.\d{6} {2}read\(\d+, 1024\) {2}= 0/);
  t.match(r.stdout, /\*\*\* exit kodos/, "the fault is on the same clock");
  t.match(r.stdout, /Packets[\s\S]*Flags \[S\]/);
});

t.test("without root it runs inside a user namespace, or says what to do", async (t) => {
  const r = runAsNobody(main, ["run", "normal-teardown", "--no-trace"]);
  if (r.status === 0) {
    t.match(r.stdout, /normal-teardown .* PASS/, "ran rootless in a user namespace");
  } else {
    t.equal(r.status, 2);
    t.match(r.stderr, /needs root/);
  }
});

// The command, killed with SIGKILL if it has not ended after `ms`: a process spinning in a
// synchronous call never runs its SIGTERM handler.
function cliKilledAfter(ms: number, args: readonly string[]) {
  const proc = spawn(process.execPath, ["--import=tsx", main, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  proc.stdout.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
  });
  proc.stderr.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), ms);
  return new Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (resolve) =>
      proc.once("close", (status, signal) => {
        clearTimeout(timer);
        resolve({ status, signal, stdout, stderr });
      }),
  );
}

// A run that can only fail, or never end, is refused before any lab is built: exit 2, one line
// naming the path and what is wrong, nothing run.
t.test("every output path is checked before a lab is built", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "sockprobe-cli-paths-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "a-file");
  writeFileSync(file, "");
  const report = fileURLToPath(new URL("../fixtures/report/base.json", import.meta.url));
  const cases: Array<[string[], RegExp]> = [
    [
      ["run", "--evidence", "/proc/x", "normal-teardown"],
      /^sockprobe: --evidence \/proc\/x: cannot create directory \/proc\/x: ENOENT .*its filesystem takes no new entries\n$/,
    ],
    [
      ["run", "--evidence", "/proc", "normal-teardown"],
      /^sockprobe: --evidence \/proc: cannot create directories in it/,
    ],
    [
      ["run", "--evidence", file, "normal-teardown"],
      /^sockprobe: --evidence .*a-file: .*a-file is a file, not a directory\n$/,
    ],
    [
      ["run", "--json", "/no/such/dir/r.json", "normal-teardown"],
      /^sockprobe: --json \/no\/such\/dir\/r\.json: directory \/no\/such\/dir does not exist\n$/,
    ],
    [
      ["run", "--json", "/proc/r.json", "normal-teardown"],
      /^sockprobe: --json \/proc\/r\.json: cannot create it: ENOENT/,
    ],
    [["run", "--junit", dir, "normal-teardown"], /^sockprobe: --junit .*: is a directory; name a file to write\n$/],
    [
      ["run", "--json", `${file}/r.json`, "normal-teardown"],
      /^sockprobe: --json .*a-file\/r\.json: .*a-file is not a directory\n$/,
    ],
    [
      ["run", "--json", join(dir, "r.xml"), "--junit", join(dir, "r.xml"), "normal-teardown"],
      /^sockprobe: --json and --junit both name .*r\.xml: each needs a file of its own\n$/,
    ],
    [
      ["report", report, "--html", "/no/such/dir/r.html"],
      /^sockprobe report: --html \/no\/such\/dir\/r\.html: directory \/no\/such\/dir does not exist\n$/,
    ],
    [
      ["tune", "--verify", "--json", "/no/such/dir/t.json"],
      /^sockprobe: --json \/no\/such\/dir\/t\.json: directory \/no\/such\/dir does not exist\n$/,
    ],
  ];
  // Side by side: each is a whole process start, and none builds anything.
  const results = await Promise.all(cases.map(([args]) => cliKilledAfter(30_000, args)));
  for (const [i, [args, message]] of cases.entries()) {
    const r = results[i] as Awaited<ReturnType<typeof cliKilledAfter>>;
    const what = args.join(" ");
    t.equal(r.status, 2, `${what}: exit 2 (${r.signal ? `killed by ${r.signal} after 30 s` : "ended"})`);
    t.match(r.stderr, message, `${what}: one line naming the path and what is wrong`);
    t.equal(r.stdout, "", `${what}: nothing ran`);
  }
  t.same(readdirSync(dir), ["a-file"], "the checks leave no file behind");
});

t.test("a report run captures packets without --evidence, in a directory gone at exit", async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), "sockprobe-cli-tmp-"));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const json = join(tmp, "report.json");
  const r = spawnSync(process.execPath, ["--import=tsx", main, "run", "normal-teardown", "--json", json], {
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, TMPDIR: tmp },
  });
  t.equal(r.status, 0, r.stderr);
  const s = JSON.parse(readFileSync(json, "utf8")).scenarios[0];
  t.ok(s.evidence.packets.length > 0, `the ladder has packets (${s.evidence.packets.length})`);
  t.ok(
    s.evidence.packets.some((p: { flags?: string }) => p.flags === "S"),
    "the handshake is among them",
  );
  t.same(s.evidence.pcapFiles, [], "no capture file is named that is gone");
  t.same(
    readdirSync(tmp).filter((f) => f.startsWith("sockprobe-")),
    [],
    "the private capture directory is removed at exit",
  );

  const evidence = join(tmp, "kept", "here");
  const kept = spawnSync(
    process.execPath,
    ["--import=tsx", main, "run", "normal-teardown", "--json", json, "--evidence", evidence],
    { encoding: "utf8", timeout: 120_000, env: { ...process.env, TMPDIR: tmp } },
  );
  t.equal(kept.status, 0, kept.stderr);
  const files = JSON.parse(readFileSync(json, "utf8")).scenarios[0].evidence.pcapFiles as string[];
  t.ok(files.length >= 2, "--evidence keeps a pcap file per host");
  for (const f of files) t.ok(f.startsWith(join(evidence, "normal-teardown")) && existsSync(f), `${f} is kept`);
});

// SIGTERM and Ctrl-C end a run promptly, labs closed: no process, namespace, link, mount or
// private directory of it remains.
for (const [signal, code] of [
  ["SIGTERM", 143],
  ["SIGINT", 130],
] as const) {
  t.test(`${signal} mid-run ends it within a bound and leaves nothing behind`, async (t) => {
    const tmp = mkdtempSync(join(tmpdir(), "sockprobe-cli-signal-"));
    t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
    const linksBefore = execFileSync("ip", ["-o", "link"], { encoding: "utf8" });
    const mountsBefore = readFileSync("/proc/self/mounts", "utf8");
    // peer-power-off waits seconds for the kernel's retransmission timers: a run to interrupt.
    const proc = spawn(
      process.execPath,
      ["--import=tsx", main, "run", "peer-power-off", "--json", join(tmp, "r.json")],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, TMPDIR: tmp } },
    );
    let stderr = "";
    proc.stderr.on("data", (d) => {
      stderr += d;
    });
    proc.stdout.resume();
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      proc.once("exit", (c, s) => resolve([c, s])),
    );
    const pid = proc.pid as number;
    // Mid-run: its lab is built and tcpdump captures on it.
    const family = await waitUntil(
      "the run's lab, capturing",
      () => descendants(pid),
      (d) => d.some((p) => comm(p) === "tcpdump") && namespacesHeldBy(pid).length >= 2,
      30_000,
      20,
    );
    const namespaces = namespacesHeldBy(pid);
    t.ok(
      readdirSync(tmp).some((f) => f.startsWith("sockprobe-run-")),
      "packets go to a private directory while it runs",
    );
    const sent = performance.now();
    proc.kill(signal);
    const bound = new Promise<"bound">((resolve) => setTimeout(() => resolve("bound"), 5000).unref());
    const ended = await Promise.race([exited, bound]);
    if (ended === "bound") {
      proc.kill("SIGKILL");
      t.fail(`still running 5 s after ${signal}`);
      await exited;
      return;
    }
    t.same(ended, [code, null], `exit code ${code} after ${Math.round(performance.now() - sent)} ms`);
    t.match(stderr, signal === "SIGINT" ? /sockprobe: interrupted/ : /sockprobe: terminated/);
    await expectGone(t, [...family, ...descendants(pid)], namespaces);
    t.equal(execFileSync("ip", ["-o", "link"], { encoding: "utf8" }), linksBefore, "no link left");
    t.equal(readFileSync("/proc/self/mounts", "utf8"), mountsBefore, "no mount left");
    t.same(
      readdirSync(tmp).filter((f) => f.startsWith("sockprobe-")),
      [],
      "the private capture directory is removed",
    );
  });
}
