// Socket syscalls: check argument types, fill structs, make the call, return the result or -errno.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "args.h"
#include "calls.h"

namespace sockprobe {

namespace {

// Fills a sockaddr from a textual address; false when the text is no IPv4 or IPv6 literal.
bool FillAddr(const std::string& host, int port, sockaddr_storage* ss, socklen_t* len) {
  memset(ss, 0, sizeof(*ss));
  auto* v4 = reinterpret_cast<sockaddr_in*>(ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

Napi::Value AddrObject(Napi::Env env, const sockaddr_storage& ss) {
  char text[INET6_ADDRSTRLEN] = {0};
  auto out = Napi::Object::New(env);
  if (ss.ss_family == AF_INET) {
    auto* v4 = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
    out.Set("family", AF_INET);
    out.Set("port", ntohs(v4->sin_port));
  } else if (ss.ss_family == AF_INET6) {
    auto* v6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
    out.Set("family", AF_INET6);
    out.Set("port", ntohs(v6->sin6_port));
  } else {
    out.Set("family", static_cast<int>(ss.ss_family));
    out.Set("port", 0);
  }
  out.Set("address", text);
  return out;
}

Napi::Value Name(const Napi::CallbackInfo& info, bool peer) {
  int fd;
  if (!ReadInts(info, 1, &fd, peer ? "getpeername(fd: number)" : "getsockname(fd: number)")) return info.Env().Undefined();
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  auto* sa = reinterpret_cast<sockaddr*>(&ss);
  int r = peer ? getpeername(fd, sa, &len) : getsockname(fd, sa, &len);
  int err = errno;
  if (r < 0) return Ret(info, -err);
  return AddrObject(info.Env(), ss);
}

}  // namespace

// The main thread's own namespace, opened once: opening it costs more than the two setns calls.
int HomeNetns() {
  static int home = [] {
    int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
  }();
  return home;
}

Napi::Value Socket(const Napi::CallbackInfo& info) {
  int a[3];
  if (!ReadInts(info, 3, a, "socket(family: number, type: number, protocol: number)")) return info.Env().Undefined();
  int fd = socket(a[0], a[1], a[2]);
  int err = errno;
  return Ret(info, fd < 0 ? -err : fd);
}

// Creates the socket inside the namespace behind nsFd.
Napi::Value SocketAt(const Napi::CallbackInfo& info) {
  int a[4];
  if (!ReadInts(info, 4, a, "socketAt(nsFd: number, family: number, type: number, protocol: number)"))
    return info.Env().Undefined();
  return Ret(info, InNetns(a[0], [&]() -> long {
               int fd = socket(a[1], a[2], a[3]);
               return fd < 0 ? -errno : fd;
             }));
}

Napi::Value Bind(const Napi::CallbackInfo& info) {
  if (!WantNumberStringNumber(info, "bind(fd: number, address: string, port: number)")) return info.Env().Undefined();
  sockaddr_storage ss;
  socklen_t len;
  if (!FillAddr(info[1].As<Napi::String>().Utf8Value(), Int(info, 2), &ss, &len)) return Ret(info, -EINVAL);
  int r = bind(Int(info, 0), reinterpret_cast<sockaddr*>(&ss), len);
  int err = errno;
  return Ret(info, r < 0 ? -err : r);
}

Napi::Value Connect(const Napi::CallbackInfo& info) {
  if (!WantNumberStringNumber(info, "connect(fd: number, address: string, port: number)"))
    return info.Env().Undefined();
  sockaddr_storage ss;
  socklen_t len;
  if (!FillAddr(info[1].As<Napi::String>().Utf8Value(), Int(info, 2), &ss, &len)) return Ret(info, -EINVAL);
  int r;
  do r = connect(Int(info, 0), reinterpret_cast<sockaddr*>(&ss), len);
  while (r < 0 && errno == EINTR);
  int err = errno;
  return Ret(info, r < 0 ? -err : r);
}

Napi::Value Listen(const Napi::CallbackInfo& info) {
  int a[2];
  if (!ReadInts(info, 2, a, "listen(fd: number, backlog: number)")) return info.Env().Undefined();
  int r = listen(a[0], a[1]);
  int err = errno;
  return Ret(info, r < 0 ? -err : r);
}

Napi::Value Accept(const Napi::CallbackInfo& info) {
  int a[2];
  if (!ReadInts(info, 2, a, "accept(fd: number, flags: number)")) return info.Env().Undefined();
  int r;
  do r = accept4(a[0], nullptr, nullptr, a[1]);
  while (r < 0 && errno == EINTR);
  int err = errno;
  return Ret(info, r < 0 ? -err : r);
}

Napi::Value GetSockName(const Napi::CallbackInfo& info) { return Name(info, false); }
Napi::Value GetPeerName(const Napi::CallbackInfo& info) { return Name(info, true); }

Napi::Value Close(const Napi::CallbackInfo& info) {
  int fd;
  if (!ReadInts(info, 1, &fd, "close(fd: number)")) return info.Env().Undefined();
  // No retry on EINTR: on Linux the descriptor is released even then.
  int r = close(fd);
  int err = errno;
  return Ret(info, r < 0 ? -err : r);
}

// recv(fd, buffer, offset, length, flags) and send(...) share one shape.
static Napi::Value Transfer(const Napi::CallbackInfo& info, bool sending) {
  const char* usage = sending ? "send(fd: number, buffer: Buffer, offset: number, length: number, flags: number)"
                              : "recv(fd: number, buffer: Buffer, offset: number, length: number, flags: number)";
  if (info.Length() < 5 || !info[0].IsNumber() || !info[1].IsBuffer() || !info[2].IsNumber() ||
      !info[3].IsNumber() || !info[4].IsNumber()) {
    return ThrowUsage(info, usage);
  }
  auto buf = info[1].As<Napi::Buffer<uint8_t>>();
  int64_t off = info[2].As<Napi::Number>().Int64Value();
  int64_t len = info[3].As<Napi::Number>().Int64Value();
  if (off < 0 || len < 0 || static_cast<size_t>(off + len) > buf.Length()) {
    Napi::RangeError::New(info.Env(), "offset and length must lie within the buffer").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  ssize_t r;
  // MSG_NOSIGNAL always: EPIPE must be an error, never a SIGPIPE that kills the process.
  do r = sending ? send(Int(info, 0), buf.Data() + off, len, Int(info, 4) | MSG_NOSIGNAL)
                 : recv(Int(info, 0), buf.Data() + off, len, Int(info, 4));
  while (r < 0 && errno == EINTR);
  int err = errno;
  return Ret(info, r < 0 ? -err : r);
}

Napi::Value Recv(const Napi::CallbackInfo& info) { return Transfer(info, false); }
Napi::Value Send(const Napi::CallbackInfo& info) { return Transfer(info, true); }

Napi::Value Shutdown(const Napi::CallbackInfo& info) {
  int a[2];
  if (!ReadInts(info, 2, a, "shutdown(fd: number, how: number)")) return info.Env().Undefined();
  int r = shutdown(a[0], a[1]);
  int err = errno;
  return Ret(info, r < 0 ? -err : r);
}

Napi::Value SetSockOptInt(const Napi::CallbackInfo& info) {
  int a[4];
  if (!ReadInts(info, 4, a, "setsockoptInt(fd: number, level: number, name: number, value: number)"))
    return info.Env().Undefined();
  int r = setsockopt(a[0], a[1], a[2], &a[3], sizeof(a[3]));
  int err = errno;
  return Ret(info, r < 0 ? -err : r);
}

// Returns the value itself, or -errno - 2^32 on failure: an int option always fits int32, so the two
// never overlap, and no out-array has to cross the boundary. Written against the plain C API (no
// CallbackInfo, no wrapper objects): this is the call the benchmark holds against Python's.
napi_value GetSockOptIntRaw(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 3;
  napi_value argv[3];
  int a[3];
  napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr);
  for (size_t i = 0; i < 3; i++) {
    if (i >= argc || napi_get_value_int32(env, argv[i], &a[i]) != napi_ok) {
      napi_throw_type_error(env, nullptr, "getsockoptInt(fd: number, level: number, name: number)");
      return nullptr;
    }
  }
  int v = 0;
  socklen_t len = sizeof(v);
  int r = getsockopt(a[0], a[1], a[2], &v, &len);
  int err = errno;
  napi_value out;
  if (r < 0) {
    napi_create_double(env, -static_cast<double>(err) - 4294967296.0, &out);
  } else {
    napi_create_int32(env, v, &out);
  }
  return out;
}

Napi::Value SetSockOptLinger(const Napi::CallbackInfo& info) {
  int a[3];
  if (!ReadInts(info, 3, a, "setsockoptLinger(fd: number, onoff: number, linger: number)"))
    return info.Env().Undefined();
  struct linger l = {a[1], a[2]};
  int r = setsockopt(a[0], SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  int err = errno;
  return Ret(info, r < 0 ? -err : r);
}

Napi::Value GetSockOptLinger(const Napi::CallbackInfo& info) {
  const char* usage = "getsockoptLinger(fd: number, out: Int32Array(2))";
  int fd;
  if (!ReadInts(info, 1, &fd, usage)) return info.Env().Undefined();
  int32_t* out = Int32Slots(info, 1, 2, usage);
  if (!out) return info.Env().Undefined();
  struct linger l = {0, 0};
  socklen_t len = sizeof(l);
  int r = getsockopt(fd, SOL_SOCKET, SO_LINGER, &l, &len);
  int err = errno;
  if (r < 0) return Ret(info, -err);
  out[0] = l.l_onoff;
  out[1] = l.l_linger;
  return Ret(info, 0);
}

// Copies an option's raw bytes (TCP_INFO): returns how many the kernel wrote.
Napi::Value GetSockOptBytes(const Napi::CallbackInfo& info) {
  const char* usage = "getsockoptBytes(fd: number, level: number, name: number, out: Buffer)";
  int a[3];
  if (!ReadInts(info, 3, a, usage)) return info.Env().Undefined();
  if (info.Length() < 4 || !info[3].IsBuffer()) return ThrowUsage(info, usage);
  auto buf = info[3].As<Napi::Buffer<uint8_t>>();
  socklen_t len = static_cast<socklen_t>(buf.Length());
  int r = getsockopt(a[0], a[1], a[2], buf.Data(), &len);
  int err = errno;
  return Ret(info, r < 0 ? -err : static_cast<long>(len));
}

Napi::Value IoctlInt(const Napi::CallbackInfo& info) {
  const char* usage = "ioctlInt(fd: number, request: number, out: Int32Array)";
  int a[2];
  if (!ReadInts(info, 2, a, usage)) return info.Env().Undefined();
  int32_t* out = Int32Slots(info, 2, 1, usage);
  if (!out) return info.Env().Undefined();
  int v = 0;
  // The kernel takes the request as 32 bits (unsigned int cmd), so an int32 read loses nothing.
  int r = ioctl(a[0], static_cast<unsigned long>(static_cast<uint32_t>(a[1])), &v);
  int err = errno;
  if (r < 0) return Ret(info, -err);
  out[0] = v;
  return Ret(info, 0);
}

Napi::Value SetNonBlocking(const Napi::CallbackInfo& info) {
  int a[2];
  if (!ReadInts(info, 2, a, "setNonBlocking(fd: number, on: number)")) return info.Env().Undefined();
  int flags = fcntl(a[0], F_GETFL);
  int err = errno;
  if (flags < 0) return Ret(info, -err);
  flags = a[1] ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  int r = fcntl(a[0], F_SETFL, flags);
  err = errno;
  return Ret(info, r < 0 ? -err : 0);
}

}  // namespace sockprobe
