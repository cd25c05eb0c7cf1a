// Argument reading shared by the native calls: types only; values are the kernel's to judge.
// Each read is one N-API call whose status doubles as the type check (no separate typeof),
// because the per-call overhead is what the benchmark against Python measures.
#pragma once
#include <napi.h>

namespace sockprobe {

inline Napi::Value ThrowUsage(const Napi::CallbackInfo& info, const char* usage) {
  Napi::TypeError::New(info.Env(), usage).ThrowAsJavaScriptException();
  return info.Env().Undefined();
}

// Reads info[0..n) as int32 into out; false (with a TypeError stating the usage) if any is not a number.
inline bool ReadInts(const Napi::CallbackInfo& info, size_t n, int* out, const char* usage) {
  for (size_t i = 0; i < n; i++) {
    if (i >= info.Length() || napi_get_value_int32(info.Env(), info[i], &out[i]) != napi_ok) {
      ThrowUsage(info, usage);
      return false;
    }
  }
  return true;
}

// The (number, string, number) shape of bind, connect, ifFlags and openAt; false after a TypeError.
inline bool WantNumberStringNumber(const Napi::CallbackInfo& info, const char* usage) {
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsNumber()) {
    ThrowUsage(info, usage);
    return false;
  }
  return true;
}

inline int Int(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int32Value(); }

// The data of an Int32Array with at least `min` elements at info[i], or nullptr after a TypeError.
inline int32_t* Int32Slots(const Napi::CallbackInfo& info, size_t i, size_t min, const char* usage) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (i >= info.Length() ||
      napi_get_typedarray_info(info.Env(), info[i], &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != napi_int32_array || length < min) {
    ThrowUsage(info, usage);
    return nullptr;
  }
  return static_cast<int32_t*>(data);
}

inline Napi::Value Ret(const Napi::CallbackInfo& info, long v) {
  napi_value out;
  if (v >= INT32_MIN && v <= INT32_MAX) {
    napi_create_int32(info.Env(), static_cast<int32_t>(v), &out);
  } else {
    napi_create_double(info.Env(), static_cast<double>(v), &out);
  }
  return Napi::Value(info.Env(), out);
}

}  // namespace sockprobe
