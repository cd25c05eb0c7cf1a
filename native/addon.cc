// Export table only.
#include "calls.h"

using namespace sockprobe;

// A function made straight from a plain N-API callback, for the hottest calls.
static Napi::Value RawFunction(Napi::Env env, const char* name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, nullptr, &fn);
  return Napi::Value(env, fn);
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("socket", Napi::Function::New<Socket>(env, "socket"));
  exports.Set("socketAt", Napi::Function::New<SocketAt>(env, "socketAt"));
  exports.Set("bind", Napi::Function::New<Bind>(env, "bind"));
  exports.Set("listen", Napi::Function::New<Listen>(env, "listen"));
  exports.Set("accept", Napi::Function::New<Accept>(env, "accept"));
  exports.Set("connect", Napi::Function::New<Connect>(env, "connect"));
  exports.Set("getsockname", Napi::Function::New<GetSockName>(env, "getsockname"));
  exports.Set("getpeername", Napi::Function::New<GetPeerName>(env, "getpeername"));
  exports.Set("close", Napi::Function::New<Close>(env, "close"));
  exports.Set("recv", Napi::Function::New<Recv>(env, "recv"));
  exports.Set("send", Napi::Function::New<Send>(env, "send"));
  exports.Set("shutdown", Napi::Function::New<Shutdown>(env, "shutdown"));
  exports.Set("setsockoptInt", Napi::Function::New<SetSockOptInt>(env, "setsockoptInt"));
  exports.Set("getsockoptInt", RawFunction(env, "getsockoptInt", GetSockOptIntRaw));
  exports.Set("setsockoptLinger", Napi::Function::New<SetSockOptLinger>(env, "setsockoptLinger"));
  exports.Set("getsockoptLinger", Napi::Function::New<GetSockOptLinger>(env, "getsockoptLinger"));
  exports.Set("getsockoptBytes", Napi::Function::New<GetSockOptBytes>(env, "getsockoptBytes"));
  exports.Set("ioctlInt", Napi::Function::New<IoctlInt>(env, "ioctlInt"));
  exports.Set("setNonBlocking", Napi::Function::New<SetNonBlocking>(env, "setNonBlocking"));
  exports.Set("poll", Napi::Function::New<Poll>(env, "poll"));
  exports.Set("pollAsync", Napi::Function::New<PollAsync>(env, "pollAsync"));
  exports.Set("eventfd", Napi::Function::New<EventFd>(env, "eventfd"));
  exports.Set("eventfdSignal", Napi::Function::New<EventFdSignal>(env, "eventfdSignal"));
  exports.Set("tcpInfoHeaderLayout", Napi::Function::New<TcpInfoHeaderLayout>(env, "tcpInfoHeaderLayout"));
  exports.Set("constants", Napi::Function::New<Constants>(env, "constants"));
  exports.Set("netnsCreate", Napi::Function::New<NetnsCreate>(env, "netnsCreate"));
  exports.Set("ifFlags", Napi::Function::New<IfFlags>(env, "ifFlags"));
  exports.Set("openAt", Napi::Function::New<OpenAt>(env, "openAt"));
  exports.Set("closeAsync", Napi::Function::New<CloseAsync>(env, "closeAsync"));
  return exports;
}

NODE_API_MODULE(sockprobe, Init)
