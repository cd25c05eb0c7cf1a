// poll(2): a synchronous form for zero or short timeouts, and an awaitable form whose wait runs
// on a thread of its own (not libuv's pool, which long waits would exhaust), woken early by an eventfd.
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "args.h"
#include "calls.h"

namespace sockprobe {

namespace {

const char* kPollUsage = "poll(fds: Int32Array, events: Int32Array, revents: Int32Array, timeoutMs: number)";
const char* kPollAsyncUsage =
    "pollAsync(fds: Int32Array, events: Int32Array, revents: Int32Array, timeoutMs: number, cancelFd: number, doneAt?: Float64Array)";

bool IsInt32Array(const Napi::Value& v) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array;
}

// Checks the three parallel arrays and copies them into pollfds.
bool ReadFds(const Napi::CallbackInfo& info, const char* usage, std::vector<pollfd>* out) {
  if (info.Length() < 4 || !IsInt32Array(info[0]) || !IsInt32Array(info[1]) || !IsInt32Array(info[2]) ||
      !info[3].IsNumber()) {
    ThrowUsage(info, usage);
    return false;
  }
  auto fds = info[0].As<Napi::Int32Array>();
  auto events = info[1].As<Napi::Int32Array>();
  auto revents = info[2].As<Napi::Int32Array>();
  size_t n = fds.ElementLength();
  if (events.ElementLength() != n || revents.ElementLength() != n) {
    Napi::TypeError::New(info.Env(), std::string(usage) + ": the three arrays must have the same length")
        .ThrowAsJavaScriptException();
    return false;
  }
  out->resize(n);
  for (size_t i = 0; i < n; i++) (*out)[i] = pollfd{fds[i], static_cast<short>(events[i]), 0};
  return true;
}

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// poll with EINTR retried against the original deadline.
int PollRetry(pollfd* fds, size_t n, int timeoutMs, int* err) {
  int64_t deadline = timeoutMs < 0 ? -1 : NowMs() + timeoutMs;
  for (;;) {
    int left = deadline < 0 ? -1 : static_cast<int>(std::max<int64_t>(0, deadline - NowMs()));
    int r = poll(fds, n, left);
    *err = errno;
    if (r >= 0 || *err != EINTR) return r;
  }
}

struct PollJob {
  std::vector<pollfd> fds;  // the caller's, then the cancel eventfd when there is one
  size_t callerCount;
  int timeoutMs;
  int result = 0;
  int err = 0;
  Napi::Promise::Deferred deferred;
  Napi::Reference<Napi::Int32Array> revents;
  // Where the time poll returned is written (CLOCK_MONOTONIC ns), when the caller asks for it: the
  // main thread may see the result much later on a busy event loop, the kernel did not.
  Napi::Reference<Napi::Float64Array> doneAt;
  double doneNs = 0;
  Napi::ThreadSafeFunction tsfn;
  explicit PollJob(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

void Settle(Napi::Env env, Napi::Function, PollJob* job) {
  if (env != nullptr) {
    Napi::HandleScope scope(env);
    auto out = job->revents.Value();
    for (size_t i = 0; i < job->callerCount; i++) out[i] = job->fds[i].revents;
    if (!job->doneAt.IsEmpty()) job->doneAt.Value()[0] = job->doneNs;
    bool cancelled = job->fds.size() > job->callerCount && job->fds.back().revents != 0;
    long value = job->result < 0 ? -job->err : (cancelled ? -ECANCELED : job->result);
    job->deferred.Resolve(Napi::Number::New(env, static_cast<double>(value)));
  }
  job->revents.Reset();
  job->doneAt.Reset();
  delete job;
}

}  // namespace

Napi::Value Poll(const Napi::CallbackInfo& info) {
  std::vector<pollfd> fds;
  if (!ReadFds(info, kPollUsage, &fds)) return info.Env().Undefined();
  int err = 0;
  int r = PollRetry(fds.data(), fds.size(), Int(info, 3), &err);
  if (r < 0) return Ret(info, -err);
  auto revents = info[2].As<Napi::Int32Array>();
  for (size_t i = 0; i < fds.size(); i++) revents[i] = fds[i].revents;
  return Ret(info, r);
}

// Resolves to the count of ready fds, 0 on timeout, -ECANCELED when cancelFd was signalled, or -errno.
Napi::Value PollAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* job = new PollJob(env);
  if (!ReadFds(info, kPollAsyncUsage, &job->fds) || info.Length() < 5 || !info[4].IsNumber()) {
    if (!env.IsExceptionPending()) ThrowUsage(info, kPollAsyncUsage);
    delete job;
    return env.Undefined();
  }
  job->callerCount = job->fds.size();
  job->timeoutMs = Int(info, 3);
  int cancelFd = Int(info, 4);
  if (cancelFd >= 0) job->fds.push_back(pollfd{cancelFd, POLLIN, 0});
  job->revents = Napi::Persistent(info[2].As<Napi::Int32Array>());
  if (info.Length() > 5 && info[5].IsTypedArray() &&
      info[5].As<Napi::TypedArray>().TypedArrayType() == napi_float64_array &&
      info[5].As<Napi::TypedArray>().ElementLength() >= 1) {
    job->doneAt = Napi::Persistent(info[5].As<Napi::Float64Array>());
  }
  auto promise = job->deferred.Promise();
  // The function keeps the event loop alive while a wait is pending, like a timer would.
  job->tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                            "sockprobe.pollAsync", 0, 1);
  std::thread([job]() {
    job->result = PollRetry(job->fds.data(), job->fds.size(), job->timeoutMs, &job->err);
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    job->doneNs = static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
    Napi::ThreadSafeFunction tsfn = job->tsfn;
    tsfn.BlockingCall(job, Settle);
    tsfn.Release();
  }).detach();
  return promise;
}

Napi::Value EventFd(const Napi::CallbackInfo& info) {
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  int err = errno;
  return Ret(info, fd < 0 ? -err : fd);
}

Napi::Value EventFdSignal(const Napi::CallbackInfo& info) {
  int fd;
  if (!ReadInts(info, 1, &fd, "eventfdSignal(fd: number)")) return info.Env().Undefined();
  uint64_t one = 1;
  ssize_t r = write(fd, &one, sizeof(one));
  int err = errno;
  return Ret(info, r < 0 ? -err : 0);
}

}  // namespace sockprobe
