// close(2) on a thread of its own: with SO_LINGER set, close blocks until the data is acknowledged
// or the linger time runs out, which must not hold the main thread; and signals are blocked on that
// thread, because a signal (a child's SIGCHLD, say) would end the lingering wait early.
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <thread>

#include "args.h"
#include "calls.h"

namespace sockprobe {

namespace {

struct CloseJob {
  int fd;
  int result = 0;
  Napi::Promise::Deferred deferred;
  Napi::ThreadSafeFunction tsfn;
  explicit CloseJob(Napi::Env env, int f) : fd(f), deferred(Napi::Promise::Deferred::New(env)) {}
};

void Settle(Napi::Env env, Napi::Function, CloseJob* job) {
  if (env != nullptr) job->deferred.Resolve(Napi::Number::New(env, job->result));
  delete job;
}

}  // namespace

// Resolves to 0 or -errno.
Napi::Value CloseAsync(const Napi::CallbackInfo& info) {
  int fd;
  if (!ReadInts(info, 1, &fd, "closeAsync(fd: number)")) return info.Env().Undefined();
  Napi::Env env = info.Env();
  auto* job = new CloseJob(env, fd);
  auto promise = job->deferred.Promise();
  job->tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                            "sockprobe.closeAsync", 0, 1);
  std::thread([job]() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    int r = close(job->fd);
    job->result = r < 0 ? -errno : 0;
    Napi::ThreadSafeFunction tsfn = job->tsfn;
    tsfn.BlockingCall(job, Settle);
    tsfn.Release();
  }).detach();
  return promise;
}

}  // namespace sockprobe
