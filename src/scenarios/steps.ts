// Steps many scenarios share: bounded waits on the kernel's view, and TCP state paths from tracepoints.
import type { SocketRow } from "../evidence/socket-table.js";
import type { TraceEvent } from "../evidence/tracepoints.js";
import type { Host, HostSocket } from "../lab/host.js";
import type { HostOptions, Lab } from "../lab/lab.js";
import { type ResetOrigin, sendResetText, sendResetTrace } from "../model/close.js";
import type { ScenarioContext } from "./scenario.js";

/** The port kodos serves on, as in the seeds. */
export const SERVER_PORT = 8080;

/** How often rowGone looks while the row is not yet due to go. */
export const SPARSE_LOOK_MS = 200;

/** Runs a program on a host to its end; its exit code and what it printed. */
export async function runOn(
  host: Host,
  argv: readonly string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = host.spawn(argv);
  let stdout = "";
  let stderr = "";
  p.stdout.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
  });
  p.stderr.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  const { code } = await p.exited;
  return { code, stdout, stderr };
}

/** One of the host's TcpExt counters (/proc/net/netstat, per network namespace, so per host). */
export async function tcpExtCounter(host: Host, name: string): Promise<number> {
  const r = await runOn(host, ["cat", "/proc/net/netstat"]);
  const lines = r.stdout.split("\n").filter((l) => l.startsWith("TcpExt:"));
  const keys = lines[0]?.split(/\s+/) ?? [];
  const values = lines[1]?.split(/\s+/) ?? [];
  const i = keys.indexOf(name);
  if (r.code !== 0 || i < 1 || values[i] === undefined) {
    throw new Error(
      `TcpExt ${name} on ${host.name}: cat /proc/net/netstat exited ${r.code}, ${r.stderr.trim() || "no such counter"}`,
    );
  }
  return Number(values[i]);
}

/** The seeds' cast: kang the client, kodos the server listening on SERVER_PORT. */
export async function kangAndKodos(
  lab: Lab,
  options: { kang?: HostOptions; kodos?: HostOptions; backlog?: number } = {},
): Promise<{ kang: Host; kodos: Host; listener: HostSocket }> {
  // Booted together: a VM backend's boots then overlap.
  const [kang, kodos] = await Promise.all([lab.addHost("kang", options.kang), lab.addHost("kodos", options.kodos)]);
  const listener = await kodos.listen(SERVER_PORT, options.backlog === undefined ? {} : { backlog: options.backlog });
  return { kang, kodos, listener };
}

/** One connection from kang to kodos's listener, both ends and the client's port. */
export async function connection(
  kang: Host,
  kodos: Host,
  listener: HostSocket,
): Promise<{ client: HostSocket; server: HostSocket; port: number }> {
  const client = await kang.connect(kodos.ipv4, SERVER_PORT);
  const server = await listener.acceptAsync({ timeoutMs: 2000 });
  return { client, server, port: (await client.localAddress()).port };
}

/** A connection's retransmission timer and smoothed RTT in ms (TCP_INFO gives µs): what the model's timers start from. */
export async function tcpTimers(sock: HostSocket): Promise<{ rtoMs: number; srttMs: number }> {
  const i = await sock.tcpInfo();
  return { rtoMs: Number(i.rto) / 1000, srttMs: Number(i.rtt) / 1000 };
}

