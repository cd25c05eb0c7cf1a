// The native surface: every function returns a result >= 0 or -errno, captured right after the call.
#pragma once
#include <errno.h>
#include <napi.h>
#include <sched.h>
#include <stdlib.h>

namespace sockprobe {

// The descriptor of the namespace the main thread lives in, opened on first use and kept; -errno if it could not be.
int HomeNetns();

// Runs fn (which returns >= 0 or -errno) with this thread inside the namespace behind nsFd, then
// switches back. setns(CLONE_NEWNET) only moves the calling thread, and JavaScript runs on this one.
template <typename F>
long InNetns(int nsFd, F fn) {
  int home = HomeNetns();
  if (home < 0) return home;
  if (setns(nsFd, CLONE_NEWNET) < 0) return -errno;
  long r = fn();
  // A main thread left in a lab namespace would corrupt every later call.
  if (setns(home, CLONE_NEWNET) < 0) abort();
  return r;
}

Napi::Value Socket(const Napi::CallbackInfo& info);
Napi::Value SocketAt(const Napi::CallbackInfo& info);
Napi::Value Bind(const Napi::CallbackInfo& info);
Napi::Value Listen(const Napi::CallbackInfo& info);
Napi::Value Accept(const Napi::CallbackInfo& info);
Napi::Value Connect(const Napi::CallbackInfo& info);
Napi::Value GetSockName(const Napi::CallbackInfo& info);
Napi::Value GetPeerName(const Napi::CallbackInfo& info);
Napi::Value Close(const Napi::CallbackInfo& info);
Napi::Value Recv(const Napi::CallbackInfo& info);
Napi::Value Send(const Napi::CallbackInfo& info);
Napi::Value Shutdown(const Napi::CallbackInfo& info);
Napi::Value SetSockOptInt(const Napi::CallbackInfo& info);
napi_value GetSockOptIntRaw(napi_env env, napi_callback_info cbinfo);
Napi::Value SetSockOptLinger(const Napi::CallbackInfo& info);
Napi::Value GetSockOptLinger(const Napi::CallbackInfo& info);
Napi::Value GetSockOptBytes(const Napi::CallbackInfo& info);
Napi::Value IoctlInt(const Napi::CallbackInfo& info);
Napi::Value SetNonBlocking(const Napi::CallbackInfo& info);
Napi::Value Poll(const Napi::CallbackInfo& info);
Napi::Value PollAsync(const Napi::CallbackInfo& info);
Napi::Value EventFd(const Napi::CallbackInfo& info);
Napi::Value EventFdSignal(const Napi::CallbackInfo& info);
Napi::Value TcpInfoHeaderLayout(const Napi::CallbackInfo& info);
Napi::Value Constants(const Napi::CallbackInfo& info);
Napi::Value NetnsCreate(const Napi::CallbackInfo& info);
Napi::Value IfFlags(const Napi::CallbackInfo& info);
Napi::Value OpenAt(const Napi::CallbackInfo& info);
Napi::Value CloseAsync(const Napi::CallbackInfo& info);

}  // namespace sockprobe
