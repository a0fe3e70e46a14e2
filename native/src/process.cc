// Process-level guards of the agent that Node has no API for: mounting a bpffs, an
// exclusive flock(2) held for the process life, and a deadline after SIGTERM/SIGINT
// that holds even while the JS thread is blocked (a program load, a long pass).
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "errors.h"
#include "modules.h"

namespace nf {
namespace {

Napi::Value MountBpffs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string target = ArgString(info, 0, "mountBpffs", "target");
  // mode=0700: pins are the agent's; only root may walk them.
  if (mount("bpf", target.c_str(), "bpf", 0, "mode=0700") != 0) Throw(env, "mount bpffs at " + target, errno, "mount");
  return env.Undefined();
}

// Returns the fd that holds the lock: the lock lasts while it is open (normally the
// process life; the kernel drops it when the process dies, also on kill -9).
Napi::Value FlockExclusive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "flockExclusive", "path");
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Throw(env, "lock " + path, errno, "open");
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    close(fd);
    Throw(env, "lock " + path, err, "flock");
  }
  return Napi::Number::New(env, fd);
}

// The signal deadline: a handler chained in front of libuv's (which only wakes the
// event loop, so JS handlers run once the loop is free) posts a semaphore; a watchdog
// thread then gives JS `deadline_ms` to exit and otherwise ends the process itself.
sem_t signalled;
volatile sig_atomic_t received = 0;
struct sigaction previous[2];
constexpr int kSignals[2] = {SIGTERM, SIGINT};
useconds_t deadline_us = 0;

void OnSignal(int signo, siginfo_t* si, void* uctx) {
  for (int i = 0; i < 2; i++) {
    if (kSignals[i] != signo) continue;
    const struct sigaction& p = previous[i];
    if (p.sa_flags & SA_SIGINFO) {
      if (p.sa_sigaction) p.sa_sigaction(signo, si, uctx);
    } else if (p.sa_handler != SIG_DFL && p.sa_handler != SIG_IGN) {
      p.sa_handler(signo);
    }
  }
  if (!received) {
    received = signo;
    sem_post(&signalled);  // async-signal-safe
  }
}

void Watchdog() {
  while (sem_wait(&signalled) != 0) {
  }
  usleep(deadline_us);
  static const char msg[] = "netfence: still running after the stop signal's deadline (event loop busy): exiting now; pins stay\n";
  ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)ignored;
  _exit(128 + received);
}

Napi::Value ExitAfterSignal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t ms = ArgU32(info, 0, "exitAfterSignal", "deadlineMs");
  if (deadline_us != 0) ThrowArg(env, "exitAfterSignal", "already armed");
  if (sem_init(&signalled, 0, 0) != 0) Throw(env, "arm signal deadline", errno, "sem_init");
  deadline_us = static_cast<useconds_t>(ms) * 1000;
  std::thread(Watchdog).detach();
  for (int i = 0; i < 2; i++) {
    struct sigaction sa = {};
    sa.sa_sigaction = OnSignal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(kSignals[i], &sa, &previous[i]) != 0) Throw(env, "arm signal deadline", errno, "sigaction");
  }
  return env.Undefined();
}

}  // namespace

void InitProcess(Napi::Env env, Napi::Object exports) {
  ExportAll(env, exports, {{"mountBpffs", MountBpffs}, {"flockExclusive", FlockExclusive}, {"exitAfterSignal", ExitAfterSignal}});
}

}  // namespace nf
