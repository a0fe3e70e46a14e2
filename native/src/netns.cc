// Network namespaces for the calling thread (the JS thread): a private one, or enter one.
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <string>

#include "errors.h"
#include "modules.h"

namespace nf {
namespace {

Napi::Value UnshareNet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (unshare(CLONE_NEWNET) != 0) Throw(env, "unshare network namespace", errno, "unshare");
  return env.Undefined();
}

Napi::Value SetNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "setNetns", "path");
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Throw(env, "open netns " + path, errno, "open");
  int rc = setns(fd, CLONE_NEWNET);
  int err = errno;
  close(fd);
  if (rc != 0) Throw(env, "enter netns " + path, err, "setns");
  return env.Undefined();
}

}  // namespace

void InitNetns(Napi::Env env, Napi::Object exports) {
  ExportAll(env, exports, {{"unshareNet", UnshareNet}, {"setNetns", SetNetns}});
}

}  // namespace nf
