/** TCP states by the kernel's number (include/net/tcp_states.h). */
export const TCP_STATES: Readonly<Record<number, string>> = {
  1: "ESTABLISHED",
  2: "SYN_SENT",
  3: "SYN_RECV",
  4: "FIN_WAIT1",
  5: "FIN_WAIT2",
  6: "TIME_WAIT",
  7: "CLOSE",
  8: "CLOSE_WAIT",
  9: "LAST_ACK",
  10: "LISTEN",
  11: "CLOSING",
  12: "NEW_SYN_RECV",
  13: "BOUND_INACTIVE",
};

/** Congestion-avoidance states (enum tcp_ca_state). */
export const TCP_CA_STATES: Readonly<Record<number, string>> = {
  0: "Open",
  1: "Disorder",
  2: "CWR",
  3: "Recovery",
  4: "Loss",
};

type Width = 8 | 16 | 32 | 64;
/** One field: byte offset, width in bits, and for bitfields the shift and bit count inside that unit. */
export interface TcpInfoField {
  readonly name: string;
  readonly offset: number;
  readonly width: Width;
  readonly shift?: number;
  readonly bits?: number;
}

const u8 = (name: string, offset: number): TcpInfoField => ({ name, offset, width: 8 });
const u16 = (name: string, offset: number): TcpInfoField => ({ name, offset, width: 16 });
const u32 = (name: string, offset: number): TcpInfoField => ({ name, offset, width: 32 });
const u64 = (name: string, offset: number): TcpInfoField => ({ name, offset, width: 64 });
const bitsOf = (name: string, offset: number, width: Width, shift: number, bits: number): TcpInfoField => ({
  name,
  offset,
  width,
  shift,
  bits,
});

/** The layout of include/uapi/linux/tcp.h up to Linux 6.18 (the AccECN trailer). */
export const TCP_INFO_FIELDS: readonly TcpInfoField[] = [
  u8("state", 0),
  u8("ca_state", 1),
  u8("retransmits", 2),
  u8("probes", 3),
  u8("backoff", 4),
  u8("options", 5),
  bitsOf("snd_wscale", 6, 8, 0, 4),
  bitsOf("rcv_wscale", 6, 8, 4, 4),
  bitsOf("delivery_rate_app_limited", 7, 8, 0, 1),
  bitsOf("fastopen_client_fail", 7, 8, 1, 2),
  u32("rto", 8),
  u32("ato", 12),
  u32("snd_mss", 16),
  u32("rcv_mss", 20),
  u32("unacked", 24),
  u32("sacked", 28),
  u32("lost", 32),
  u32("retrans", 36),
  u32("fackets", 40),
  u32("last_data_sent", 44),
  u32("last_ack_sent", 48),
  u32("last_data_recv", 52),
  u32("last_ack_recv", 56),
  u32("pmtu", 60),
  u32("rcv_ssthresh", 64),
  u32("rtt", 68),
  u32("rttvar", 72),
  u32("snd_ssthresh", 76),
  u32("snd_cwnd", 80),
  u32("advmss", 84),
  u32("reordering", 88),
  u32("rcv_rtt", 92),
  u32("rcv_space", 96),
  u32("total_retrans", 100),
  u64("pacing_rate", 104),
  u64("max_pacing_rate", 112),
  u64("bytes_acked", 120),
  u64("bytes_received", 128),
  u32("segs_out", 136),
  u32("segs_in", 140),
  u32("notsent_bytes", 144),
  u32("min_rtt", 148),
  u32("data_segs_in", 152),
  u32("data_segs_out", 156),
  u64("delivery_rate", 160),
  u64("busy_time", 168),
  u64("rwnd_limited", 176),
  u64("sndbuf_limited", 184),
  u32("delivered", 192),
  u32("delivered_ce", 196),
  u64("bytes_sent", 200),
  u64("bytes_retrans", 208),
  u32("dsack_dups", 216),
  u32("reord_seen", 220),
  u32("rcv_ooopack", 224),
  u32("snd_wnd", 228),
  u32("rcv_wnd", 232),
  u32("rehash", 236),
  u16("total_rto", 240),
  u16("total_rto_recoveries", 242),
  u32("total_rto_time", 244),
  u32("received_ce", 248),
  u32("delivered_e1_bytes", 252),
  u32("delivered_e0_bytes", 256),
  u32("delivered_ce_bytes", 260),
  u32("received_e1_bytes", 264),
  u32("received_e0_bytes", 268),
  u32("received_ce_bytes", 272),
  bitsOf("ecn_mode", 276, 32, 0, 2),
  bitsOf("accecn_opt_seen", 276, 32, 2, 2),
  bitsOf("accecn_fail_mode", 276, 32, 4, 4),
  bitsOf("options2", 276, 32, 8, 24),
];

/** The largest struct this table knows (its last field's end); a newer kernel simply fills no more than this. */
export const TCP_INFO_MAX_SIZE = Math.max(...TCP_INFO_FIELDS.map((f) => f.offset + f.width / 8));

/** TCP_INFO as numbers (u64 fields as numbers: exact below 2^53), plus names for state and ca_state. */
export interface TcpInfo {
  /** The state by name, e.g. 'ESTABLISHED'. */
  stateName: string;
  /** The congestion state by name, e.g. 'Open'. */
  caStateName: string;
  /** How many bytes the kernel returned. */
  size: number;
  /** Every field the kernel filled, by its name without the tcpi_ prefix. */
  [field: string]: number | string;
}

/** Parses the bytes of a getsockopt(TCP_INFO). Fields beyond `size` are left out, never guessed. */
export function parseTcpInfo(bytes: Buffer, size: number): TcpInfo {
  const info: TcpInfo = { stateName: "", caStateName: "", size };
  for (const f of TCP_INFO_FIELDS) {
    if (f.offset + f.width / 8 > size) continue;
    let v: number;
    if (f.width === 8) v = bytes.readUInt8(f.offset);
    else if (f.width === 16) v = bytes.readUInt16LE(f.offset);
    else if (f.width === 32) v = bytes.readUInt32LE(f.offset);
    else v = Number(bytes.readBigUInt64LE(f.offset));
    if (f.bits !== undefined) v = (v >>> (f.shift ?? 0)) & ((1 << f.bits) - 1);
    info[f.name] = v;
  }
  info.stateName = TCP_STATES[info.state as number] ?? `UNKNOWN(${info.state})`;
  info.caStateName = TCP_CA_STATES[info.ca_state as number] ?? `UNKNOWN(${info.ca_state})`;
  return info;
}
