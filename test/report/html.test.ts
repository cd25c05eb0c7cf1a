// The HTML report: its pieces on tiny fixtures, then a page from real runs loaded in headless Chromium.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import t from "tap";
import type { Packet } from "../../src/evidence/capture.js";
import { tolerance } from "../../src/model/tcp.js";
import { renderHtml, reportCommand } from "../../src/report/html.js";
import {
  compressTime,
  eui64LinkLocal,
  hostResolver,
  type LadderHost,
  mergeCaptures,
  renderLadder,
} from "../../src/report/ladder.js";
import { buildReport, type Report } from "../../src/runner/report.js";
import { runScenario } from "../../src/runner/run-scenario.js";
import { scenario as normalTeardown } from "../../src/scenarios/normal-teardown.js";
import { scenario as peerPowerOff } from "../../src/scenarios/peer-power-off.js";
import type { Scenario } from "../../src/scenarios/scenario.js";
import { POLLIN } from "../../src/sys/constants.js";
import { waitUntil } from "../helpers/wait.js";

const FIXTURE = fileURLToPath(new URL("../fixtures/report/html-tiny.json", import.meta.url));
const tiny = (): Report => JSON.parse(readFileSync(FIXTURE, "utf8")) as Report;

const HOSTS: LadderHost[] = [
  { name: "kang", ipv4: "198.19.7.1", ipv6: "fd00:5b:7::1", mac: "02:5b:00:07:00:01" },
  { name: "kodos", ipv4: "198.19.7.2", ipv6: "fd00:5b:7::2", mac: "02:5b:00:07:00:02" },
  { name: "amy", ipv4: "198.19.7.3", ipv6: "fd00:5b:7::3", mac: "02:5b:00:07:00:03" },
];

function tcp(atUs: number, host: string, src: string, dst: string, flags: string, seq: number, len = 0): Packet {
  const out = src.endsWith(".1");
  return {
    atUs,
    host,
    kind: "tcp",
    family: "IPv4",
    src,
    dst,
    sport: out ? 40000 : 8080,
    dport: out ? 8080 : 40000,
    flags,
    seq,
    ack: 7,
    len,
    wireLen: 66 + len,
    capLen: 66 + len,
    truncated: false,
  };
}

t.test("time compression keeps order, marks long gaps as breaks and stays short", async (t) => {
  const times = [0, 0, 5, 40, 900, 19_000, 20_000 + 19_000, 5_000_000, 5_000_001, 900_000_000];
  const { y, breaks, height } = compressTime(times.map((atUs) => ({ atUs, above: 8, below: 5 })));
  for (let i = 1; i < y.length; i++) t.ok((y[i] as number) > (y[i - 1] as number), `row ${i} below row ${i - 1}`);
  for (let i = 1; i < y.length; i++) {
    t.ok((y[i] as number) - (y[i - 1] as number) >= 13 + 3, `rows ${i - 1} and ${i} leave room for their labels`);
  }
  t.same(
    breaks.map((b) => b.skippedUs),
    [20_000, 5_000_000 - 39_000, 900_000_000 - 5_000_001],
    "every gap of 20 ms or more is a break, with the time it skipped",
  );
  for (const b of breaks) {
    const i = times.indexOf(b.toUs);
    t.ok(b.y > (y[i - 1] as number) && b.y < (y[i] as number), "a break lies between the rows it separates");
  }
  t.ok(height < 400, `15 minutes of lab time take ${Math.round(height)} px, not thousands`);
  const lin = compressTime([0, 10_000].map((atUs) => ({ atUs, above: 8, below: 5 })));
  const near = compressTime([0, 30].map((atUs) => ({ atUs, above: 8, below: 5 })));
  t.ok(
    (lin.y[1] as number) - (lin.y[0] as number) > (near.y[1] as number) - (near.y[0] as number),
    "a longer gap (no break) looks longer",
  );
  t.equal(lin.breaks.length, 0);
});

