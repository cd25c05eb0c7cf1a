// Constants as the system headers define them, read from the addon.
import { native } from "./native.js";

const c = native.constants();

function need(name: string): number {
  const v = c[name];
  if (v === undefined) throw new Error(`the native addon does not define ${name}; rebuild it with \`npm run build\``);
  return v;
}

export const AF_INET = need("AF_INET");
export const AF_INET6 = need("AF_INET6");
export const SOCK_STREAM = need("SOCK_STREAM");
export const SOCK_DGRAM = need("SOCK_DGRAM");
export const IFF_UP = need("IFF_UP");
export const SOCK_NONBLOCK = need("SOCK_NONBLOCK");
export const SOCK_CLOEXEC = need("SOCK_CLOEXEC");
export const IPPROTO_TCP = need("IPPROTO_TCP");
export const IPPROTO_IP = need("IPPROTO_IP");
export const IPPROTO_IPV6 = need("IPPROTO_IPV6");
export const SOL_SOCKET = need("SOL_SOCKET");

export const SHUT_RD = need("SHUT_RD");
export const SHUT_WR = need("SHUT_WR");
export const SHUT_RDWR = need("SHUT_RDWR");

export const MSG_PEEK = need("MSG_PEEK");
export const MSG_DONTWAIT = need("MSG_DONTWAIT");
export const MSG_WAITALL = need("MSG_WAITALL");
export const MSG_MORE = need("MSG_MORE");
export const MSG_NOSIGNAL = need("MSG_NOSIGNAL");

export const SO_LINGER = need("SO_LINGER");
export const SO_KEEPALIVE = need("SO_KEEPALIVE");
export const SO_SNDBUF = need("SO_SNDBUF");
export const SO_RCVBUF = need("SO_RCVBUF");
export const SO_REUSEADDR = need("SO_REUSEADDR");
export const SO_REUSEPORT = need("SO_REUSEPORT");
export const SO_ERROR = need("SO_ERROR");

export const TCP_NODELAY = need("TCP_NODELAY");
export const TCP_KEEPIDLE = need("TCP_KEEPIDLE");
export const TCP_KEEPINTVL = need("TCP_KEEPINTVL");
export const TCP_KEEPCNT = need("TCP_KEEPCNT");
export const TCP_SYNCNT = need("TCP_SYNCNT");
export const TCP_LINGER2 = need("TCP_LINGER2");
export const TCP_INFO = need("TCP_INFO");
export const TCP_USER_TIMEOUT = need("TCP_USER_TIMEOUT");
export const TCP_NOTSENT_LOWAT = need("TCP_NOTSENT_LOWAT");
export const TCP_MAXSEG = need("TCP_MAXSEG");

export const IP_RECVERR = need("IP_RECVERR");
export const IPV6_RECVERR = need("IPV6_RECVERR");
export const IPV6_V6ONLY = need("IPV6_V6ONLY");

export const POLLIN = need("POLLIN");
export const POLLPRI = need("POLLPRI");
export const POLLOUT = need("POLLOUT");
export const POLLERR = need("POLLERR");
export const POLLHUP = need("POLLHUP");
export const POLLNVAL = need("POLLNVAL");
export const POLLRDHUP = need("POLLRDHUP");

export const SIOCINQ = need("SIOCINQ");
export const SIOCOUTQ = need("SIOCOUTQ");
export const SIOCOUTQNSD = need("SIOCOUTQNSD");

/** poll(2) event bits by name, in the order they are printed. */
export const POLL_EVENTS: ReadonlyArray<readonly [string, number]> = [
  ["POLLIN", POLLIN],
  ["POLLPRI", POLLPRI],
  ["POLLOUT", POLLOUT],
  ["POLLERR", POLLERR],
  ["POLLHUP", POLLHUP],
  ["POLLNVAL", POLLNVAL],
  ["POLLRDHUP", POLLRDHUP],
];

/** Names of the bits set in a revents mask, e.g. ['POLLIN', 'POLLRDHUP']. */
export function pollNames(mask: number): string[] {
  return POLL_EVENTS.filter(([, bit]) => (mask & bit) !== 0).map(([name]) => name);
}
