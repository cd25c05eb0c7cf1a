// Numbers from the system headers, so TypeScript never restates them as literals.
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/tcp.h>  // the kernel uapi struct tcp_info, newer than glibc's copy
#include <sys/ioctl.h>
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>

#include "calls.h"

#ifndef POLLRDHUP
#define POLLRDHUP 0x2000
#endif

namespace sockprobe {

#define SET(name) out.Set(#name, Napi::Number::New(env, static_cast<double>(name)))

Napi::Value Constants(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = Napi::Object::New(env);
  SET(AF_INET); SET(AF_INET6); SET(SOCK_STREAM); SET(SOCK_DGRAM); SET(SOCK_NONBLOCK); SET(SOCK_CLOEXEC);
  SET(IPPROTO_TCP); SET(IPPROTO_IP); SET(IPPROTO_IPV6); SET(SOL_SOCKET);
  SET(SHUT_RD); SET(SHUT_WR); SET(SHUT_RDWR);
  SET(MSG_PEEK); SET(MSG_DONTWAIT); SET(MSG_WAITALL); SET(MSG_MORE); SET(MSG_NOSIGNAL);
  SET(SO_LINGER); SET(SO_KEEPALIVE); SET(SO_SNDBUF); SET(SO_RCVBUF); SET(SO_REUSEADDR); SET(SO_REUSEPORT);
  SET(SO_ERROR);
  SET(TCP_NODELAY); SET(TCP_MAXSEG); SET(TCP_KEEPIDLE); SET(TCP_KEEPINTVL); SET(TCP_KEEPCNT);
  SET(TCP_SYNCNT); SET(TCP_LINGER2); SET(TCP_INFO);
  SET(TCP_USER_TIMEOUT); SET(TCP_NOTSENT_LOWAT);
  SET(IP_RECVERR); SET(IPV6_RECVERR); SET(IPV6_V6ONLY);
  SET(POLLIN); SET(POLLPRI); SET(POLLOUT); SET(POLLERR); SET(POLLHUP); SET(POLLNVAL); SET(POLLRDHUP);
  SET(SIOCINQ); SET(SIOCOUTQ); SET(SIOCOUTQNSD);
  SET(IFF_UP);
  return out;
}

#undef SET

// Offsets of struct tcp_info's whole-byte fields as the build's headers lay them out; the parser's
// table covers newer kernels too and is checked against these.
Napi::Value TcpInfoHeaderLayout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = Napi::Object::New(env);
#define F(name) out.Set(#name, Napi::Number::New(env, offsetof(struct tcp_info, tcpi_##name)))
  F(state); F(ca_state); F(retransmits); F(probes); F(backoff); F(options);
  F(rto); F(ato); F(snd_mss); F(rcv_mss); F(unacked); F(sacked); F(lost); F(retrans); F(fackets);
  F(last_data_sent); F(last_ack_sent); F(last_data_recv); F(last_ack_recv);
  F(pmtu); F(rcv_ssthresh); F(rtt); F(rttvar); F(snd_ssthresh); F(snd_cwnd); F(advmss); F(reordering);
  F(rcv_rtt); F(rcv_space); F(total_retrans); F(pacing_rate); F(max_pacing_rate); F(bytes_acked);
  F(bytes_received); F(segs_out); F(segs_in); F(notsent_bytes); F(min_rtt); F(data_segs_in); F(data_segs_out);
  F(delivery_rate); F(busy_time); F(rwnd_limited); F(sndbuf_limited); F(delivered); F(delivered_ce);
  F(bytes_sent); F(bytes_retrans); F(dsack_dups); F(reord_seen); F(rcv_ooopack); F(snd_wnd);
#undef F
  out.Set("$size", Napi::Number::New(env, sizeof(struct tcp_info)));
  return out;
}

}  // namespace sockprobe
