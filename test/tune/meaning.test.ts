// What a crafted file means, against numbers computed by hand from the model's formulas.
import t from "tap";
import { tuneCommand } from "../../src/tune/command.js";
import type { MeaningRow } from "../../src/tune/meaning.js";
import { FRESH_NAMESPACE, fixture, scriptedIo } from "./helpers.js";

// meaning.conf: retries2=3, keepalive 10/2/3, syn_retries=3, fin_timeout=30, ports 10000-10599,
// tw_reuse=1, somaxconn=100. A LAN is assumed: RTO 204 ms (200 ms + 0.1 ms in 4 ms jiffies), srtt 0.1 ms.
//
// retries2=3: tail loss probe min(2 × 0.1 + 200, 204) = 200.2 ms; first RTO retransmission 200.2 + 204
// = 404.2 ms; limit (2^4 − 1) × 200 = 3000 ms from there; the RTO doubles: 812.2 (408 past the start),
// 1628.2 (1224), 3260.2 (2856 < 3000), 6524.2 (6120 ≥ 3000): the error at 6524.2 ms, 5 retransmissions.
// Defaults (retries2=15): limit (2^10 − 1) × 200 + 6 × 120000 = 924600 ms; error at 928892.2 ms.
// TCP_USER_TIMEOUT 5000: 404.2 + 5000 = 5404.2 ms.
// keepalive: 10 + 2 × 3 = 16 s; defaults 7200 + 75 × 9 = 7875 s.
// syn_retries=3 with tcp_syn_linear_timeouts=4: limit (2^4 − 1) × 1 s = 15 s; SYNs at 1, 2, 3, 4, 5, 7,
// 11 s, then 19 s ≥ 15 s: 19 s. Defaults (6): limit 127 s; ..., 35, 67, 131: 131 s.
// FIN_WAIT2 30 s (defaults 60 s); TIME_WAIT 60 s; ports 600 per minute (defaults 28232);
// accept queue min(511, 100) + 1 = 101 (defaults min(511, 4096) + 1 = 512); with --backlog 50: 51.
const HAND: Record<string, [number | null, number | null]> = {
  "dead peer noticed while sending": [6524.2, 928892.2],
  "dead peer noticed while sending, with TCP_USER_TIMEOUT=5000 ms": [5404.2, 5404.2],
  "dead peer noticed while idle, with SO_KEEPALIVE": [16_000, 7_875_000],
  "connect() to a host that never answers fails": [19_000, 131_000],
  "orphaned FIN_WAIT2 (closed by its application) lasts": [30_000, 60_000],
  "TIME_WAIT lasts": [60_000, 60_000],
  "new connections per minute to one destination": [600, 28232],
  tcp_tw_reuse: [1, 2],
  "TIME_WAIT sockets at most": [131072, 131072],
  "accept queue (connections waiting for accept())": [101, 512],
  "SYN queue without cookies (tcp_max_syn_backlog)": [2048, 2048],
  tcp_abort_on_overflow: [0, 0],
};

t.test("--json: every row with name, value, unit, formula and the defaults' value", async (t) => {
  const { io, out, err } = scriptedIo();
  t.equal(await tuneCommand([fixture("meaning.conf"), "--json", "--user-timeout", "5000"], io), 0, err.text);
  const rows = JSON.parse(out.text) as MeaningRow[];
  t.same(
    rows.map((r) => r.name),
    Object.keys(HAND),
  );
  for (const r of rows) {
    const [value, dflt] = HAND[r.name] as [number, number];
    const round = (x: number | null) => (x === null ? null : Math.round(x * 10) / 10);
    t.equal(round(r.value), value, `${r.name}: value`);
    t.equal(round(r.defaultValue), dflt, `${r.name}: defaults`);
    t.ok(r.unit && typeof r.formula === "string" && r.formula.length > 20, `${r.name}: unit and formula`);
  }
});

