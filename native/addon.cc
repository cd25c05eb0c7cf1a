// Export table only.
#include "calls.h"

using namespace sockprobe;

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("socket", Napi::Function::New(env, Socket, "socket"));
  exports.Set("socketAt", Napi::Function::New(env, SocketAt, "socketAt"));
  exports.Set("bind", Napi::Function::New(env, Bind, "bind"));
  exports.Set("listen", Napi::Function::New(env, Listen, "listen"));
  exports.Set("accept", Napi::Function::New(env, Accept, "accept"));
  exports.Set("connect", Napi::Function::New(env, Connect, "connect"));
  exports.Set("getsockname", Napi::Function::New(env, GetSockName, "getsockname"));
  exports.Set("getpeername", Napi::Function::New(env, GetPeerName, "getpeername"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("recv", Napi::Function::New(env, Recv, "recv"));
  exports.Set("send", Napi::Function::New(env, Send, "send"));
  exports.Set("shutdown", Napi::Function::New(env, Shutdown, "shutdown"));
  exports.Set("setsockoptInt", Napi::Function::New(env, SetSockOptInt, "setsockoptInt"));
  exports.Set("getsockoptInt", Napi::Function::New(env, GetSockOptInt, "getsockoptInt"));
  exports.Set("setsockoptLinger", Napi::Function::New(env, SetSockOptLinger, "setsockoptLinger"));
  exports.Set("getsockoptLinger", Napi::Function::New(env, GetSockOptLinger, "getsockoptLinger"));
  exports.Set("getsockoptBytes", Napi::Function::New(env, GetSockOptBytes, "getsockoptBytes"));
  exports.Set("ioctlInt", Napi::Function::New(env, IoctlInt, "ioctlInt"));
  exports.Set("setNonBlocking", Napi::Function::New(env, SetNonBlocking, "setNonBlocking"));
  exports.Set("poll", Napi::Function::New(env, Poll, "poll"));
  exports.Set("pollAsync", Napi::Function::New(env, PollAsync, "pollAsync"));
  exports.Set("eventfd", Napi::Function::New(env, EventFd, "eventfd"));
  exports.Set("eventfdSignal", Napi::Function::New(env, EventFdSignal, "eventfdSignal"));
  exports.Set("tcpInfoHeaderLayout", Napi::Function::New(env, TcpInfoHeaderLayout, "tcpInfoHeaderLayout"));
  exports.Set("constants", Napi::Function::New(env, Constants, "constants"));
  exports.Set("netnsCreate", Napi::Function::New(env, NetnsCreate, "netnsCreate"));
  exports.Set("ifFlags", Napi::Function::New(env, IfFlags, "ifFlags"));
  return exports;
}

NODE_API_MODULE(sockprobe, Init)