/** Probes (bounded) until `done` holds; the last value either way. It probes at least once, so 0 looks once. */
export async function waitUntil<T>(
  probe: () => Promise<T>,
  done: (v: T) => boolean,
  timeoutMs: number,
  intervalMs = 10,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (done(v) || Date.now() >= deadline) return v;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Looks at the host's socket table until a row matches (bounded); undefined if none did. 0 looks once. */
export async function waitForRow(
  host: Host,
  match: (r: SocketRow) => boolean,
  timeoutMs: number,
): Promise<SocketRow | undefined> {
  const rows = await waitUntil(
    () => host.sockets(),
    (all) => all.some(match),
    timeoutMs,
  );
  return rows.find(match);
}

/** Waits (bounded) until no row matches; true if the table cleared in time. */
export async function waitForNoRow(host: Host, match: (r: SocketRow) => boolean, timeoutMs: number): Promise<boolean> {
  const rows = await waitUntil(
    () => host.sockets(),
    (all) => !all.some(match),
    timeoutMs,
  );
  return !rows.some(match);
}

/**
 * When a row left the table, as closely as polling `ss` can tell: between the last look that saw it
 * (or `seenUs`, when the caller last saw it) and the first that did not. The midpoint is the
 * estimate and half the gap its own uncertainty. Before `sparseUntilUs` it looks only every
 * SPARSE_LOOK_MS, so a long wait does not load the machine with ss.
 */
export async function rowGone(
  host: Host,
  match: (r: SocketRow) => boolean,
  timeoutMs: number,
  now: () => number,
  at: { seenUs: number; sparseUntilUs?: number },
): Promise<{ cleared: boolean; atUs: number; uncertaintyUs: number }> {
  const deadline = Date.now() + timeoutMs;
  // Where the first look finds it gone, it went between the caller's last sight of it and that look.
  let lastSeenUs = at.seenUs;
  for (;;) {
    // ss reads the table somewhere between its start and its end: seen means still there at the
    // start, not seen means gone by the end.
    const before = now();
    const present = (await host.sockets()).some(match);
    const after = now();
    if (!present) return { cleared: true, atUs: (lastSeenUs + after) / 2, uncertaintyUs: (after - lastSeenUs) / 2 };
    lastSeenUs = before;
    if (Date.now() >= deadline) return { cleared: false, atUs: now(), uncertaintyUs: 0 };
    await new Promise((r) => setTimeout(r, after < (at.sparseUntilUs ?? 0) ? SPARSE_LOOK_MS : 5));
  }
}

/** TCP state changes seen so far, by socket. */
export interface StateChanges {
  readonly available: boolean;
  readonly reason?: string;
  readonly events: ReadonlyArray<TraceEvent & { atUs: number }>;
  /**
   * The states one socket passed, "ESTABLISHED>FIN_WAIT1>FIN_WAIT2>CLOSE": the socket whose local
   * end is address:port (and whose peer port is peerPort, if given), from the first change out of `from`.
   */
  path(address: string, port: number, from?: string, peerPort?: number): string;
  /** When the socket entered `state` (µs on the lab's clock), if it did. */
  enteredAt(address: string, port: number, state: string, peerPort?: number): number | undefined;
}

/** Reads the lab's running trace now. */
export async function stateChanges(lab: Lab): Promise<StateChanges> {
  const events = (await lab.traceSnapshot()) ?? [];
  const status = lab.traceStatus();
  const mine = (address: string, port: number, peerPort?: number) =>
    events.filter(
      (e) =>
        e.event === "inet_sock_set_state" &&
        e.saddr === address &&
        e.sport === port &&
        (peerPort === undefined || e.dport === peerPort) &&
        e.dport !== 0,
    );
  return {
    available: status.available,
    ...(status.reason ? { reason: status.reason } : {}),
    events,
    path(address, port, from, peerPort) {
      const list = mine(address, port, peerPort);
      const start = from ? list.findIndex((e) => e.oldstate === from) : 0;
      if (start < 0) return "";
      const slice = list.slice(start);
      // A state entered again (the kernel traces tcp_set_state even when it does not change) is not a step.
      const states = [slice[0]?.oldstate, ...slice.map((e) => e.newstate)].filter(Boolean);
      return states.filter((st, i) => i === 0 || st !== states[i - 1]).join(">");
    },
    enteredAt(address, port, state, peerPort) {
      return mine(address, port, peerPort).find((e) => e.newstate === state)?.atUs;
    },
  };
}

/**
 * Checks what tcp_send_reset showed of one RST that `who` sent, against what this kernel's
 * tracepoint shows (the send-reset-every-rst rule): one event with its reason on 6.10+; before, one
 * event without a reason from a socket, and none at all for an RST sent without one.
 */
export function checkSentReset(
  ctx: ScenarioContext,
  label: string,
  who: { name: string; ipv4: string },
  sent: readonly TraceEvent[],
  origin: ResetOrigin,
  reason: string,
): boolean {
  const every = ctx.rule("send-reset-every-rst") === true;
  const want = sendResetTrace(origin, reason, every);
  return ctx.expectThat(
    label,
    want.traced
      ? sent.length === 1 && sent[0]?.saddr === who.ipv4 && sent[0]?.reason === want.reason
      : sent.length === 0,
    sendResetText(who.name, origin, reason, every),
    sent.map((e) => `${e.saddr} ${e.reason ?? "(no reason)"}`).join(", ") || "none",
  );
}
