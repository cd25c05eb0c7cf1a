// Argument checking shared by the native calls: types only; values are the kernel's to judge.
#pragma once
#include <napi.h>

namespace sockprobe {

// Throws a TypeError stating the usage when info[i] is not a number for each i < n.
inline bool WantNumbers(const Napi::CallbackInfo& info, size_t n, const char* usage) {
  for (size_t i = 0; i < n; i++) {
    if (i >= info.Length() || !info[i].IsNumber()) {
      Napi::TypeError::New(info.Env(), usage).ThrowAsJavaScriptException();
      return false;
    }
  }
  return true;
}

inline int Int(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int32Value(); }

inline Napi::Number Ret(const Napi::CallbackInfo& info, long v) { return Napi::Number::New(info.Env(), static_cast<double>(v)); }

}  // namespace sockprobe
