// Network namespaces held only by a descriptor: nothing is mounted, so nothing outlives the process.
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "args.h"
#include "calls.h"

namespace sockprobe {

// unshare(CLONE_NEWNET) on this thread, keep a descriptor of the new namespace, switch back.
Napi::Value NetnsCreate(const Napi::CallbackInfo& info) {
  int home = HomeNetns();
  int err = errno;
  if (home < 0) return Ret(info, -err);
  if (unshare(CLONE_NEWNET) < 0) {
    err = errno;
    return Ret(info, -err);
  }
  int ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  err = errno;
  if (setns(home, CLONE_NEWNET) < 0) abort();  // see SocketAt
  return Ret(info, ns < 0 ? -err : ns);
}

// SIOCGIFFLAGS, then SIOCSIFFLAGS with `set` or-ed in when it is not 0; returns the flags.
Napi::Value IfFlags(const Napi::CallbackInfo& info) {
  const char* usage = "ifFlags(fd: number, ifname: string, set: number)";
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsNumber()) {
    Napi::TypeError::New(info.Env(), usage).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  std::string name = info[1].As<Napi::String>().Utf8Value();
  if (name.size() >= IFNAMSIZ) return Ret(info, -EINVAL);
  ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  memcpy(ifr.ifr_name, name.data(), name.size());
  int fd = Int(info, 0);
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) return Ret(info, -errno);
  int set = Int(info, 2);
  if (set != 0) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | set);
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) return Ret(info, -errno);
  }
  return Ret(info, static_cast<unsigned short>(ifr.ifr_flags));
}

}  // namespace sockprobe

namespace sockprobe {

// open(2) with this thread inside the namespace behind nsFd: /proc/sys/net files bind to the
// namespace of the opener, so the descriptor reads and writes that namespace's sysctls.
Napi::Value OpenAt(const Napi::CallbackInfo& info) {
  const char* usage = "openAt(nsFd: number, path: string, flags: number)";
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsNumber()) {
    Napi::TypeError::New(info.Env(), usage).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  std::string path = info[1].As<Napi::String>().Utf8Value();
  int home = HomeNetns();
  int err = errno;
  if (home < 0) return Ret(info, -err);
  if (setns(Int(info, 0), CLONE_NEWNET) < 0) return Ret(info, -errno);
  int fd = open(path.c_str(), Int(info, 2) | O_CLOEXEC);
  err = errno;
  if (setns(home, CLONE_NEWNET) < 0) abort();  // see SocketAt
  return Ret(info, fd < 0 ? -err : fd);
}

}  // namespace sockprobe