t.test("addresses map to the hosts that own them", async (t) => {
  const resolve = hostResolver(HOSTS);
  t.equal(resolve("198.19.7.2"), "kodos", "IPv4");
  t.equal(resolve("fd00:5b:7:0:0:0:0:3"), "amy", "IPv6, written out in full");
  t.equal(resolve("FD00:5B:7::1"), "kang", "IPv6, upper case");
  t.equal(eui64LinkLocal("02:5b:01:e4:00:02"), "fe80:0:0:0:5b:1ff:fee4:2");
  t.equal(resolve("fe80::5b:ff:fe07:2"), "kodos", "the link-local address the MAC address yields (EUI-64)");
  t.equal(resolve("::ffff:198.19.7.1"), "kang", "IPv4-mapped IPv6");
  t.equal(resolve("198.19.7.9"), undefined, "an address no host has");
  t.equal(resolve("0.0.0.0"), undefined);
  t.equal(resolve("not an address"), undefined);
  t.equal(resolve(undefined), undefined);
});

t.test("a packet captured on both ports is one packet, from the sender's time to the receiver's", async (t) => {
  const resolve = hostResolver(HOSTS);
  const A = "198.19.7.1";
  const B = "198.19.7.2";
  const packets: Packet[] = [
    tcp(100, "kang", A, B, "S", 1000),
    tcp(104, "kodos", A, B, "S", 1000),
    tcp(110, "kodos", B, A, "S.", 5000),
    tcp(113, "kang", B, A, "S.", 5000),
    // Sent into nothing, then sent again and flooded by the switch to amy's port too.
    tcp(2000, "kang", A, B, "P.", 1001, 5),
    tcp(2003, "amy", A, B, "P.", 1001, 5),
    tcp(300_000, "kang", A, B, "P.", 1001, 5),
    tcp(300_004, "kodos", A, B, "P.", 1001, 5),
    {
      atUs: 50,
      host: "kang",
      kind: "icmp6",
      family: "IPv6",
      src: "fe80::1",
      dst: "ff02::16",
      wireLen: 90,
      capLen: 90,
      truncated: false,
    },
  ];
  const { wire, noise } = mergeCaptures(packets, resolve);
  t.equal(noise, 1, "IPv6 multicast noise is dropped");
  t.equal(wire.length, 4, "four packets crossed the wire, not eight copies");
  const [syn, synack, lost, again] = wire;
  t.match(syn, { from: "kang", to: "kodos", sentUs: 100, recvUs: 104 });
  t.equal(syn?.packet.seq, 0, "seq is relative to the ISN");
  t.match(synack, { from: "kodos", to: "kang", sentUs: 110, recvUs: 113 });
  t.match(lost, { from: "kang", to: "kodos", sentUs: 2000, recvUs: undefined, floodedTo: ["amy"] });
  t.match(again, { sentUs: 300_000, recvUs: 300_004 }, "the retransmission pairs with its own arrival");
  t.equal(again?.packet.seq, 1);

  const svg = renderLadder({ name: "x", hosts: HOSTS, transcript: [], packets, states: [], faults: [] }).svg;
  t.equal(svg.match(/<g class="packet /g)?.length, 4, "the ladder draws four arrows");
  t.equal(svg.match(/<g class="host-column/g)?.length, 3, "one column per host");
  t.equal(svg.match(/class="packet data lost"/g)?.length, 1, "the packet that never arrived is drawn as lost");
});

t.test("the page escapes whatever the report holds", async (t) => {
  const html = renderHtml(tiny());
  t.notMatch(html, /<script/i, "no script element, not even from a hostile check message");
  t.notMatch(html, /<img/i, "no image element from a hostile question");
  t.notMatch(html, /<b>bold<\/b>/, "markup in a scenario name stays text");
  t.match(
    html,
    "got &lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; at +2.500 s",
    "the message is shown, escaped",
  );
  t.match(html, "&lt;script&gt;alert(&#39;args&#39;)&lt;/script&gt;", "a transcript argument is escaped too");
  t.match(html, "What does &lt;img src=x onerror=alert(1)&gt; do?");
  t.match(html, 'href="#scenario-tiny-b-bold-b"', "the summary links to a safe anchor");
  t.match(html, 'id="scenario-tiny-b-bold-b"');
  t.match(html, "default-src 'none'", "a policy forbids every request");
  t.notMatch(html, /(?:src|href)="(?:https?:)?\/\//, "nothing points outside the page");
});

t.test("the summary answers each question once, with the expectation only where it differs", async (t) => {
  const report = tiny();
  const failing = report.scenarios[0] as Report["scenarios"][number];
  const checks = [
    { label: "poll on kang", pass: true, expected: "POLLIN|POLLRDHUP", observed: "POLLIN|POLLRDHUP", headline: true },
    {
      label: "idle death by keepalive",
      pass: true,
      expected: "4.06 s ± 354 ms",
      observed: "4.11 s",
      headline: true,
      timing: { expectedMs: 4064, observedMs: 4110, toleranceMs: 354 },
    },
    { label: "kodos's final state", pass: true, expected: "TIME_WAIT", observed: "TIME_WAIT", headline: false },
  ];
  const passing = {
    ...failing,
    name: "tiny-pass",
    verdict: "pass" as const,
    reason: undefined,
    checks,
    expected: "poll on kang: POLLIN|POLLRDHUP; idle death by keepalive: 4.06 s ± 354 ms",
    observed: "poll on kang: POLLIN|POLLRDHUP; idle death by keepalive: 4.11 s",
    evidence: { ...failing.evidence, packets: [] },
  };
  const html = renderHtml({ ...report, scenarios: [failing, passing] });
  const summary = html.slice(html.indexOf('<table class="summary">'), html.indexOf("</table>") + 8);
  const rows = summary.split("<tr").filter((r) => r.includes('href="#scenario-'));
  t.equal(rows.length, 2, "a row per scenario");
  const [bad, good] = rows as [string, string];
  const count = (text: string, what: string) => text.split(what).length - 1;
  t.equal(count(good, "POLLIN|POLLRDHUP"), 1, "an answer that matches its expectation is said once");
  t.match(good, /idle death by keepalive: <b>4\.11 s<\/b> <span class="expected">expected 4\.06 s ± 354 ms<\/span>/);
  t.notMatch(good, /TIME_WAIT/, "a check that is not a headline stays in the scenario's section");
  t.match(
    bad,
    /read on kang: <b>ECONNRESET<\/b> <span class="expected">expected 0 \(EOF\)<\/span>/,
    "a failure: observed against expected",
  );
  t.notMatch(summary, /<th>expected<\/th>|<th>observed<\/th>/, "no column of expectations repeating the answers");
  t.match(
    html,
    "no packets in this report: `sockprobe run --json FILE` captures them",
    "a report without packets says how to get them",
  );
});

t.test("the ladder of the fixture: columns, faults, states, errors", async (t) => {
  const html = renderHtml(tiny(), {
    predictedVsMeasured: [
      { label: "tune <x>", predictedMs: 200, measuredMs: 260, toleranceMs: 20, pass: false },
      { label: "accept queue (a count)", predictedMs: null, measuredMs: null, toleranceMs: null, pass: true },
    ],
  });
  t.match(html, /data-fault="partition"/);
  t.match(html, /data-fault="heal"/);
  t.match(html, /SYN_SENT → ESTABLISHED/);
  t.match(html, /RST sent \(TCP_STATE\)/);
  t.match(html, /read\(5, …\) Err#104 ECONNRESET/, "the blocked read returns with its errno, truss-style");
  t.match(html, /class="break" data-skipped-us="\d+"/, "the 2.5 s wait is a scale break");
  t.equal(html.match(/<g class="point /g)?.length, 2, "one point per timing check plus one per tune row");
  t.match(html, /data-label="tune &lt;x&gt;"/);
  t.match(
    html,
    /Not plotted \(no time predicted or measured[^<]*\): accept queue \(a count\)/,
    "a row without times is named, not drawn",
  );
  t.match(html, /<span class="verdict fail">fail<\/span>/);
});

t.test("thousands of packets: the first and last few hundred, and how many were left out", async (t) => {
  const packets: Packet[] = [];
  for (let i = 0; i < 5000; i++) {
    packets.push(tcp(1000 + i * 100, "kang", "198.19.7.1", "198.19.7.2", "P.", 1 + i * 10, 10));
    packets.push(tcp(1003 + i * 100, "kodos", "198.19.7.1", "198.19.7.2", "P.", 1 + i * 10, 10));
  }
  const l = renderLadder(
    { name: "flood", hosts: HOSTS, transcript: [], packets, states: [], faults: [] },
    { maxItems: 400 },
  );
  t.equal(l.svg.match(/<g class="packet /g)?.length, 400, "400 arrows drawn");
  t.match(l.svg, /4600 items left out \(4600 packets\)/, "the picture says what it left out");
  t.match(l.notes.join("\n"), /4600 of 5000 items left out/);
  const height = Number(/height="(\d+)"/.exec(l.svg)?.[1]);
  t.ok(height < 400 * 40, `and stays finite (${height} px)`);
});

t.test("reportCommand: usage and file errors are one line and exit 2", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "sockprobe-html-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const run = async (args: string[]) => {
    const err: string[] = [];
    const code = await reportCommand(args, { stderr: (s) => err.push(s), stdout: () => {} });
    return { code, err: err.join("") };
  };
  const write = (name: string, text: string) => {
    const f = join(dir, name);
    writeFileSync(f, text);
    return f;
  };
  const out = join(dir, "out.html");
  // The fixture's hostile scenario name is for the escaping tests; the schema allows only kebab-case.
  const valid = write("valid.json", readFileSync(FIXTURE, "utf8").replace("tiny <b>bold</b>", "tiny-bold"));
  const cases: Array<[string, string[], RegExp]> = [
    ["a missing file", [join(dir, "nope.json"), "--html", out], /cannot read .*nope\.json: ENOENT/],
    ["a directory", [dir, "--html", out], /cannot read .*: EISDIR/],
    ["not JSON", [write("bad.json", "{ not json"), "--html", out], /bad\.json is not JSON/],
    [
      "not a report",
      [write("other.json", '{"format":"junit"}'), "--html", out],
      /other\.json is not a sockprobe report/,
    ],
    [
      "an unsupported version",
      [write("v9.json", '{"format":"sockprobe-report","version":9,"scenarios":[]}'), "--html", out],
      /version 9 report; this sockprobe reads version 1/,
    ],
    ["no --html", [valid], /--html OUT\.html is missing/],
    ["no file", ["--html", out], /name the report to read/],
    ["an unknown option", [valid, "--html", out, "--pdf"], /Unknown option '--pdf'/],
  ];
  for (const [what, args, message] of cases) {
    const r = await run(args);
    t.equal(r.code, 2, `${what}: exit 2`);
    t.match(r.err, /^sockprobe report: [^\n]+\n$/, `${what}: one line on stderr`);
    t.match(r.err, message, `${what}: says what was wrong`);
  }
  t.notOk(existsSync(out), "no page written for a bad input");
  const ok = await run([valid, "--html", out]);
  t.equal(ok.code, 0);
  t.equal(ok.err, "");
  t.match(readFileSync(out, "utf8"), /^<!doctype html>/);
  // Rows of `tune --verify --json` join the plot.
  const tuneRows = write(
    "tune.json",
    JSON.stringify([
      { label: "keepalive death (1 s + 1 s × 3)", predictedMs: 4064, measuredMs: 4110, toleranceMs: 354, pass: true },
    ]),
  );
  t.equal((await run([valid, "--html", out, "--tune", tuneRows])).code, 0);
  t.match(readFileSync(out, "utf8"), /keepalive death \(1 s \+ 1 s × 3\)/);
  const badTune = await run([valid, "--html", out, "--tune", write("bad-tune.json", '{"rows":1}')]);
  t.equal(badTune.code, 2);
  t.match(badTune.err, /is not what `sockprobe tune --verify --json FILE` writes/);
});

// ---------------------------------------------------------------- real runs in a real browser

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

// Debian's chromium, installed if it is missing; the reason if that cannot be done.
function ensureChromium(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  const apt = (args: string[]) =>
    spawnSync("apt-get", args, {
      encoding: "utf8",
      timeout: 150_000,
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
  let r = apt(["install", "-y", "chromium"]);
  if (r.status !== 0) {
    apt(["update"]);
    r = apt(["install", "-y", "chromium"]);
  }
  if (existsSync(CHROMIUM)) return undefined;
  const said = `${r.error?.message ?? ""} ${r.stderr ?? ""}`.trim().split("\n").slice(-3).join(" ");
  return `${CHROMIUM} is missing and \`apt-get install -y chromium\` failed (exit ${r.status}): ${said}`;
}

// Runs in the page. A string, not a function: tsx would wrap a function's inner helpers in a
// `__name` call that does not exist in the browser.
const COLLECT_LADDERS = `[...document.querySelectorAll("svg.ladder")].map((svg) => {
  const num = (el, a) => Number(el ? el.getAttribute(a) : NaN);
  const texts = [...svg.querySelectorAll("text")].map((el) => ({ text: el.textContent || "", r: el.getBoundingClientRect() }));
  const overlaps = [];
  for (let i = 0; i < texts.length; i++) {
    for (let j = i + 1; j < texts.length; j++) {
      const a = texts[i];
      const b = texts[j];
      const ox = Math.min(a.r.right, b.r.right) - Math.max(a.r.left, b.r.left);
      const oy = Math.min(a.r.bottom, b.r.bottom) - Math.max(a.r.top, b.r.top);
      if (ox > 1 && oy > 1 && a.text && b.text) overlaps.push(JSON.stringify(a.text) + " / " + JSON.stringify(b.text));
    }
  }
  return [svg.getAttribute("data-scenario") || "", {
    columns: [...svg.querySelectorAll("g.host-column")].map((g) => g.getAttribute("data-host") || ""),
    height: svg.getBoundingClientRect().height,
    packets: [...svg.querySelectorAll("g.packet")].map((g) => {
      const line = g.querySelector("line");
      return {
        flags: g.getAttribute("data-flags") || "",
        kind: g.getAttribute("data-kind") || "",
        from: g.getAttribute("data-from") || "",
        to: g.getAttribute("data-to") || "",
        x1: num(line, "x1"), x2: num(line, "x2"), y1: num(line, "y1"), y2: num(line, "y2"),
      };
    }),
    states: [...svg.querySelectorAll("g.state")].map((g) => g.textContent || ""),
    faults: [...svg.querySelectorAll("g.fault")].map((g) => g.getAttribute("data-fault") || ""),
    breaks: svg.querySelectorAll("g.break").length,
    overlaps,
  }];
})`;

// Ends with SO_LINGER {1, 0} and close: a RST, after a partition that makes a fault to draw.
const lingerReset: Scenario = {
  name: "html-linger-reset",
  seed: "test/report/html.test.ts",
  question: "After a partition heals, does a close with SO_LINGER {1, 0} reset the peer at once?",
  seedSays:
    "The write made during the partition is retransmitted; the close sends a RST and the peer reads ECONNRESET.",
  faults: ["partition", "heal"],
  timeoutMs: 8000,
  async run(ctx) {
    const { lab } = ctx;
    const kang = await lab.addHost("kang");
    const kodos = await lab.addHost("kodos");
    const listener = await kodos.listen(8080);
    const client = await kang.connect(kodos.ipv4, 8080);
    const server = await listener.acceptAsync({ timeoutMs: 2000 });
    await lab.partition([kang], [kodos]);
    ctx.expectOk(await ctx.attempt("kang", "write", () => client.write("hello")), 5);
    await new Promise((r) => setTimeout(r, 30));
    await lab.heal();
    await server.poll(POLLIN, 5000);
    ctx.expectOk(await ctx.attempt("kodos", "read", () => server.read(1024)), "5 bytes");
    await server.setLinger(true, 0);
    const closedAt = ctx.now();
    await server.close();
    const woke = await ctx.pollNames("kang", client, POLLIN, 2000);
    ctx.expectTime(
      "kang woken by the RST",
      { ms: 0, toleranceMs: tolerance(0), why: "one RST across a LAN" },
      (woke.atUs - closedAt) / 1000,
    );
    ctx.expectErrno(await ctx.attempt("kang", "read", () => client.read(1024)), "ECONNRESET", { headline: true });
    await client.close();
    // The lab stops tcpdump (SIGINT) as soon as run() returns, dropping what it has not written yet.
    await waitUntil(
      "kodos's RST in the capture",
      () => lab.capturedPackets(),
      (packets) => packets.some((p) => p.flags?.includes("R") ?? false),
    );
  },
};

t.test("a page from real runs, in headless Chromium", async (t) => {
  const missing = ensureChromium();
  if (missing) {
    t.fail(missing);
    return;
  }
  let chromium: typeof import("playwright-core").chromium;
  try {
    ({ chromium } = await import("playwright-core"));
  } catch (e) {
    t.fail(`playwright-core cannot be loaded (npm install --save-dev playwright-core@1): ${(e as Error).message}`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "sockprobe-html-run-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const started = performance.now();
  const results = await Promise.all(
    [normalTeardown, lingerReset, peerPowerOff].map((s) =>
      runScenario(s, { captureDir: join(dir, "evidence"), trace: true }),
    ),
  );
  const report = buildReport(results, performance.now() - started);
  for (const r of report.scenarios) {
    t.not(r.verdict, "error", `${r.name} ran (${r.reason ?? "ok"})`);
    t.ok(r.evidence.packets.length > 0, `${r.name} captured packets`);
    t.ok(r.evidence.trace.available, `${r.name} recorded TCP states (${r.evidence.trace.reason ?? "ok"})`);
  }
  const tune = [{ label: "tune: keepalive probe", predictedMs: 1200, measuredMs: 1230, toleranceMs: 80, pass: true }];
  const file = join(dir, "report.html");
  writeFileSync(file, renderHtml(report, { predictedVsMeasured: tune }));

  let context: Awaited<ReturnType<typeof chromium.launchPersistentContext>>;
  const profile = mkdtempSync(join(tmpdir(), "sockprobe-chromium-"));
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1400, height: 900 },
      timeout: 60_000,
    });
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    t.fail(`chromium could not be launched: ${(e as Error).message.split("\n").slice(0, 4).join(" ")}`);
    return;
  }
  t.teardown(async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  });
  const page = await context.newPage();
  const problems: string[] = [];
  const requests: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ""}`));
  page.on("request", (r) => requests.push(r.url()));
  const url = pathToFileURL(file).href;
  await page.goto(url, { waitUntil: "load" });
  t.same(problems, [], "no console error and no failed request");
  t.same(requests, [url], "the page asks for nothing but itself");

  // The summary: one row per scenario, linking to its section.
  const links = await page.$$eval("table.summary a", (as) => as.map((a) => a.getAttribute("href")));
  t.equal(links.length, report.scenarios.length, "a summary row per scenario");
  for (const href of links) t.equal(await page.locator(href as string).count(), 1, `${href} leads to a section`);
  t.match(await page.textContent("header"), new RegExp(report.kernel.release.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));

  // Everything the ladders draw, read back from the rendered DOM.
  type Seen = {
    columns: string[];
    height: number;
    packets: Array<{
      flags: string;
      kind: string;
      from: string;
      to: string;
      x1: number;
      x2: number;
      y1: number;
      y2: number;
    }>;
    states: string[];
    faults: string[];
    breaks: number;
    overlaps: string[];
  };
  const ladders = (await page.evaluate(COLLECT_LADDERS)) as Array<readonly [string, Seen]>;
  const byName = new Map(ladders);
  t.equal(ladders.length, report.scenarios.length, "a ladder per scenario");
  for (const s of report.scenarios) {
    const l = byName.get(s.name);
    if (!l) {
      t.fail(`no ladder for ${s.name}`);
      continue;
    }
    t.same(
      l.columns,
      s.hosts.map((h) => h.name),
      `${s.name}: one column per host, in order`,
    );
    t.same(l.overlaps, [], `${s.name}: no two labels overlap`);
    t.ok(l.height < 8000, `${s.name}: ${Math.round(l.height)} px tall`);
    const tcpArrows = l.packets.filter((p) => p.kind === "tcp");
    for (const flags of ["S", "S.", "."]) {
      t.ok(
        tcpArrows.some((p) => p.flags === flags),
        `${s.name}: an arrow for the handshake's [${flags}]`,
      );
    }
    const syn = tcpArrows.find((p) => p.flags === "S");
    t.ok(syn && syn.y2 > syn.y1, `${s.name}: the SYN slopes down from send to receipt`);
    t.ok(
      l.states.some((x) => x.includes("SYN_SENT → ESTABLISHED")),
      `${s.name}: state labels`,
    );
  }
  const nt = byName.get("normal-teardown");
  const fins = nt?.packets.filter((p) => p.flags.includes("F")) ?? [];
  t.same(new Set(fins.map((p) => `${p.from}>${p.to}`)), new Set(["kodos>kang", "kang>kodos"]), "FINs both ways");
  t.ok(
    nt?.states.some((x) => x.includes("ESTABLISHED → FIN_WAIT1")),
    "kodos's ESTABLISHED → FIN_WAIT1",
  );
  t.ok(nt?.faults.includes("exit"), "the application exit is marked");
  const lr = byName.get("html-linger-reset");
  const rst = lr?.packets.filter((p) => p.flags.includes("R")) ?? [];
  t.ok(
    rst.some((p) => p.from === "kodos" && p.to === "kang"),
    `a RST arrow from kodos to kang (RST arrows: ${JSON.stringify(rst.map((p) => `${p.from}>${p.to} [${p.flags}]`))})`,
  );
  t.ok(
    lr?.states.some((x) => x.includes("ESTABLISHED → CLOSE")),
    "the reset socket closes",
  );
  t.same(lr?.faults, ["partition", "heal"], "the partition and its healing are marked");
  const po = byName.get("peer-power-off");
  t.same(po?.faults, ["powerOff", "powerOff"], "both power-offs are marked");
  t.ok((po?.breaks ?? 0) >= 3, "seconds of retransmission timers become scale breaks");
  t.ok(
    (po?.packets ?? []).some((p) => p.kind === "tcp" && Math.abs(p.x2 - p.x1) > 0),
    "arrows cross columns",
  );

  // The plot: one point per timing check and per tune row, failures marked.
  const timing = report.scenarios.flatMap((s) => s.checks.filter((c) => c.timing));
  t.ok(timing.length >= 3, `the runs made ${timing.length} timing checks`);
  const points = await page.$$eval("svg.timing-plot g.point", (gs) =>
    gs.map((g) => ({ label: g.getAttribute("data-label"), pass: g.getAttribute("data-pass") })),
  );
  t.equal(points.length, timing.length + tune.length, "one point per timing check and tune row");
  t.equal(points.filter((p) => p.pass === "false").length, timing.filter((c) => !c.pass).length, "failures marked");
  t.ok(points.some((p) => p.label === "tune: keepalive probe"));

  // For a person to look at.
  await page.addStyleTag({ content: ".ladder-wrap{overflow:visible!important}" });
  await page.screenshot({ path: "/tmp/sockprobe-html-full.png", fullPage: true });
  const shots = await page.$$("svg.ladder");
  for (const [i, el] of shots.entries()) await el.screenshot({ path: `/tmp/sockprobe-html-ladder-${i}.png` });
  await (await page.$("section#timings"))?.screenshot({ path: "/tmp/sockprobe-html-plot.png" });
  t.same(problems, [], "still no console error after the screenshots");
});
