// What src/model/tcp.ts lacks for `sockprobe tune`: the SYN schedule as this kernel (6.18) runs it,
// with tcp_syn_linear_timeouts, the RTO a LAN connection starts with, and the defaults of the sysctls
// tune reads, so that every figure can sit beside what an untuned namespace would give.
import { DEFAULTS, TCP_RTO_MAX_MS, TCP_RTO_MIN_MS } from "../model/tcp.js";

/** CONFIG_HZ assumed for jiffy rounding (Debian's, and the one src/model/tcp.ts assumes). */
export const TUNE_HZ = 250;
/** The RTT assumed when no connection is measured: a LAN, well under a jiffy. */
export const LAN_RTT_MS = 0.1;
/** tcp_syn_linear_timeouts' default where the kernel has it (6.18 here); kernels without it act as 0. */
export const SYN_LINEAR_TIMEOUTS_DEFAULT = 4;

/** A sysctl tune interprets: its default in a fresh network namespace and the value it takes. */
export interface TunedKey {
  /** Canonical dotted name. */
  readonly key: string;
  /** "int": one whole number; "range": two (low high). */
  readonly kind: "int" | "range";
  /** The compiled-in default; "memory" where the kernel scales it with the TCP hash table. */
  readonly default: number | readonly [number, number] | "memory";
  /** What the kernel does in its place where it has no such sysctl (older kernels). */
  readonly absent?: number;
}

/** Every sysctl tune reads, with the defaults a new network namespace starts from. */
export const TUNED_KEYS: readonly TunedKey[] = [
  { key: "net.ipv4.tcp_retries2", kind: "int", default: DEFAULTS.tcp_retries2 },
  { key: "net.ipv4.tcp_rto_max_ms", kind: "int", default: TCP_RTO_MAX_MS, absent: TCP_RTO_MAX_MS },
  { key: "net.ipv4.tcp_rto_min_us", kind: "int", default: TCP_RTO_MIN_MS * 1000, absent: TCP_RTO_MIN_MS * 1000 },
  { key: "net.ipv4.tcp_syn_retries", kind: "int", default: DEFAULTS.tcp_syn_retries },
  { key: "net.ipv4.tcp_syn_linear_timeouts", kind: "int", default: SYN_LINEAR_TIMEOUTS_DEFAULT, absent: 0 },
  { key: "net.ipv4.tcp_keepalive_time", kind: "int", default: DEFAULTS.tcp_keepalive_time },
  { key: "net.ipv4.tcp_keepalive_intvl", kind: "int", default: DEFAULTS.tcp_keepalive_intvl },
  { key: "net.ipv4.tcp_keepalive_probes", kind: "int", default: DEFAULTS.tcp_keepalive_probes },
  { key: "net.ipv4.tcp_fin_timeout", kind: "int", default: DEFAULTS.tcp_fin_timeout },
  { key: "net.ipv4.ip_local_port_range", kind: "range", default: [32768, 60999] },
  { key: "net.ipv4.tcp_tw_reuse", kind: "int", default: 2 },
  // Absent before 6.14: no delay in ms, the whole-second rule instead (twReuseDelayMs undefined).
  { key: "net.ipv4.tcp_tw_reuse_delay", kind: "int", default: 1000 },
  { key: "net.ipv4.tcp_max_tw_buckets", kind: "int", default: "memory" },
  { key: "net.core.somaxconn", kind: "int", default: DEFAULTS.somaxconn },
  { key: "net.ipv4.tcp_max_syn_backlog", kind: "int", default: "memory" },
  { key: "net.ipv4.tcp_abort_on_overflow", kind: "int", default: 0 },
  { key: "net.ipv4.tcp_syncookies", kind: "int", default: 1 },
  { key: "net.ipv4.tcp_synack_retries", kind: "int", default: 5 },
];

/** The tuned key of that name, if tune reads it. */
export function tunedKey(key: string): TunedKey | undefined {
  return TUNED_KEYS.find((k) => k.key === key);
}

/** What tune needs to know about the kernel it runs on. */
export interface KernelFacts {
  /** Whether a network namespace of this kernel has the sysctl. */
  has(key: string): boolean;
  /** |tcp_ehash_entries|: the TCP hash table size the memory-scaled defaults derive from. */
  readonly ehashEntries?: number;
}

/**
 * Defaults the kernel scales with its TCP hash table (tcp_sk_init, tcp_set_hashinfo):
 * tcp_max_tw_buckets = buckets / 2, tcp_max_syn_backlog = max(128, buckets / 128).
 */
export function memoryScaledDefault(key: string, ehashEntries: number): number | undefined {
  if (key === "net.ipv4.tcp_max_tw_buckets") return Math.floor(ehashEntries / 2);
  if (key === "net.ipv4.tcp_max_syn_backlog") return Math.max(128, Math.floor(ehashEntries / 128));
  return undefined;
}

