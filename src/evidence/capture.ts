// What went over the wire: tcpdump records inside a lab namespace, and the pcap file is read back
// here in TypeScript, so a scenario's evidence does not depend on parsing tcpdump's text output.
import type { ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import { spawnIn } from "../proc/exec.js";

/** How long tcpdump may take to say it is listening, and to exit after SIGINT. */
export const CAPTURE_TIMEOUT_MS = 5_000;

/** Where and what to capture. */
export interface CaptureOptions {
  /** Path of the network namespace (a Netns path). */
  readonly netns: string;
  readonly iface: string;
  /** The pcap file tcpdump writes. */
  readonly file: string;
  /** A pcap-filter(7) expression; none captures everything (ARP included). */
  readonly filter?: string;
  /** The label packets read from this capture carry; the interface name by default. */
  readonly host?: string;
}

/** The process runner and bounds, injectable so the failure paths can be tested without a broken system. */
export interface CaptureIo {
  readonly spawn?: (argv: readonly string[], netns?: string) => ChildProcess;
  readonly readyTimeoutMs?: number;
  readonly stopTimeoutMs?: number;
}

/** tcpdump could not start, or did not say it was listening in time; carries what it printed. */
export class CaptureError extends Error {
  constructor(
    message: string,
    readonly stderr: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
Object.defineProperty(CaptureError.prototype, "name", { value: "CaptureError" });

/** A running tcpdump; stop() before reading the file so the last packets are in it. */
export interface Capture {
  readonly file: string;
  readonly host: string;
  readonly iface: string;
  readonly pid: number;
  /** Everything tcpdump printed so far (the "packets dropped by kernel" count arrives after stop). */
  readonly stderr: string;
  stop(): Promise<void>;
}

const STDERR_LIMIT = 64 * 1024;

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

// Resolves true once the child is gone, false when the bound runs out first.
function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      child.off("exit", onExit);
      resolve(false);
    }, timeoutMs);
    child.once("exit", onExit);
  });
}

async function killHard(child: ChildProcess, timeoutMs: number): Promise<void> {
  // No pid: the spawn itself failed, and there is nothing to wait for.
  if (exited(child) || child.pid === undefined) return;
  child.kill("SIGKILL");
  await waitExit(child, timeoutMs);
}

/** Starts tcpdump inside the namespace and resolves once it is listening, so no early packet is missed. */
export function startCapture(opts: CaptureOptions, io: CaptureIo = {}): Promise<Capture> {
  const spawn = io.spawn ?? spawnIn;
  const readyTimeoutMs = io.readyTimeoutMs ?? CAPTURE_TIMEOUT_MS;
  const stopTimeoutMs = io.stopTimeoutMs ?? CAPTURE_TIMEOUT_MS;
  // -Z root: dropping to the tcpdump user would clear the parent-death signal setpriv arranged.
  // -U with --immediate-mode: every packet reaches the file at once, so a reader can poll it.
  const argv = [
    "tcpdump",
    "-i",
    opts.iface,
    "-w",
    opts.file,
    "-U",
    "-n",
    "-Z",
    "root",
    "--immediate-mode",
    "--time-stamp-precision=micro",
    "-s",
    "262144",
    ...(opts.filter ? [opts.filter] : []),
  ];
  const where = `tcpdump on ${opts.iface} in ${opts.netns}`;
  return new Promise<Capture>((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(argv, opts.netns);
    } catch (cause) {
      reject(new CaptureError(`cannot start ${where}: ${(cause as Error).message}`, "", { cause }));
      return;
    }
    let stderr = "";
    let settled = false;
    let stopping: Promise<void> | undefined;
    child.stdout?.resume();
    // Closed without a write: a write could race tcpdump's early exit and raise EPIPE.
    child.stdin?.destroy();
    const capture: Capture = {
      file: opts.file,
      host: opts.host ?? opts.iface,
      iface: opts.iface,
      pid: child.pid ?? -1,
      get stderr() {
        return stderr;
      },
      stop() {
        stopping ??= (async () => {
          if (exited(child)) return;
          child.kill("SIGINT");
          if (!(await waitExit(child, stopTimeoutMs))) await killHard(child, stopTimeoutMs);
        })();
        return stopping;
      },
    };
    const fail = (message: string, cause?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const said = stderr.trim();
      const err = new CaptureError(
        `${message}${said ? `; tcpdump said: ${said}` : ""}`,
        stderr,
        cause === undefined ? undefined : { cause },
      );
      void killHard(child, stopTimeoutMs).then(() => reject(err));
    };
    const timer = setTimeout(
      () => fail(`${where} did not report "listening on" within ${readyTimeoutMs} ms`),
      readyTimeoutMs,
    );
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      if (stderr.length < STDERR_LIMIT) stderr += d;
      if (!settled && stderr.includes("listening on")) {
        settled = true;
        clearTimeout(timer);
        resolve(capture);
      }
    });
    child.on("error", (e) => fail(`cannot start ${where}: ${e.message}`, e));
    // 'close' rather than 'exit': by then stderr is fully read, so the message carries all of it.
    child.on("close", (code, signal) => {
      if (settled) return;
      const how = signal ? `was killed by ${signal}` : `exited with ${code}`;
      const missing = code === 127 || /failed to execute \S*tcpdump\S*: No such file/.test(stderr);
      const hint = missing ? " (tcpdump is not installed: apt-get install tcpdump, Debian's `tcpdump` package)" : "";
      fail(`${where} ${how} before listening${hint}`);
    });
  });
}

