// The kernel a scenario runs on, as the model needs it: its release, which knobs it has and what
// its tracepoints carry. A rule that changed upstream is detected by the knob that came with it
// where there is one (a missing sysctl means the behavior from before it existed), by the release
// otherwise; each is cited where it changed.
import type { KernelFacts } from "../evidence/kernel-facts.js";

export type { KernelFacts };

/** How to tell whether a kernel has a rule. */
export type RuleDetect =
  | { readonly sysctl: string }
  | { readonly release: string }
  | { readonly tracepoint: string; readonly field: string };

/** A behavior that changed upstream, with how to tell whether a kernel has it. */
export interface KernelRule {
  /** What the kernel does when the rule applies. */
  readonly behavior: string;
  /** What it did before. */
  readonly before: string;
  /** The upstream commit's title, and the release it first shipped in. */
  readonly commit: string;
  readonly since: string;
  /** Where in the kernel's source it lives. */
  readonly source: string;
  readonly detect: RuleDetect;
}

/** `[6, 12, 117]` from `6.12.117+deb12-amd64`; missing parts are 0. Debian's `6.1.0-56` is 6.1.0. */
export function releaseNumbers(release: string): [number, number, number] {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : [0, 0, 0];
}

/** Whether `release` is at least `min` (`6.5`); only major.minor count, as Debian's third number is its ABI. */
export function releaseAtLeast(release: string, min: string): boolean {
  const [a1, a2] = releaseNumbers(release);
  const [b1, b2] = releaseNumbers(min);
  return a1 !== b1 ? a1 > b1 : a2 >= b2;
}

/** The rules the model applies, each cited where it changed upstream. */
export const KERNEL_RULES = {
  "syn-linear-timeouts": {
    behavior: "the first tcp_syn_linear_timeouts SYN retransmissions come at a constant 1 s, then the backoff doubles",
    before: "every SYN retransmission doubles the timeout from 1 s: 1, 3, 7, 15, 31, 63 s, connect() fails at 127 s",
    commit: "tcp: make the first N SYN RTO backoffs linear",
    since: "6.5",
    source: "net/ipv4/tcp_timer.c: tcp_retransmit_timer()",
    detect: { sysctl: "net.ipv4.tcp_syn_linear_timeouts" },
  },
  "tw-reuse-delay-ms": {
    behavior: "connect() takes over a TIME_WAIT once tcp_tw_reuse_delay ms have passed since it entered TIME_WAIT",
    before:
      "connect() takes over a TIME_WAIT once the 1 Hz monotonic clock (ktime_get_seconds) has passed the second of its last TS.Recent update: 0 to 1000 ms, by phase",
    commit: "tcp: Add sysctl to configure TIME-WAIT reuse delay",
    since: "6.14",
    source: "net/ipv4/tcp_ipv4.c: tcp_twsk_unique()",
    detect: { sysctl: "net.ipv4.tcp_tw_reuse_delay" },
  },
  "send-reset-every-rst": {
    behavior: "the tcp_send_reset tracepoint fires for every RST sent, with its reason, also where no socket exists",
    before:
      "tcp_send_reset has no reason field and fires only for a full socket: an RST for no socket, from TIME_WAIT or from a request socket is not traced",
    commit: "trace: tcp: fully support trace_tcp_send_reset",
    since: "6.10",
    source: "include/trace/events/tcp.h; net/ipv4/tcp_ipv4.c: tcp_v4_send_reset()",
    detect: { tracepoint: "tcp/tcp_send_reset", field: "reason" },
  },
  "rto-max-sysctl": {
    behavior: "the RTO's ceiling is tcp_rto_max_ms (120 s by default), which also bounds tcp_retries2's time budget",
    before: "the RTO's ceiling is TCP_RTO_MAX, a fixed 120 s",
    commit: "tcp: add tcp_rto_max_ms sysctl",
    since: "6.15",
    source: "net/ipv4/tcp_timer.c: tcp_model_timeout(), tcp_rto_max()",
    detect: { sysctl: "net.ipv4.tcp_rto_max_ms" },
  },
  "delack-max-from-rto-min": {
    behavior: "the longest delayed ACK is the minimum RTO less one jiffy (196 ms at HZ=250)",
    before: "the longest delayed ACK is TCP_DELACK_MAX, 200 ms",
    commit: "tcp: derive delack_max from rto_min",
    since: "6.7",
    source: "net/ipv4/tcp_output.c: tcp_delack_max()",
    detect: { release: "6.7" },
  },
} as const satisfies Record<string, KernelRule>;

/** A rule's name. */
export type RuleId = keyof typeof KERNEL_RULES;

/** Whether the kernel has the rule's behavior; undefined where it cannot be told (tracefs unavailable). */
export function ruleApplies(rule: KernelRule, k: KernelFacts): boolean | undefined {
  const d = rule.detect;
  if ("sysctl" in d) return k.sysctls.has(d.sysctl);
  if ("tracepoint" in d) return k.tracepointFields.get(d.tracepoint)?.includes(d.field);
  return releaseAtLeast(k.release, d.release);
}

/** A rule in one sentence, for reports: `tcp_syn_linear_timeouts (6.5, "tcp: make …")`. */
export function ruleText(id: RuleId): string {
  const r: KernelRule = KERNEL_RULES[id];
  const knob = "sysctl" in r.detect ? r.detect.sysctl.replace(/^net\.ipv4\./, "") : id;
  return `${knob} (${r.since}, "${r.commit}")`;
}
