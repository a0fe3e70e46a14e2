// Kernel object info (bpf_obj_get_info_by_fd) as the JS MapInfo / ProgInfo shapes.
#pragma once

#include <bpf/bpf.h>
#include <napi.h>

#include <string>

namespace nf {

// Throws "what: cause" when the fd is not a map.
bpf_map_info MapInfoOf(Napi::Env env, int fd, const std::string& what);
Napi::Object MapInfoToJs(Napi::Env env, const std::string& name, int fd, const bpf_map_info& info);
Napi::Object ProgInfoToJs(Napi::Env env, const std::string& name, int fd, const bpf_prog_info& info);

}  // namespace nf