/** What a packet is, as far as the decoder got. */
export type PacketKind = "tcp" | "arp" | "icmp" | "icmp6" | "udp" | "other";

/** One captured frame, decoded; fields a frame does not carry (or that were cut off) are absent. */
export interface Packet {
  /** Microseconds: since originRealtimeUs when given, else since the epoch. */
  readonly atUs: number;
  readonly host: string;
  readonly kind: PacketKind;
  readonly family?: "IPv4" | "IPv6";
  /** IP text; for ARP the sender protocol address. */
  readonly src?: string;
  /** IP text; for ARP the target protocol address. */
  readonly dst?: string;
  readonly sport?: number;
  readonly dport?: number;
  /** tcpdump's letters: S, F, R, P, U, E, W, e and '.' for ACK; 'none' when no flag is set. */
  readonly flags?: string;
  readonly seq?: number;
  readonly ack?: number;
  /** Set by relativeSeq: the values as on the wire. */
  readonly seqAbs?: number;
  readonly ackAbs?: number;
  /** Payload bytes (TCP, UDP), the message length (ICMP), from the IP header's length, not the capture. */
  readonly len?: number;
  /** The raw window field, unscaled. */
  readonly win?: number;
  readonly urg?: number;
  /** TCP options as tcpdump prints them, e.g. "mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7". */
  readonly options?: string;
  readonly mss?: number;
  readonly wscale?: number;
  readonly icmpType?: number;
  readonly icmpCode?: number;
  readonly arpOp?: "request" | "reply";
  /** The ARP sender's hardware address. */
  readonly hwSrc?: string;
  /** IP protocol number, for kinds this decoder does not name. */
  readonly proto?: number;
  readonly etherType?: number;
  /** Bytes on the wire and bytes captured. */
  readonly wireLen: number;
  readonly capLen: number;
  /** A header this decoder needed was cut off (snap length, or a file that ends mid-record). */
  readonly truncated: boolean;
  /** Why the packet is 'other' or incomplete, when that is not obvious. */
  readonly note?: string;
}

/** How readPcap labels and times packets. */
export interface ReadPcapOptions {
  readonly host?: string;
  /** CLOCK_REALTIME in µs that atUs is measured from. */
  readonly originRealtimeUs?: number;
}

type Draft = { -readonly [K in keyof Packet]: Packet[K] };

const LINKTYPE_NULL = 0;
const LINKTYPE_ETHERNET = 1;
const LINKTYPE_RAW = 101;
const LINKTYPE_LINUX_SLL = 113;
const LINKTYPE_IPV4 = 228;
const LINKTYPE_IPV6 = 229;
const LINKTYPE_LINUX_SLL2 = 276;