t.test("the printed meaning: each figure, its formula, the defaults beside it", async (t) => {
  const { io, out } = scriptedIo();
  t.equal(await tuneCommand([fixture("meaning.conf"), "--user-timeout", "5000"], io), 0);
  const text = out.text;
  t.match(text, /^sockprobe tune: what the sysctls of .*meaning\.conf mean for connections$/m);
  t.match(text, /times assume a LAN \(RTT 0\.1 ms, RTO 204 ms, HZ=250\)/);
  t.match(text, /^dead peer noticed while sending: 6\.52 s {3}\(defaults: 929 s \(15\.5 min\)\)$/m);
  t.match(
    text,
    /tcp_retries2=3 → \(2\^4 − 1\) × 200 ms = 3\.00 s, counted from the first RTO retransmission at 404 ms/,
  );
  t.match(text, /retransmissions at 200, 404, 812, 1628, 3260 ms, error at 6524 ms \(5 retransmissions\)/);
  t.match(text, /^dead peer noticed while sending, with TCP_USER_TIMEOUT=5000 ms: 5\.40 s/m);
  t.match(text, /404 ms \+ 5000 ms = 5404 ms/);
  t.match(text, /per socket: the application sets it with setsockopt\(IPPROTO_TCP, TCP_USER_TIMEOUT, ms\)/);
  t.match(text, /^dead peer noticed while idle, with SO_KEEPALIVE: 16\.0 s {3}\(defaults: 7875 s \(2\.19 h\)\)$/m);
  t.match(text, /tcp_keepalive_time \+ tcp_keepalive_intvl × tcp_keepalive_probes = 10 s \+ 2 s × 3 = 16\.0 s/);
  t.match(text, /only sockets with SO_KEEPALIVE on/);
  t.match(text, /^connect\(\) to a host that never answers fails: 19\.0 s {3}\(defaults: 131 s \(2\.2 min\)\)$/m);
  t.match(text, /tcp_syn_retries=3 → \(2\^4 − 1\) × 1 s = 15\.0 s from the first SYN/);
  t.match(text, /SYNs resent at 1, 2, 3, 4, 5, 7, 11 s/);
  t.match(text, /^orphaned FIN_WAIT2 \(closed by its application\) lasts: 30\.0 s {3}\(defaults: 60\.0 s\)$/m);
  t.match(text, /^TIME_WAIT lasts: 60\.0 s {3}\(defaults: 60\.0 s\)$/m);
  t.match(text, /^new connections per minute to one destination: 600 per minute {3}\(defaults: 28232 per minute\)$/m);
  t.match(text, /\(10599 − 10000 \+ 1\) ports, each held 60 s by TIME_WAIT = 600 per minute \(10 per second\)/);
  t.match(text, /^tcp_tw_reuse: 1 {3}\(defaults: 2\)$/m);
  t.match(text, /tcp_max_tw_buckets=131072: at most that many TIME_WAIT sockets/);
  t.match(
    text,
    /^accept queue \(connections waiting for accept\(\)\): 101 connections {3}\(defaults: 512 connections\)$/m,
  );
  t.match(text, /min\(backlog 511, net\.core\.somaxconn 100\) \+ 1 = 101/);
  t.match(text, /tcp_syncookies=1: .* tcp_max_syn_backlog=2048 only matters with tcp_syncookies=0/);
  t.match(text, /tcp_abort_on_overflow=0: when the accept queue is full, the client's final ACK is dropped/);

  const small = scriptedIo();
  t.equal(await tuneCommand([fixture("meaning.conf"), "--backlog", "50"], small.io), 0);
  t.match(
    small.out.text,
    /accept queue \(connections waiting for accept\(\)\): 51 connections {3}\(defaults: 51 connections\)/,
  );
});

t.test("without FILE: the sysctls in force in this namespace, read only", async (t) => {
  // retries2=5: ..., 6524.2 (6120 < 12600), 13052.2 (12648 ≥ (2^6 − 1) × 200 = 12600): 13.1 s.
  const reads: string[] = [];
  const inForce = { ...FRESH_NAMESPACE, "net.ipv4.tcp_retries2": "5", "net.core.somaxconn": "10" };
  const { io, out } = scriptedIo(inForce);
  const read = io.readSysctl as (key: string) => string | undefined;
  const code = await tuneCommand([], {
    ...io,
    readSysctl: (key) => {
      reads.push(key);
      return read(key);
    },
  });
  t.equal(code, 0);
  t.match(out.text, /^sockprobe tune: what the sysctls in force in this network namespace mean for connections$/m);
  t.match(out.text, /^dead peer noticed while sending: 13\.1 s {3}\(defaults: 929 s \(15\.5 min\)\)$/m);
  t.match(out.text, /^accept queue \(connections waiting for accept\(\)\): 11 connections/m);
  t.ok(reads.includes("net.ipv4.tcp_retries2") && reads.every((k) => k.startsWith("net.")), "net.* keys read");

  // A kernel without tcp_syn_linear_timeouts doubles from the first SYN: 1, 3, 7, 15 s.
  const older = Object.entries(FRESH_NAMESPACE).filter(([k]) => k !== "net.ipv4.tcp_syn_linear_timeouts");
  const old = scriptedIo(Object.fromEntries(older));
  t.equal(await tuneCommand([fixture("meaning.conf")], old.io), 0);
  t.match(
    old.out.text,
    /^connect\(\) to a host that never answers fails: 15\.0 s {3}\(defaults: 127 s \(2\.1 min\)\)$/m,
  );
});
