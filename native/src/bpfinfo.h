// Kernel object fds and info (bpf_obj_get_info_by_fd) as the JS MapInfo / ProgInfo shapes.
#pragma once

#include <bpf/bpf.h>
#include <napi.h>
#include <unistd.h>

#include <string>

#include "errors.h"

namespace nf {

// An fd closed when it goes out of scope.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

// bpf_obj_get_info_by_fd as T (bpf_map_info, bpf_prog_info); throws "what: cause" when
// the fd is not such an object.
template <typename T>
T InfoOf(Napi::Env env, int fd, const std::string& what) {
  T info = {};
  uint32_t len = sizeof(info);
  Check(env, bpf_obj_get_info_by_fd(fd, &info, &len), what, "bpf_obj_get_info_by_fd");
  return info;
}

Napi::Object MapInfoToJs(Napi::Env env, const std::string& name, int fd, const bpf_map_info& info);
Napi::Object ProgInfoToJs(Napi::Env env, const std::string& name, int fd, const bpf_prog_info& info);

}  // namespace nf
