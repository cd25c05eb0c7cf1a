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
  if (home < 0) return Ret(info, home);
  if (unshare(CLONE_NEWNET) < 0) {
    int err = errno;
    return Ret(info, -err);
  }
  int ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  int err = errno;
  if (setns(home, CLONE_NEWNET) < 0) abort();  // see InNetns
  return Ret(info, ns < 0 ? -err : ns);
}

// SIOCGIFFLAGS, then SIOCSIFFLAGS with `set` or-ed in when it is not 0; returns the flags.
Napi::Value IfFlags(const Napi::CallbackInfo& info) {
  if (!WantNumberStringNumber(info, "ifFlags(fd: number, ifname: string, set: number)")) return info.Env().Undefined();
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

// open(2) with this thread inside the namespace behind nsFd: /proc/sys/net files bind to the
// namespace of the opener, so the descriptor reads and writes that namespace's sysctls.
Napi::Value OpenAt(const Napi::CallbackInfo& info) {
  if (!WantNumberStringNumber(info, "openAt(nsFd: number, path: string, flags: number)")) return info.Env().Undefined();
  std::string path = info[1].As<Napi::String>().Utf8Value();
  int flags = Int(info, 2) | O_CLOEXEC;
  return Ret(info, InNetns(Int(info, 0), [&]() -> long {
               int fd = open(path.c_str(), flags);
               return fd < 0 ? -errno : fd;
             }));
}

}  // namespace sockprobe
