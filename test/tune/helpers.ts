// Shared by the tune tests: captured output, and a scripted namespace with the defaults of this kernel.
import { fileURLToPath } from "node:url";
import type { TuneIo } from "../../src/tune/command.js";

/** A fixture's path. */
export const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/tune/${name}`, import.meta.url));

/** The sysctls of a fresh network namespace on Linux 6.18 with a 262144-bucket TCP hash table. */
export const FRESH_NAMESPACE: Readonly<Record<string, string>> = {
  "net.ipv4.tcp_retries1": "3",
  "net.ipv4.tcp_retries2": "15",
  "net.ipv4.tcp_rto_max_ms": "120000",
  "net.ipv4.tcp_rto_min_us": "200000",
  "net.ipv4.tcp_syn_retries": "6",
  "net.ipv4.tcp_syn_linear_timeouts": "4",
  "net.ipv4.tcp_keepalive_time": "7200",
  "net.ipv4.tcp_keepalive_intvl": "75",
  "net.ipv4.tcp_keepalive_probes": "9",
  "net.ipv4.tcp_fin_timeout": "60",
  "net.ipv4.ip_local_port_range": "32768 60999",
  "net.ipv4.tcp_tw_reuse": "2",
  "net.ipv4.tcp_tw_reuse_delay": "1000",
  "net.ipv4.tcp_max_tw_buckets": "131072",
  "net.core.somaxconn": "4096",
  "net.ipv4.tcp_max_syn_backlog": "2048",
  "net.ipv4.tcp_abort_on_overflow": "0",
  "net.ipv4.tcp_syncookies": "1",
  "net.ipv4.tcp_synack_retries": "5",
  "net.ipv4.tcp_ehash_entries": "262144",
  "net.ipv4.tcp_congestion_control": "cubic",
};

/** Captured stdout and stderr; sysctls read from this namespace's /proc/sys. */
export function capturedIo() {
  const out = { text: "" };
  const err = { text: "" };
  const io: TuneIo = {
    stdout: { write: (s: string) => (out.text += s) },
    stderr: { write: (s: string) => (err.text += s) },
  };
  return { io, out, err };
}

/** Captured stdout and stderr, and a namespace read from `sysctls` instead of /proc/sys. */
export function scriptedIo(sysctls: Readonly<Record<string, string>> = FRESH_NAMESPACE) {
  const captured = capturedIo();
  const io: TuneIo = { ...captured.io, readSysctl: (key) => sysctls[key] };
  return { ...captured, io };
}
