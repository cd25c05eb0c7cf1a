// The native surface: every function returns a result >= 0 or -errno, captured right after the call.
#pragma once
#include <napi.h>

namespace sockprobe {

// The descriptor of the namespace the main thread lives in, opened on first use and kept.
int HomeNetns();

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
