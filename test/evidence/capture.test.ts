// Does the capture see what the kernel put on a veth, and does the pcap reader decode it as tcpdump does?
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t, { type Test } from "tap";
import {
  type Capture,
  CaptureError,
  formatPacket,
  type Packet,
  parsePcap,
  readPcap,
  relativeSeq,
  startCapture,
} from "../../src/evidence/capture.js";
import { run, spawnIn } from "../../src/proc/exec.js";
import { Netns, Socket } from "../../src/sys/index.js";
import { waitUntil } from "../helpers/wait.js";

const CLIENT = "198.18.0.1";
const SERVER = "198.18.0.2";
const CLIENT_PORT = 40000;
const SERVER_PORT = 8080;
// Every wait below is bounded by this; the exchange itself takes milliseconds on a veth.
const WAIT_MS = 5_000;

// pids of every capture child these tests started, checked for leftovers at the end.
const startedPids: number[] = [];

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), "sockprobe-capture-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// ---- crafted pcap files -------------------------------------------------------------------------

interface TcpSpec {
  src?: readonly number[];
  dst?: readonly number[];
  sport?: number;
  dport?: number;
  seq?: number;
  ack?: number;
  flags?: number;
  win?: number;
  options?: Buffer;
  payload?: Buffer;
}

function tcpHeader(s: TcpSpec): Buffer {
  const opts = s.options ?? Buffer.alloc(0);
  const h = Buffer.alloc(20 + opts.length);
  h.writeUInt16BE(s.sport ?? CLIENT_PORT, 0);
  h.writeUInt16BE(s.dport ?? SERVER_PORT, 2);
  h.writeUInt32BE(s.seq ?? 0, 4);
  h.writeUInt32BE(s.ack ?? 0, 8);
  h[12] = ((20 + opts.length) / 4) << 4;
  h[13] = s.flags ?? 0x02;
  h.writeUInt16BE(s.win ?? 64240, 14);
  opts.copy(h, 20);
  return Buffer.concat([h, s.payload ?? Buffer.alloc(0)]);
}

function ipv4Tcp(s: TcpSpec): Buffer {
  const seg = tcpHeader(s);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + seg.length, 2);
  ip[8] = 64;
  ip[9] = 6;
  Buffer.from(s.src ?? [198, 18, 0, 1]).copy(ip, 12);
  Buffer.from(s.dst ?? [198, 18, 0, 2]).copy(ip, 16);
  return Buffer.concat([ip, seg]);
}

function ether(type: number, body: Buffer): Buffer {
  const h = Buffer.alloc(14);
  Buffer.from([2, 0, 0, 0, 0, 2]).copy(h, 0);
  Buffer.from([2, 0, 0, 0, 0, 1]).copy(h, 6);
  h.writeUInt16BE(type, 12);
  return Buffer.concat([h, body]);
}

function sll2(type: number, body: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(type, 0);
  h.writeUInt32BE(3, 4);
  h.writeUInt16BE(1, 8);
  h[10] = 4;
  h[11] = 6;
  return Buffer.concat([h, body]);
}

interface Rec {
  sec: number;
  frac: number;
  data: Buffer;
  /** Bytes on the wire, when more than were captured. */
  orig?: number;
}