const MAGIC_MICRO = 0xa1b2c3d4;
const MAGIC_NANO = 0xa1b23c4d;
const MAGIC_PCAPNG = 0x0a0d0d0a;

/** Reads a classic pcap file (either byte order, µs or ns timestamps). */
export async function readPcap(file: string, opts: ReadPcapOptions = {}): Promise<Packet[]> {
  return parsePcap(await readFile(file), opts);
}

/** Decodes pcap bytes already in memory; a file cut mid-record yields what it holds. */
export function parsePcap(buf: Buffer, opts: ReadPcapOptions = {}): Packet[] {
  if (buf.length < 24) {
    // tcpdump writes the header before "listening on", so an empty file means no capture ran.
    throw new Error(`not a pcap file: ${buf.length} bytes, shorter than the 24-byte header`);
  }
  const magicLe = buf.readUInt32LE(0);
  const magicBe = buf.readUInt32BE(0);
  let le: boolean;
  let nano: boolean;
  if (magicLe === MAGIC_MICRO || magicLe === MAGIC_NANO) {
    le = true;
    nano = magicLe === MAGIC_NANO;
  } else if (magicBe === MAGIC_MICRO || magicBe === MAGIC_NANO) {
    le = false;
    nano = magicBe === MAGIC_NANO;
  } else if (magicLe === MAGIC_PCAPNG) {
    throw new Error("pcapng files are not supported: write classic pcap (tcpdump -w does)");
  } else {
    throw new Error(`not a pcap file: magic 0x${magicBe.toString(16).padStart(8, "0")}`);
  }
  const u32 = (off: number) => (le ? buf.readUInt32LE(off) : buf.readUInt32BE(off));
  // The upper bits of the link-type word may carry FCS information.
  const linkType = u32(20) & 0xffff;
  const host = opts.host ?? "";
  const origin = opts.originRealtimeUs ?? 0;
  const packets: Packet[] = [];
  let off = 24;
  while (off + 16 <= buf.length) {
    const sec = u32(off);
    const frac = u32(off + 4);
    const inclLen = u32(off + 8);
    const origLen = u32(off + 12);
    off += 16;
    const end = Math.min(buf.length, off + inclLen);
    const frame = buf.subarray(off, end);
    const p: Draft = {
      // The origin goes first: at epoch magnitude a double keeps only quarter microseconds.
      atUs: sec * 1e6 - origin + (nano ? frac / 1000 : frac),
      host,
      kind: "other",
      wireLen: origLen,
      capLen: frame.length,
      truncated: end < off + inclLen,
    };
    decodeLink(frame, linkType, origLen, p);
    packets.push(p);
    off += inclLen;
  }
  return packets;
}

function cut(p: Draft, what: string): undefined {
  p.truncated = true;
  p.note ??= `${what} cut off`;
}

function decodeLink(b: Buffer, linkType: number, wireLen: number, p: Draft): undefined {
  switch (linkType) {
    case LINKTYPE_ETHERNET: {
      let off = 12;
      if (off + 2 > b.length) return cut(p, "Ethernet header");
      let type = b.readUInt16BE(off);
      // 802.1Q / 802.1ad tags sit between the addresses and the real EtherType.
      while (type === 0x8100 || type === 0x88a8 || type === 0x9100) {
        off += 4;
        if (off + 2 > b.length) return cut(p, "VLAN tag");
        type = b.readUInt16BE(off);
      }
      return decodeEtherType(b, off + 2, type, wireLen, p);
    }
    case LINKTYPE_LINUX_SLL:
      if (b.length < 16) return cut(p, "SLL header");
      return decodeEtherType(b, 16, b.readUInt16BE(14), wireLen, p);
    case LINKTYPE_LINUX_SLL2:
      if (b.length < 20) return cut(p, "SLL2 header");
      return decodeEtherType(b, 20, b.readUInt16BE(0), wireLen, p);
    case LINKTYPE_NULL: {
      if (b.length < 4) return cut(p, "loopback header");
      // The family is in the writer's byte order; the small value tells which.
      const fam = b.readUInt32LE(0) < 0x10000 ? b.readUInt32LE(0) : b.readUInt32BE(0);
      if (fam === 2) return decodeIpv4(b, 4, wireLen, p);
      if (fam === 10 || fam === 24 || fam === 28 || fam === 30) return decodeIpv6(b, 4, wireLen, p);
      p.note = `loopback family ${fam}`;
      return;
    }
    case LINKTYPE_RAW:
    case LINKTYPE_IPV4:
    case LINKTYPE_IPV6: {
      if (b.length < 1) return cut(p, "IP header");
      const version = (b[0] ?? 0) >> 4;
      if (version === 4) return decodeIpv4(b, 0, wireLen, p);
      if (version === 6) return decodeIpv6(b, 0, wireLen, p);
      p.note = `IP version ${version}`;
      return;
    }
    default:
      p.note = `link type ${linkType}`;
  }
}

