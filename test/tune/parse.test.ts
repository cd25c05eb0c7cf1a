// The sysctl file parser: every form sysctl -p takes, and every kind of invalid line with its exact message.
import t from "tap";
import { tuneCommand } from "../../src/tune/command.js";
import { canonicalKey, parseSysctlText, readSysctlFile, SysctlFileError } from "../../src/tune/parse.js";
import { FRESH_NAMESPACE, fixture, scriptedIo } from "./helpers.js";

const kernelValue = (key: string) => FRESH_NAMESPACE[key];

t.test("a valid file with every syntax form", async (t) => {
  const f = readSysctlFile(fixture("valid.conf"), { kernelValue });
  t.same(
    f.lines.map((l) => [l.line, l.key, l.value, l.ignoreErrors]),
    [
      [4, "net.ipv4.tcp_retries2", "3", false],
      [5, "net.ipv4.tcp_keepalive_time", "10", false],
      [6, "net.ipv4.tcp_keepalive_intvl", "2", false],
      [7, "net.ipv4.tcp_keepalive_probes", "3", true],
      [8, "net.ipv4.no_such_key", "1", true],
      [9, "net.ipv4.ip_local_port_range", "10000 10599", false],
      [10, "net/ipv4/conf/eth0.100/forwarding", "1", false],
      [11, "net.ipv4.tcp_retries2", "4", false],
      [12, "net.ipv4.tcp_congestion_control", "bbr", false],
      [14, "net.core.somaxconn", "100", false],
    ],
    "comments (# ; indented), blank lines skipped; whitespace around = ignored; CRLF and tabs folded",
  );
  t.equal(f.values["net.ipv4.tcp_retries2"], "4", "the last line wins, as sysctl -p applies in order");
  t.equal(canonicalKey("net/ipv4/tcp_retries2"), "net.ipv4.tcp_retries2", "slashes become dots");
  t.equal(
    canonicalKey("net/ipv4/conf/eth0.100/forwarding"),
    "net/ipv4/conf/eth0.100/forwarding",
    "unless a part has a dot",
  );
});

const INVALID = [
  '2: no "=" in "net.ipv4.tcp_retries2 3": write key = value',
  "3: key kernel.panic is outside net.*: tune reads network sysctls only (net.ipv4.*, net.ipv6.*, net.core.*)",
  "4: empty value for net.ipv4.tcp_fin_timeout",
  '5: net.ipv4.tcp_keepalive_time needs a whole number, got "two hours"',
  '6: net.ipv4.ip_local_port_range needs two whole numbers (low high), got "1024"',
  '7: net.ipv4.tcp_retries1 needs a number (this kernel has "3"), got "x"',
  '8: no key before "=" in "= 5"',
  '9: invalid key "net.ipv4..tcp_syn_retries": letters, digits, _ and - between dots or slashes',
  '10: net.ipv4.tcp_syn_retries needs a whole number >= 0, got "-1"',
  '11: net.ipv4.ip_local_port_range needs low <= high, got "60999 32768"',
];

t.test("each kind of invalid line: its exact message with file and line number", async (t) => {
  const path = fixture("invalid.conf");
  const err = t.throws(() => readSysctlFile(path, { kernelValue })) as SysctlFileError;
  t.type(err, SysctlFileError);
  t.equal(err.name, "SysctlFileError");
  t.same(
    err.problems.map((p) => `${p.line}: ${p.message}`),
    INVALID,
  );
  t.equal(err.message, INVALID.map((m) => `${path}:${m}`).join("\n"), "every line named FILE:LINE");
  for (const [text, message] of [
    ["net.ipv4.tcp_retries2\n", 'x.conf:1: no "=" in "net.ipv4.tcp_retries2": write key = value'],
    ["\n\nnet.ipv4.tcp_retries2 = \n", "x.conf:3: empty value for net.ipv4.tcp_retries2"],
    ["vm.swappiness = 10\n", "x.conf:1: key vm.swappiness is outside net.*"],
    ["net.core.somaxconn = lots\n", 'x.conf:1: net.core.somaxconn needs a whole number, got "lots"'],
  ] as const) {
    t.throws(() => parseSysctlText(text, "x.conf", { kernelValue }), {
      message: new RegExp(`^${escapeRegExp(message)}`),
    });
  }
});

t.test("tune FILE with invalid lines: exit 2, one line each on stderr, no stack trace", async (t) => {
  const path = fixture("invalid.conf");
  for (const args of [[path], ["--json", path], ["--verify", path]]) {
    const { io, out, err } = scriptedIo();
    t.equal(await tuneCommand(args, io), 2, args.join(" "));
    t.equal(err.text, INVALID.map((m) => `sockprobe tune: ${path}:${m}\n`).join(""));
    t.notMatch(err.text, /\n\s+at /, "no stack trace");
    t.equal(out.text, "", "nothing on stdout");
  }
});

t.test("a file that cannot be read, and bad usage: exit 2 with what to do", async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [["/nonexistent/tuned.conf"], /^sockprobe tune: \/nonexistent\/tuned\.conf: cannot read the file \(ENOENT\)\n$/],
    [["a.conf", "b.conf"], /tune takes one FILE at most, got "a\.conf" "b\.conf"; see `sockprobe tune --help`/],
    [["--max-seconds", "5"], /--max-seconds applies to --verify only/],
    [["--verify", "--max-seconds", "0"], /--max-seconds takes a whole number >= 1, got "0"/],
    [["--verify", "--json"], /--json takes a file with --verify: --json OUT/],
    [["--backlog", "many"], /--backlog takes a whole number >= 0, got "many"/],
    [["--bogus"], /Unknown option '--bogus'/],
  ];
  for (const [args, message] of cases) {
    const { io, err } = scriptedIo();
    t.equal(await tuneCommand(args, io), 2, args.join(" "));
    t.match(err.text, message);
    t.notMatch(err.text, /\n\s+at /, "no stack trace");
  }
  const { io, out } = scriptedIo();
  t.equal(await tuneCommand(["--help"], io), 0);
  t.match(out.text, /sockprobe tune --verify \[FILE\] \[--max-seconds N\]/);
});

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