function pcap(recs: readonly Rec[], o: { le?: boolean; nano?: boolean; linkType?: number } = {}): Buffer {
  const le = o.le ?? true;
  const u32 = (b: Buffer, v: number, off: number) => (le ? b.writeUInt32LE(v, off) : b.writeUInt32BE(v, off));
  const u16 = (b: Buffer, v: number, off: number) => (le ? b.writeUInt16LE(v, off) : b.writeUInt16BE(v, off));
  const g = Buffer.alloc(24);
  u32(g, o.nano ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  u16(g, 2, 4);
  u16(g, 4, 6);
  u32(g, 262144, 16);
  u32(g, o.linkType ?? 1, 20);
  const parts: Buffer[] = [g];
  for (const r of recs) {
    const h = Buffer.alloc(16);
    u32(h, r.sec, 0);
    u32(h, r.frac, 4);
    u32(h, r.data.length, 8);
    u32(h, r.orig ?? r.data.length, 12);
    parts.push(h, r.data);
  }
  return Buffer.concat(parts);
}

// mss 1460, sackOK, TS val 1000 ecr 0, nop, wscale 7: what Linux puts on a SYN.
const SYN_OPTIONS = Buffer.from([2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 3, 232, 0, 0, 0, 0, 1, 3, 3, 7]);
const T0 = 1_700_000_000;

function handshakeRecords(): Rec[] {
  return [
    { sec: T0, frac: 0, data: ether(0x0800, ipv4Tcp({ seq: 1000, flags: 0x02, options: SYN_OPTIONS })) },
    {
      sec: T0,
      frac: 1234,
      data: ether(
        0x0800,
        ipv4Tcp({
          src: [198, 18, 0, 2],
          dst: [198, 18, 0, 1],
          sport: SERVER_PORT,
          dport: CLIENT_PORT,
          seq: 0xfffffff0,
          ack: 1001,
          flags: 0x12,
          win: 65160,
        }),
      ),
    },
    {
      sec: T0,
      frac: 2000,
      data: ether(
        0x0800,
        ipv4Tcp({ seq: 1001, ack: 0xfffffff1, flags: 0x18, win: 502, payload: Buffer.from("hello") }),
      ),
    },
  ];
}

t.test("reads a little-endian microsecond pcap", async (t) => {
  const ps = parsePcap(pcap(handshakeRecords()), { host: "kang", originRealtimeUs: T0 * 1e6 });
  t.equal(ps.length, 3);
  t.match(ps[0], {
    atUs: 0,
    host: "kang",
    kind: "tcp",
    family: "IPv4",
    src: CLIENT,
    dst: SERVER,
    sport: CLIENT_PORT,
    dport: SERVER_PORT,
    flags: "S",
    seq: 1000,
    ack: 0,
    len: 0,
    win: 64240,
    mss: 1460,
    wscale: 7,
    options: "mss 1460,sackOK,TS val 1000 ecr 0,nop,wscale 7",
    truncated: false,
  });
  t.match(ps[1], { atUs: 1234, flags: "S.", seq: 0xfffffff0, ack: 1001, src: SERVER, sport: SERVER_PORT });
  t.match(ps[2], { atUs: 2000, flags: "P.", len: 5, seq: 1001 });
  t.equal(
    formatPacket(ps[1] as Packet),
    "+0.001234 kang 198.18.0.2.8080 > 198.18.0.1.40000: Flags [S.], seq 4294967280, ack 1001, win 65160, length 0",
  );
  // The end of the data wraps past 2^32 like the sequence space does.
  t.equal(
    formatPacket({ ...(ps[2] as Packet), seq: 0xfffffffe }),
    "+0.002000 kang 198.18.0.1.40000 > 198.18.0.2.8080: Flags [P.], seq 4294967294:3, ack 4294967281, win 502, length 5",
  );
  const epoch = parsePcap(pcap(handshakeRecords()))[0] as Packet;
  t.equal(epoch.atUs, T0 * 1e6, "without an origin, times are epoch µs");
  t.match(formatPacket(epoch), /^2023-11-14T22:13:20\.000000Z 198\.18\.0\.1\.40000 > /);
});

t.test("big-endian and nanosecond files decode to the same packets", async (t) => {
  const le = parsePcap(pcap(handshakeRecords()), { host: "h" });
  const be = parsePcap(pcap(handshakeRecords(), { le: false }), { host: "h" });
  t.same(be, le);
  const nanoRecs = handshakeRecords().map((r) => ({ ...r, frac: r.frac * 1000 + 7 }));
  const nano = parsePcap(pcap(nanoRecs, { le: false, nano: true }), { originRealtimeUs: T0 * 1e6 });
  t.equal(nano[1]?.atUs, 1234.007);
  t.equal(nano[1]?.flags, "S.");
});

t.test("reads the file from disk", async (t) => {
  const file = join(tempDir(t), "h.pcap");
  writeFileSync(file, pcap(handshakeRecords()));
  const ps = await readPcap(file, { host: "disk" });
  t.same(
    ps.map((p) => p.flags),
    ["S", "S.", "P."],
  );
  await t.rejects(readPcap(join(tempDir(t), "missing.pcap")), { code: "ENOENT" });
});

t.test("truncated packets are marked, not fatal", async (t) => {
  const full = ether(0x0800, ipv4Tcp({ seq: 77, flags: 0x10, payload: Buffer.from("abcdef") }));
  // Snap length cut inside the TCP header: ports and sequence survive, flags do not.
  const cutTcp = full.subarray(0, 14 + 20 + 8);
  // Ethernet pads short frames to 60 bytes: the IP length, not the frame, says there is no payload.
  const padded = Buffer.concat([ether(0x0800, ipv4Tcp({ flags: 0x10 })), Buffer.alloc(6)]);
  const whole = pcap([
    { sec: T0, frac: 0, data: cutTcp, orig: full.length },
    { sec: T0, frac: 1, data: full.subarray(0, 20), orig: full.length },
    { sec: T0, frac: 2, data: padded },
    { sec: T0, frac: 3, data: full },
  ]);
  // The file also ends in the middle of the last record, as when tcpdump is killed mid-write.
  const ps = parsePcap(whole.subarray(0, whole.length - 4));
  t.equal(ps.length, 4);
  t.match(ps[0], {
    kind: "tcp",
    sport: CLIENT_PORT,
    dport: SERVER_PORT,
    seq: 77,
    truncated: true,
    wireLen: full.length,
  });
  t.equal(ps[0]?.flags, undefined);
  t.match(ps[1], { kind: "other", family: "IPv4", truncated: true, capLen: 20 });
  t.match(ps[2], { kind: "tcp", flags: ".", len: 0, truncated: false });
  t.match(ps[3], { kind: "tcp", flags: ".", len: 6, truncated: true, capLen: full.length - 4 });
  t.match(formatPacket(ps[0] as Packet), /Flags \[\?\].*\[\|TCP header cut off\]$/);
  // A record header cut in half is dropped quietly; a file shorter than its header is not a pcap.
  t.equal(parsePcap(whole.subarray(0, 24 + 16 + cutTcp.length + 5)).length, 1);
  t.throws(() => parsePcap(Buffer.alloc(10)), /shorter than the 24-byte header/);
  const ng = Buffer.alloc(28);
  ng.writeUInt32LE(0x0a0d0d0a, 0);
  t.throws(() => parsePcap(ng), /pcapng files are not supported/);
  t.throws(() => parsePcap(Buffer.alloc(24, 0x11)), /not a pcap file: magic 0x11111111/);
});

t.test("an IPv6 TCP packet behind a hop-by-hop header, over SLL2", async (t) => {
  const seg = tcpHeader({
    sport: 443,
    dport: 50000,
    seq: 5,
    ack: 9,
    flags: 0x19,
    win: 100,
    payload: Buffer.from("xyz"),
  });
  const hbh = Buffer.from([6, 0, 1, 4, 0, 0, 0, 0]); // next header TCP, 8 bytes, PadN
  const ip6 = Buffer.alloc(40);
  ip6[0] = 0x60;
  ip6.writeUInt16BE(hbh.length + seg.length, 4);
  ip6[6] = 0; // hop-by-hop options first
  ip6[7] = 64;
  Buffer.from("20010db8000000000000000000000001", "hex").copy(ip6, 8);
  Buffer.from("20010db8000100000000000000000abc", "hex").copy(ip6, 24);
  const frame = sll2(0x86dd, Buffer.concat([ip6, hbh, seg]));
  // A later fragment carries no transport header: it must not be read as one.
  const frag = Buffer.alloc(40);
  frag[0] = 0x60;
  frag.writeUInt16BE(8 + 16, 4);
  frag[6] = 44;
  Buffer.from("20010db8000000000000000000000001", "hex").copy(frag, 8);
  Buffer.from("fe800000000000000000000000000002", "hex").copy(frag, 24);
  const fragHdr = Buffer.from([6, 0, 0x05, 0xa8, 0, 0, 0, 1]); // offset 181 * 8
  const fragFrame = sll2(0x86dd, Buffer.concat([frag, fragHdr, Buffer.alloc(16)]));
  const ps = parsePcap(
    pcap(
      [
        { sec: T0, frac: 0, data: frame },
        { sec: T0, frac: 1, data: fragFrame },
      ],
      { linkType: 276 },
    ),
    { host: "v6" },
  );
  t.match(ps[0], {
    kind: "tcp",
    family: "IPv6",
    src: "2001:db8::1",
    dst: "2001:db8:1::abc",
    sport: 443,
    dport: 50000,
    flags: "FP.",
    seq: 5,
    ack: 9,
    len: 3,
    win: 100,
    truncated: false,
  });
  t.equal(
    formatPacket({ ...(ps[0] as Packet), atUs: 0 }),
    "+0.000000 v6 2001:db8::1.443 > 2001:db8:1::abc.50000: Flags [FP.], seq 5:8, ack 9, win 100, length 3",
  );
  t.match(ps[1], { kind: "other", family: "IPv6", dst: "fe80::2", proto: 6, note: /fragment at offset 1448/ });
  t.equal(ps[1]?.sport, undefined);
});

t.test("ARP and ICMP over Linux cooked capture (SLL)", async (t) => {
  const arp = Buffer.from([0, 1, 8, 0, 6, 4, 0, 2, 2, 0, 0, 0, 0, 2, 198, 18, 0, 2, 2, 0, 0, 0, 0, 1, 198, 18, 0, 1]);
  const icmp = Buffer.alloc(20 + 8);
  icmp[0] = 0x45;
  icmp.writeUInt16BE(28, 2);
  icmp[9] = 1;
  Buffer.from([198, 18, 0, 1]).copy(icmp, 12);
  Buffer.from([198, 18, 0, 2]).copy(icmp, 16);
  icmp[20] = 3;
  icmp[21] = 3;
  const sll = (type: number, body: Buffer) => {
    const h = Buffer.alloc(16);
    h.writeUInt16BE(1, 2);
    h.writeUInt16BE(6, 4);
    h.writeUInt16BE(type, 14);
    return Buffer.concat([h, body]);
  };
  const ps = parsePcap(
    pcap(
      [
        { sec: T0, frac: 0, data: sll(0x0806, arp) },
        { sec: T0, frac: 5, data: sll(0x0800, icmp) },
      ],
      { linkType: 113 },
    ),
    { originRealtimeUs: T0 * 1e6 },
  );
  t.match(ps[0], { kind: "arp", arpOp: "reply", src: SERVER, dst: CLIENT, hwSrc: "02:00:00:00:00:02" });
  t.equal(formatPacket(ps[0] as Packet), "+0.000000 ARP, Reply 198.18.0.2 is-at 02:00:00:00:00:02");
  t.match(ps[1], { kind: "icmp", icmpType: 3, icmpCode: 3, len: 8 });
  t.equal(formatPacket(ps[1] as Packet), "+0.000005 198.18.0.1 > 198.18.0.2: ICMP port unreachable, length 8");
});

t.test("relativeSeq counts from each direction's ISN, across the 2^32 wrap", async (t) => {
  const rel = relativeSeq(parsePcap(pcap(handshakeRecords())));
  t.match(rel[0], { seq: 0, seqAbs: 1000, ackAbs: 0 });
  t.match(rel[1], { seq: 0, seqAbs: 0xfffffff0, ack: 1, ackAbs: 1001 });
  t.match(rel[2], { seq: 1, seqAbs: 1001, ack: 1, ackAbs: 0xfffffff1 });
  // Joined mid-stream: the first segment seen in each direction is the base.
  const mid = relativeSeq(parsePcap(pcap(handshakeRecords().slice(2))));
  t.match(mid[0], { seq: 0, ack: 1 });
});

// ---- the real kernel ----------------------------------------------------------------------------

interface Lab {
  client: Netns;
  server: Netns;
}

async function twoHosts(t: Test): Promise<Lab> {
  const client = Netns.create();
  t.teardown(() => client.close());
  const server = Netns.create();
  t.teardown(() => server.close());
  await run(["ip", "link", "add", "va", "type", "veth", "peer", "name", "vb"], { netns: client.path });
  await run(["ip", "link", "set", "vb", "netns", server.path], { netns: client.path });
  await run(["ip", "addr", "add", `${CLIENT}/24`, "dev", "va"], { netns: client.path });
  await run(["ip", "addr", "add", `${SERVER}/24`, "dev", "vb"], { netns: server.path });
  await run(["ip", "link", "set", "va", "up"], { netns: client.path });
  await run(["ip", "link", "set", "vb", "up"], { netns: server.path });
  return { client, server };
}

async function capture(t: Test, opts: Parameters<typeof startCapture>[0]): Promise<Capture> {
  const cap = await startCapture(opts);
  startedPids.push(cap.pid);
  // Registered after the namespaces, so it runs first: tcpdump must not keep a namespace alive.
  t.teardown(() => cap.stop());
  return cap;
}

function isFrom(p: Packet, addr: string, port: number): boolean {
  return p.src === addr && p.sport === port;
}

t.test("a real connection on a veth: handshake, 5 bytes, FINs, ARP", async (t) => {
  const lab = await twoHosts(t);
  const file = join(tempDir(t), "client.pcap");
  const cap = await capture(t, { netns: lab.client.path, iface: "va", file, host: "client" });
  t.ok(alive(cap.pid), "tcpdump is running once startCapture resolves");

  const sockets: Socket[] = [];
  t.teardown(() => {
    for (const s of sockets) if (!s.closed) s.close();
  });
  const listener = Socket.create({ netns: lab.server });
  sockets.push(listener);
  listener.bind(SERVER, SERVER_PORT).listen();
  const client = Socket.create({ netns: lab.client });
  sockets.push(client);
  client.bind(CLIENT, CLIENT_PORT);
  const originUs = Date.now() * 1000;
  const accepted = listener.acceptAsync({ timeoutMs: WAIT_MS });
  // If connect fails first, teardown closes the listener under this wait; the connect error is the story.
  accepted.catch(() => undefined);
  await client.connectAsync(SERVER, SERVER_PORT, { timeoutMs: WAIT_MS });
  const conn = await accepted;
  sockets.push(conn);
  t.equal(client.send("hello"), 5);
  t.equal((await conn.recvAsync(5, ["MSG_WAITALL"], { timeoutMs: WAIT_MS })).toString(), "hello");
  client.close();
  t.equal((await conn.readAsync(100, { timeoutMs: WAIT_MS })).length, 0, "server reads EOF after the client's FIN");
  conn.close();

  // Wait for the client's ACK of the server's FIN: with -U it is in the file as soon as it is sent.
  await waitUntil(
    "the last ACK of the close",
    async () => {
      const ps = (await readPcap(file)).filter((p) => p.kind === "tcp");
      const serverFin = ps.findIndex((p) => isFrom(p, SERVER, SERVER_PORT) && p.flags?.includes("F"));
      return serverFin >= 0 && ps.slice(serverFin + 1).some((p) => isFrom(p, CLIENT, CLIENT_PORT));
    },
    (seen) => seen,
    WAIT_MS,
    20,
  );
  await cap.stop();
  t.notOk(alive(cap.pid), "tcpdump is gone once stop resolves");
  await cap.stop();

  const all = await readPcap(file, { host: cap.host, originRealtimeUs: originUs });
  t.ok(
    all.every((p) => !p.truncated),
    "no packet is truncated",
  );
  const tcp = relativeSeq(all.filter((p) => p.kind === "tcp"));
  const lines = tcp.map(formatPacket).join("\n");
  const [syn, synAck, ack] = tcp;
  t.match(syn, { src: CLIENT, sport: CLIENT_PORT, dst: SERVER, dport: SERVER_PORT, flags: "S", seq: 0, len: 0 }, lines);
  t.match(synAck, { src: SERVER, sport: SERVER_PORT, dst: CLIENT, dport: CLIENT_PORT, flags: "S.", ack: 1 }, lines);
  t.match(ack, { src: CLIENT, sport: CLIENT_PORT, flags: ".", seq: 1, ack: 1, len: 0 }, lines);
  t.equal(synAck?.ackAbs, ((syn?.seqAbs ?? 0) + 1) >>> 0, "the SYN-ACK acknowledges the SYN's ISN + 1");
  t.ok((syn?.atUs ?? -1) >= 0 && (syn?.atUs ?? Infinity) < WAIT_MS * 1000, `SYN at ${syn?.atUs} µs after connect`);
  t.match(syn?.options, /^mss 1460,/, "Linux announces the veth's MSS on the SYN");

  const data = tcp.filter((p) => (p.len ?? 0) > 0);
  t.equal(data.length, 1, `one data segment:\n${lines}`);
  t.match(data[0], { src: CLIENT, dst: SERVER, len: 5, seq: 1, flags: "P." }, "5 bytes at relative seq 1");
  const fins = tcp.filter((p) => p.flags?.includes("F"));
  t.ok(
    fins.some((p) => isFrom(p, CLIENT, CLIENT_PORT)),
    "a FIN from the client",
  );
  t.ok(
    fins.some((p) => isFrom(p, SERVER, SERVER_PORT)),
    "a FIN from the server",
  );
  t.notOk(
    tcp.some((p) => p.flags?.includes("R")),
    "a clean close sends no RST",
  );

  const synIndex = all.findIndex((p) => p.kind === "tcp");
  const request = all.findIndex(
    (p) => p.kind === "arp" && p.arpOp === "request" && p.src === CLIENT && p.dst === SERVER,
  );
  const reply = all.findIndex((p) => p.kind === "arp" && p.arpOp === "reply" && p.src === SERVER && p.dst === CLIENT);
  t.ok(request >= 0 && reply > request, `ARP request then reply:\n${all.map(formatPacket).join("\n")}`);
  t.ok(reply < synIndex, "the SYN waits for the ARP reply");
  for (let i = 1; i < all.length; i++) {
    if ((all[i]?.atUs ?? 0) < (all[i - 1]?.atUs ?? 0)) t.fail(`timestamps go back at packet ${i}`);
  }

  // tcpdump itself is the oracle for the decoding: same lines, same microseconds.
  const { stdout } = await run(["tcpdump", "-r", file, "-n", "-S", "-tt"]);
  const theirs = stdout
    .split("\n")
    .filter((l) => l.includes(" IP ") && l.includes(": Flags ["))
    .map((l) => {
      const [ts, rest] = [l.slice(0, l.indexOf(" ")), l.slice(l.indexOf(" IP ") + 4)];
      // tcpdump goes on to dissect the payload by port (8080 reads as ": HTTP"); the TCP part is what we compare.
      return `${Math.round(Number(ts) * 1e6)} ${rest.replace(/(, length \d+): .*$/, "$1")}`;
    });
  const ours = (await readPcap(file))
    .filter((p) => p.kind === "tcp")
    .map((p) => `${Math.round(p.atUs)} ${formatPacket({ ...p, atUs: 0 }).replace(/^\+0\.000000 /, "")}`);
  t.same(ours, theirs, "formatPacket agrees with tcpdump -r -S");
});

t.test("a missing interface rejects with tcpdump's words and leaves no process", async (t) => {
  const ns = Netns.create();
  t.teardown(() => ns.close());
  const file = join(tempDir(t), "x.pcap");
  let pid = -1;
  const spawn = (argv: readonly string[], netns?: string) => {
    const child = spawnIn(argv, netns);
    pid = child.pid ?? -1;
    startedPids.push(pid);
    return child;
  };
  const err = await startCapture({ netns: ns.path, iface: "nosuch0", file }, { spawn }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.type(err, CaptureError);
  t.match(
    (err as CaptureError).message,
    /tcpdump on nosuch0 .* exited with 1 before listening; tcpdump said: .*nosuch0/,
  );
  t.match((err as CaptureError).stderr, /nosuch0/);
  t.ok(pid > 0);
  t.notOk(alive(pid), "tcpdump is gone");
});

t.test("a missing tcpdump says which package to install", async (t) => {
  const ns = Netns.create();
  t.teardown(() => ns.close());
  const spawn = (argv: readonly string[], netns?: string) => spawnIn(["/nonexistent/tcpdump", ...argv.slice(1)], netns);
  await t.rejects(startCapture({ netns: ns.path, iface: "lo", file: "/nonexistent/x.pcap" }, { spawn }), {
    name: "CaptureError",
    message: /apt-get install tcpdump.*`tcpdump` package/,
  });
});

t.test("silence past the bound rejects and kills the child", async (t) => {
  const ns = Netns.create();
  t.teardown(() => ns.close());
  let pid = -1;
  const spawn = (_argv: readonly string[], netns?: string) => {
    const child = spawnIn(["sleep", "30"], netns);
    pid = child.pid ?? -1;
    startedPids.push(pid);
    return child;
  };
  const t0 = Date.now();
  await t.rejects(startCapture({ netns: ns.path, iface: "lo", file: "/dev/null" }, { spawn, readyTimeoutMs: 200 }), {
    name: "CaptureError",
    message: /did not report "listening on" within 200 ms/,
  });
  t.ok(Date.now() - t0 < 2_000, "rejected near the bound");
  t.notOk(alive(pid), "the silent child was killed");
});

t.test("stop escalates to SIGKILL when SIGINT is ignored, and twice is harmless", async (t) => {
  const ns = Netns.create();
  t.teardown(() => ns.close());
  const spawn = (_argv: readonly string[], netns?: string) =>
    spawnIn(["sh", "-c", "trap '' INT; echo 'listening on fake' >&2; exec sleep 30"], netns);
  const cap = await startCapture({ netns: ns.path, iface: "lo", file: "/dev/null" }, { spawn, stopTimeoutMs: 200 });
  startedPids.push(cap.pid);
  t.ok(alive(cap.pid));
  const t0 = Date.now();
  await Promise.all([cap.stop(), cap.stop()]);
  t.ok(Date.now() - t0 < 2_000, "stop is bounded");
  t.notOk(alive(cap.pid), "killed");
  await cap.stop();
  t.match(cap.stderr, /listening on fake/);
});

t.test("no capture child of ours is left", async (t) => {
  t.ok(startedPids.length >= 3);
  t.same(startedPids.filter(alive), [], "every started pid is gone");
  const r = await run(["pgrep", "-P", String(process.pid), "-x", "tcpdump"], { allowFail: true });
  t.equal(r.stdout.trim(), "", "pgrep finds no tcpdump child of this process");
});
