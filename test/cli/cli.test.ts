// The command line as a user meets it: exit codes, messages without stack traces, the JSON report.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";
import { runAsNobody } from "../helpers/nobody.js";

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