/** Every value tune's arithmetic uses, resolved from a source and the defaults. */
export interface TuneSettings {
  readonly retries2: number;
  readonly rtoMaxMs: number;
  readonly rtoMinMs: number;
  readonly synRetries: number;
  readonly synLinearTimeouts: number;
  readonly keepaliveTimeS: number;
  readonly keepaliveIntvlS: number;
  readonly keepaliveProbes: number;
  readonly finTimeoutS: number;
  readonly portLow: number;
  readonly portHigh: number;
  readonly twReuse: number;
  /**
   * tcp_tw_reuse_delay (Linux 6.14+). Undefined on kernels without it: a TIME_WAIT may be taken over
   * once the 1 Hz monotonic clock has passed the second of its FIN, 0 to 1000 ms by phase.
   */
  readonly twReuseDelayMs: number | undefined;
  /** Undefined where the default scales with memory and the hash size is unknown. */
  readonly maxTwBuckets: number | undefined;
  readonly somaxconn: number;
  readonly maxSynBacklog: number | undefined;
  readonly abortOnOverflow: number;
  readonly syncookies: number;
  readonly synackRetries: number;
}

/** The numbers of a value as the kernel prints them ("32768\t60999" gives [32768, 60999]). */
export function numbersOf(value: string): number[] {
  return value.trim().split(/\s+/).map(Number);
}

/**
 * Resolves the settings: a value from `values` where given, else the kernel's default, else (for a
 * sysctl this kernel lacks) what the kernel hard-codes in its place.
 */
export function resolveSettings(values: Readonly<Record<string, string>>, kernel: KernelFacts): TuneSettings {
  const get = (key: string): number[] | undefined => {
    const v = values[key];
    if (v !== undefined) return numbersOf(v);
    const k = tunedKey(key);
    if (!k) return undefined;
    if (k.absent !== undefined && !kernel.has(key)) return [k.absent];
    if (k.default === "memory") {
      const d = kernel.ehashEntries === undefined ? undefined : memoryScaledDefault(key, kernel.ehashEntries);
      return d === undefined ? undefined : [d];
    }
    return typeof k.default === "number" ? [k.default] : [...k.default];
  };
  const one = (key: string) => (get(key) as number[])[0] as number;
  const range = get("net.ipv4.ip_local_port_range") as number[];
  return {
    retries2: one("net.ipv4.tcp_retries2"),
    rtoMaxMs: one("net.ipv4.tcp_rto_max_ms"),
    rtoMinMs: one("net.ipv4.tcp_rto_min_us") / 1000,
    synRetries: one("net.ipv4.tcp_syn_retries"),
    synLinearTimeouts: one("net.ipv4.tcp_syn_linear_timeouts"),
    keepaliveTimeS: one("net.ipv4.tcp_keepalive_time"),
    keepaliveIntvlS: one("net.ipv4.tcp_keepalive_intvl"),
    keepaliveProbes: one("net.ipv4.tcp_keepalive_probes"),
    finTimeoutS: one("net.ipv4.tcp_fin_timeout"),
    portLow: range[0] as number,
    portHigh: range[1] as number,
    twReuse: one("net.ipv4.tcp_tw_reuse"),
    twReuseDelayMs:
      values["net.ipv4.tcp_tw_reuse_delay"] !== undefined || kernel.has("net.ipv4.tcp_tw_reuse_delay")
        ? one("net.ipv4.tcp_tw_reuse_delay")
        : undefined,
    maxTwBuckets: get("net.ipv4.tcp_max_tw_buckets")?.[0],
    somaxconn: one("net.core.somaxconn"),
    maxSynBacklog: get("net.ipv4.tcp_max_syn_backlog")?.[0],
    abortOnOverflow: one("net.ipv4.tcp_abort_on_overflow"),
    syncookies: one("net.ipv4.tcp_syncookies"),
    synackRetries: one("net.ipv4.tcp_synack_retries"),
  };
}

/** The settings of an untuned namespace on this kernel. */
export function defaultSettings(kernel: KernelFacts): TuneSettings {
  return resolveSettings({}, kernel);
}

/**
 * The RTO a LAN connection starts with: __tcp_set_rto() gives srtt + max(rttvar, tcp_rto_min), which
 * usecs_to_jiffies() rounds up to a jiffy: 200 ms + 0.1 ms is 204 ms at HZ=250 (TCP_INFO shows 204000).
 */
export function lanRtoMs(rtoMinMs = TCP_RTO_MIN_MS, rttMs = LAN_RTT_MS, hz = TUNE_HZ): number {
  const jiffy = 1000 / hz;
  return Math.ceil((rtoMinMs + rttMs) / jiffy) * jiffy;
}

export { type SynGiveUp, synGiveUp } from "../model/tcp.js";
