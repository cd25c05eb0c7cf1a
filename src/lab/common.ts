// What every backend's Lab and Host do alike, whatever a host is: the calls built from a host's own
// socket(), TCP_INFO sampling, and the record of a fault.

import type { Transcript } from "../sys/transcript.js";
import type { Host, HostSocket } from "./host.js";
import type { FaultEvent, TcpInfoSample } from "./lab.js";

/** A listening socket on the host's address (SO_REUSEADDR, backlog 128 by default). */
export async function listenOn(
  host: Pick<Host, "socket" | "ipv4" | "ipv6">,
  port = 0,
  options: { backlog?: number; family?: "IPv4" | "IPv6" } = {},
): Promise<HostSocket> {
  const family = options.family ?? "IPv4";
  const s = await host.socket({ family });
  await s.setOption("SO_REUSEADDR", 1);
  await s.bind(family === "IPv6" ? host.ipv6 : host.ipv4, port);
  await s.listen(options.backlog ?? 128);
  return s;
}

/** A connected socket from the host, bounded by timeoutMs (5 s by default); closed again if it fails. */
export async function connectFrom(
  host: Pick<Host, "socket">,
  address: string,
  port: number,
  options: { timeoutMs?: number; family?: "IPv4" | "IPv6" } = {},
): Promise<HostSocket> {
  const s = await host.socket({ family: options.family ?? (address.includes(":") ? "IPv6" : "IPv4") });
  try {
    await s.connectAsync(address, port, { timeoutMs: options.timeoutMs ?? 5000 });
  } catch (e) {
    await s.close();
    throw e;
  }
  return s;
}

/** Samples TCP_INFO every intervalMs until `until` settles, maxSamples are taken, or the socket goes. */
export async function sampleTcpInfo(
  transcript: Transcript,
  socket: HostSocket,
  options: { intervalMs: number; until: Promise<unknown>; maxSamples?: number },
): Promise<TcpInfoSample[]> {
  const samples: TcpInfoSample[] = [];
  let done = false;
  const settle = () => {
    done = true;
  };
  options.until.then(settle, settle);
  const max = options.maxSamples ?? 10_000;
  while (!done && samples.length < max) {
    try {
      samples.push({ atUs: transcript.nowUs(), info: await socket.tcpInfo() });
    } catch {
      break; // the socket was closed or its host powered off: sampling ends there
    }
    await Promise.race([new Promise((r) => setTimeout(r, options.intervalMs)), options.until.catch(() => {})]);
  }
  return samples;
}

/** A fault now, on the lab's clock, with what the backend did to give it (`command`). */
export function faultEvent(
  transcript: Transcript,
  fault: string,
  hosts: ReadonlyArray<{ name: string }>,
  command: string,
  detail?: string,
): FaultEvent {
  return { atUs: transcript.nowUs(), fault, hosts: hosts.map((h) => h.name), ...(detail ? { detail } : {}), command };
}

/** A host of a lab by name, or the error naming the hosts it has. */
export function hostNamed<H>(hosts: ReadonlyMap<string, H>, name: string, lab: string): H {
  const h = hosts.get(name);
  if (!h)
    throw new TypeError(
      `no host ${JSON.stringify(name)} in lab ${lab}; it has ${[...hosts.keys()].join(", ") || "none"}`,
    );
  return h;
}

/** The lab's own object for a host given by name or as a Host, or the error: it is another lab's. */
export function hostOf<H extends { name: string }>(
  hosts: ReadonlyMap<string, H>,
  h: H | Host | string,
  lab: string,
): H {
  const name = typeof h === "string" ? h : h.name;
  const host = hosts.get(name);
  if (!host || (typeof h !== "string" && host !== h)) throw new TypeError(`${name} is not a host of lab ${lab}`);
  return host;
}