function decodeEtherType(b: Buffer, off: number, type: number, wireLen: number, p: Draft): undefined {
  p.etherType = type;
  if (type === 0x0800) return decodeIpv4(b, off, wireLen - off, p);
  if (type === 0x86dd) return decodeIpv6(b, off, wireLen - off, p);
  if (type === 0x0806) return decodeArp(b, off, p);
  p.note = `ethertype 0x${type.toString(16).padStart(4, "0")}`;
}

function ipv4Text(b: Buffer, off: number): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

// RFC 5952 text, as inet_ntop(3) and so tcpdump print it.
function ipv6Text(b: Buffer, off: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(b.readUInt16BE(off + 2 * i));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `::ffff:${ipv4Text(b, off + 12)}`;
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

function macText(b: Buffer, off: number): string {
  return [...b.subarray(off, off + 6)].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

function decodeArp(b: Buffer, off: number, p: Draft): undefined {
  p.kind = "arp";
  if (off + 8 > b.length) return cut(p, "ARP header");
  const ptype = b.readUInt16BE(off + 2);
  const hlen = b[off + 4] ?? 0;
  const plen = b[off + 5] ?? 0;
  const op = b.readUInt16BE(off + 6);
  if (op === 1) p.arpOp = "request";
  else if (op === 2) p.arpOp = "reply";
  else p.note = `ARP operation ${op}`;
  const spa = off + 8 + hlen;
  const tpa = spa + plen + hlen;
  if (hlen === 6 && off + 14 <= b.length) p.hwSrc = macText(b, off + 8);
  if (ptype !== 0x0800 || plen !== 4) {
    p.note ??= `ARP for protocol 0x${ptype.toString(16)}`;
    return;
  }
  if (spa + 4 > b.length) return cut(p, "ARP addresses");
  p.src = ipv4Text(b, spa);
  if (tpa + 4 > b.length) return cut(p, "ARP target address");
  p.dst = ipv4Text(b, tpa);
}

function decodeIpv4(b: Buffer, off: number, wireLen: number, p: Draft): undefined {
  p.family = "IPv4";
  if (off + 20 > b.length) return cut(p, "IPv4 header");
  const ihl = ((b[off] ?? 0) & 0x0f) * 4;
  let total = b.readUInt16BE(off + 2);
  // A zero total length is a segmentation-offloaded packet seen before the NIC split it.
  if (total === 0) total = wireLen;
  const fragOffset = b.readUInt16BE(off + 6) & 0x1fff;
  const proto = b[off + 9] ?? 0;
  p.proto = proto;
  p.src = ipv4Text(b, off + 12);
  p.dst = ipv4Text(b, off + 16);
  if (ihl < 20 || total < ihl) {
    p.note = `bad IPv4 header length ${ihl}/${total}`;
    return;
  }
  if (fragOffset !== 0) {
    p.note = `IPv4 fragment at offset ${fragOffset * 8}`;
    return;
  }
  decodeTransport(b, off + ihl, Math.min(b.length, off + total), total - ihl, proto, p);
}

const IPV6_EXTENSIONS = new Set([0, 43, 60, 135, 139, 140]);

function decodeIpv6(b: Buffer, off: number, wireLen: number, p: Draft): undefined {
  p.family = "IPv6";
  if (off + 40 > b.length) return cut(p, "IPv6 header");
  let payload = b.readUInt16BE(off + 4);
  if (payload === 0) payload = wireLen - 40;
  let next = b[off + 6] ?? 0;
  p.src = ipv6Text(b, off + 8);
  p.dst = ipv6Text(b, off + 24);
  const payloadEnd = off + 40 + payload;
  let cur = off + 40;
  for (;;) {
    if (IPV6_EXTENSIONS.has(next) || next === 51) {
      if (cur + 2 > b.length) {
        p.proto = next;
        return cut(p, "IPv6 extension header");
      }
      const len = next === 51 ? ((b[cur + 1] ?? 0) + 2) * 4 : ((b[cur + 1] ?? 0) + 1) * 8;
      next = b[cur] ?? 0;
      cur += len;
    } else if (next === 44) {
      if (cur + 8 > b.length) {
        p.proto = next;
        return cut(p, "IPv6 fragment header");
      }
      const fragOffset = b.readUInt16BE(cur + 2) >> 3;
      next = b[cur] ?? 0;
      cur += 8;
      if (fragOffset !== 0) {
        p.proto = next;
        p.note = `IPv6 fragment at offset ${fragOffset * 8}`;
        return;
      }
    } else {
      break;
    }
    if (cur > payloadEnd) {
      p.proto = next;
      p.note = "IPv6 extension headers longer than the payload";
      return;
    }
  }
  p.proto = next;
  decodeTransport(b, cur, Math.min(b.length, payloadEnd), payloadEnd - cur, next, p);
}

// `end` bounds the captured bytes; `segLen` is the length the IP header claims, which counts even
// when the capture stopped short, since that is what the sender put on the wire.
function decodeTransport(b: Buffer, off: number, end: number, segLen: number, proto: number, p: Draft): undefined {
  if (proto === 6) return decodeTcp(b, off, end, segLen, p);
  if (proto === 17) {
    p.kind = "udp";
    if (off + 4 > end) return cut(p, "UDP header");
    p.sport = b.readUInt16BE(off);
    p.dport = b.readUInt16BE(off + 2);
    p.len = Math.max(0, segLen - 8);
    if (off + 8 > end) cut(p, "UDP header");
    return;
  }
  if (proto === 1 || proto === 58) {
    p.kind = proto === 1 ? "icmp" : "icmp6";
    p.len = segLen;
    if (off + 2 > end) return cut(p, "ICMP header");
    p.icmpType = b[off];
    p.icmpCode = b[off + 1];
    return;
  }
  p.note ??= `IP protocol ${proto}`;
}

// tcpdump's order: FIN, SYN, RST, PSH, ACK, URG, ECE, CWR, then AE.
const TCP_FLAG_LETTERS: readonly (readonly [number, string])[] = [
  [0x01, "F"],
  [0x02, "S"],
  [0x04, "R"],
  [0x08, "P"],
  [0x10, "."],
  [0x20, "U"],
  [0x40, "E"],
  [0x80, "W"],
  [0x100, "e"],
];

function decodeTcp(b: Buffer, off: number, end: number, segLen: number, p: Draft): undefined {
  p.kind = "tcp";
  if (off + 4 > end) return cut(p, "TCP ports");
  p.sport = b.readUInt16BE(off);
  p.dport = b.readUInt16BE(off + 2);
  if (off + 8 <= end) p.seq = b.readUInt32BE(off + 4);
  if (off + 12 <= end) p.ack = b.readUInt32BE(off + 8);
  if (off + 20 > end) return cut(p, "TCP header");
  const hlen = ((b[off + 12] ?? 0) >> 4) * 4;
  const bits = (((b[off + 12] ?? 0) & 0x01) << 8) | (b[off + 13] ?? 0);
  p.flags =
    TCP_FLAG_LETTERS.filter(([bit]) => bits & bit)
      .map(([, letter]) => letter)
      .join("") || "none";
  p.win = b.readUInt16BE(off + 14);
  if (bits & 0x20) p.urg = b.readUInt16BE(off + 18);
  if (hlen < 20 || hlen > segLen) {
    p.note = `bad TCP header length ${hlen}`;
    return;
  }
  p.len = segLen - hlen;
  if (hlen > 20) decodeTcpOptions(b, off + 20, Math.min(end, off + hlen), p);
  if (off + hlen > end) cut(p, "TCP options");
}

function decodeTcpOptions(b: Buffer, off: number, end: number, p: Draft): undefined {
  const out: string[] = [];
  while (off < end) {
    const kind = b[off] ?? 0;
    if (kind === 0) {
      out.push("eol");
      break;
    }
    if (kind === 1) {
      out.push("nop");
      off++;
      continue;
    }
    const len = off + 1 < end ? (b[off + 1] ?? 0) : 0;
    if (len < 2 || off + len > end) {
      out.push("[bad opt]");
      break;
    }
    const body = b.subarray(off + 2, off + len);
    if (kind === 2 && len === 4) {
      p.mss = body.readUInt16BE(0);
      out.push(`mss ${p.mss}`);
    } else if (kind === 3 && len === 3) {
      p.wscale = body[0];
      out.push(`wscale ${p.wscale}`);
    } else if (kind === 4 && len === 2) {
      out.push("sackOK");
    } else if (kind === 5 && (len - 2) % 8 === 0) {
      let s = `sack ${(len - 2) / 8} `;
      for (let i = 0; i < body.length; i += 8) s += `{${body.readUInt32BE(i)}:${body.readUInt32BE(i + 4)}}`;
      out.push(s);
    } else if (kind === 8 && len === 10) {
      out.push(`TS val ${body.readUInt32BE(0)} ecr ${body.readUInt32BE(4)}`);
    } else {
      out.push(`unknown-${kind}${body.length ? ` 0x${body.toString("hex")}` : ""}`);
    }
    off += len;
  }
  p.options = out.join(",");
}

// Beyond this a timestamp is an epoch time, not an offset from a scenario's origin (2001-09-09).
const EPOCH_THRESHOLD_US = 1e15;

function timeText(atUs: number): string {
  const r = Math.round(Math.abs(atUs));
  const frac = String(r % 1e6).padStart(6, "0");
  if (atUs >= EPOCH_THRESHOLD_US) {
    return `${new Date(Math.floor(r / 1e6) * 1000).toISOString().slice(0, 19)}.${frac}Z`;
  }
  return `${atUs < 0 ? "-" : "+"}${Math.floor(r / 1e6)}.${frac}`;
}

const ICMP_NAMES: Record<number, string> = {
  0: "echo reply",
  3: "unreachable",
  4: "source quench",
  5: "redirect",
  8: "echo request",
  11: "time exceeded",
  12: "parameter problem",
};
const ICMP_UNREACH: Record<number, string> = {
  0: "net unreachable",
  1: "host unreachable",
  2: "protocol unreachable",
  3: "port unreachable",
  4: "need to frag",
  9: "net prohibited",
  10: "host prohibited",
  13: "admin prohibited",
};
const ICMP6_NAMES: Record<number, string> = {
  1: "destination unreachable",
  2: "packet too big",
  3: "time exceeded",
  4: "parameter problem",
  128: "echo request",
  129: "echo reply",
  133: "router solicitation",
  134: "router advertisement",
  135: "neighbor solicitation",
  136: "neighbor advertisement",
  143: "multicast listener report v2",
};

function endpoint(addr: string | undefined, port: number | undefined): string {
  return port === undefined ? (addr ?? "?") : `${addr ?? "?"}.${port}`;
}

function tcpText(p: Packet): string {
  const parts = [`Flags [${p.flags ?? "?"}]`];
  const len = p.len ?? 0;
  // tcpdump shows seq only when it advances something, and ack only when the ACK bit makes it meaningful.
  if (p.seq !== undefined && (len > 0 || /[SFR]/.test(p.flags ?? ""))) {
    parts.push(len > 0 ? `seq ${p.seq}:${(p.seq + len) >>> 0}` : `seq ${p.seq}`);
  }
  if (p.ack !== undefined && p.flags?.includes(".")) parts.push(`ack ${p.ack}`);
  if (p.win !== undefined) parts.push(`win ${p.win}`);
  if (p.urg !== undefined) parts.push(`urg ${p.urg}`);
  if (p.options) parts.push(`options [${p.options}]`);
  parts.push(p.len === undefined ? "length ?" : `length ${p.len}`);
  return parts.join(", ");
}

function bodyText(p: Packet): string {
  const route = `${endpoint(p.src, p.sport)} > ${endpoint(p.dst, p.dport)}`;
  switch (p.kind) {
    case "tcp":
      return `${route}: ${tcpText(p)}`;
    case "udp":
      return `${route}: UDP, length ${p.len ?? "?"}`;
    case "icmp": {
      const name =
        p.icmpType === 3
          ? (ICMP_UNREACH[p.icmpCode ?? -1] ?? `unreachable code ${p.icmpCode}`)
          : (ICMP_NAMES[p.icmpType ?? -1] ?? `type ${p.icmpType ?? "?"}`);
      return `${route}: ICMP ${name}, length ${p.len ?? "?"}`;
    }
    case "icmp6":
      return `${route}: ICMP6, ${ICMP6_NAMES[p.icmpType ?? -1] ?? `type ${p.icmpType ?? "?"}`}, length ${p.len ?? "?"}`;
    case "arp":
      if (p.arpOp === "request") return `ARP, Request who-has ${p.dst ?? "?"} tell ${p.src ?? "?"}`;
      if (p.arpOp === "reply") return `ARP, Reply ${p.src ?? "?"} is-at ${p.hwSrc ?? "?"}`;
      return `ARP, ${p.note ?? "unknown"}`;
    default:
      return p.src === undefined ? (p.note ?? "unknown") : `${route}: ${p.note ?? `proto ${p.proto}`}`;
  }
}

/** One tcpdump-like line: relative "+s.µs" for scenario times, an ISO time for epoch ones. */
export function formatPacket(p: Packet): string {
  const head = p.host ? `${timeText(p.atUs)} ${p.host}` : timeText(p.atUs);
  const tail = p.truncated ? ` [|${p.note ?? "truncated"}]` : "";
  return `${head} ${bodyText(p)}${tail}`;
}

/** Rewrites TCP seq/ack relative to each direction's initial sequence number, as tcpdump shows them. */
export function relativeSeq(packets: readonly Packet[]): Packet[] {
  const isn = new Map<string, number>();
  return packets.map((p) => {
    if (p.kind !== "tcp" || p.seq === undefined) return p;
    const here = `${p.src}|${p.sport}|${p.dst}|${p.dport}`;
    const back = `${p.dst}|${p.dport}|${p.src}|${p.sport}`;
    const flags = p.flags ?? "";
    // A SYN starts a connection: bases left over from an earlier one on the same ports are stale.
    if (flags.includes("S")) {
      isn.set(here, p.seq);
      if (!flags.includes(".")) isn.delete(back);
    } else if (!isn.has(here)) {
      // Joined mid-stream: tcpdump then counts from the first byte it saw.
      isn.set(here, p.seq);
    }
    // Without the peer's SYN, the first ACK seen stands for one past its ISN.
    if (p.ack !== undefined && flags.includes(".") && !isn.has(back)) isn.set(back, (p.ack - 1) >>> 0);
    const seqBase = isn.get(here) ?? p.seq;
    const ackBase = isn.get(back);
    return {
      ...p,
      seq: (p.seq - seqBase) >>> 0,
      seqAbs: p.seq,
      ...(p.ack === undefined ? {} : { ack: ackBase === undefined ? p.ack : (p.ack - ackBase) >>> 0, ackAbs: p.ack }),
    };
  });
}
