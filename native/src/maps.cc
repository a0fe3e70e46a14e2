// Map operations on fds: lookup/update/delete (single and batch), key walks, standalone
// maps, pinning. Sizes are checked against the kernel's view of the map so a wrong
// Buffer length is a clear error, not a short copy.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "bpfinfo.h"
#include "errors.h"
#include "modules.h"

namespace nf {
namespace {

bool IsPerCpu(uint32_t type) {
  switch (type) {
    case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_ARRAY:
    case BPF_MAP_TYPE_LRU_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE:
      return true;
    default:
      return false;
  }
}

// One map as the ops below see it: name for messages, sizes as the syscalls expect.
struct MapView {
  int fd;
  std::string name;
  uint32_t type;
  size_t key_size;
  size_t value_size;  // whole per-CPU buffer for per-CPU maps
};

MapView View(Napi::Env env, int fd, const char* verb) {
  auto info = InfoOf<bpf_map_info>(env, fd, std::string(verb) + " map fd " + std::to_string(fd));
  size_t value_size = info.value_size;
  if (IsPerCpu(info.type)) value_size = ((value_size + 7) & ~size_t(7)) * libbpf_num_possible_cpus();
  return MapView{fd, info.name, info.type, info.key_size, value_size};
}

std::string What(const char* verb, const MapView& m) { return std::string(verb) + " map " + m.name; }

// Wrong sizes are refused before any syscall: the JS function is named as the failing call.
void CheckSize(Napi::Env env, const char* fn, const char* verb, const MapView& m, const char* field, size_t got,
               size_t want) {
  if (got != want)
    Throw(env, What(verb, m), EINVAL, fn, std::string(field) + " is " + std::to_string(got) + " bytes, map wants " +
                                                std::to_string(want));
}

// Batch commands are missing for some map types (LPM tries, arrays for delete); the
// kernel then fails before touching any element, so a per-element loop can redo all.
bool BatchUnsupported(int err) { return err == EINVAL || err == kENOTSUPP || err == EOPNOTSUPP; }

Napi::Value MapLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MapView m = View(env, ArgFd(info, 0, "mapLookup"), "lookup");
  Napi::Buffer<uint8_t> key = ArgBuffer(info, 1, "mapLookup", "key");
  CheckSize(env, "mapLookup", "lookup", m, "key", key.Length(), m.key_size);
  Napi::Buffer<uint8_t> value = Napi::Buffer<uint8_t>::New(env, m.value_size);
  int err = bpf_map_lookup_elem(m.fd, key.Data(), value.Data());
  if (err == -ENOENT) return env.Null();
  Check(env, err, What("lookup", m), "bpf_map_lookup_elem");
  return value;
}

Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MapView m = View(env, ArgFd(info, 0, "mapUpdate"), "update");
  Napi::Buffer<uint8_t> key = ArgBuffer(info, 1, "mapUpdate", "key");
  Napi::Buffer<uint8_t> value = ArgBuffer(info, 2, "mapUpdate", "value");
  uint32_t flags = info.Length() > 3 && !info[3].IsUndefined() ? ArgU32(info, 3, "mapUpdate", "flags") : uint32_t(BPF_ANY);
  CheckSize(env, "mapUpdate", "update", m, "key", key.Length(), m.key_size);
  CheckSize(env, "mapUpdate", "update", m, "value", value.Length(), m.value_size);
  Check(env, bpf_map_update_elem(m.fd, key.Data(), value.Data(), flags), What("update", m), "bpf_map_update_elem");
  return env.Undefined();
}

Napi::Value MapDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MapView m = View(env, ArgFd(info, 0, "mapDelete"), "delete");
  Napi::Buffer<uint8_t> key = ArgBuffer(info, 1, "mapDelete", "key");
  CheckSize(env, "mapDelete", "delete", m, "key", key.Length(), m.key_size);
  int err = bpf_map_delete_elem(m.fd, key.Data());
  if (err == -ENOENT) return Napi::Boolean::New(env, false);
  Check(env, err, What("delete", m), "bpf_map_delete_elem");
  return Napi::Boolean::New(env, true);
}

// Concatenates an array of equally sized Buffers, checking each one's size; or takes one
// Buffer of elements back to back (100k entries cost one argument, not 100k element reads).
std::vector<uint8_t> Pack(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* verb, const MapView& m,
                          const char* field, size_t size) {
  if (info.Length() > i && info[i].IsBuffer()) {
    auto b = info[i].As<Napi::Buffer<uint8_t>>();
    if (b.Length() % size)
      ThrowArg(info.Env(), fn,
               std::string(field) + "s is " + std::to_string(b.Length()) + " bytes, not a multiple of " +
                   std::to_string(size));
    return std::vector<uint8_t>(b.Data(), b.Data() + b.Length());
  }
  if (info.Length() <= i || !info[i].IsArray()) ThrowArg(info.Env(), fn, std::string(field) + "s must be an array");
  Napi::Array arr = info[i].As<Napi::Array>();
  std::vector<uint8_t> out(arr.Length() * size);
  for (uint32_t j = 0; j < arr.Length(); j++) {
    Napi::Value v = arr.Get(j);
    if (!v.IsBuffer()) ThrowArg(info.Env(), fn, std::string(field) + "s[" + std::to_string(j) + "] must be a Buffer");
    auto b = v.As<Napi::Buffer<uint8_t>>();
    // The element's name only on a mismatch: built for each of 100k entries it cost more than the copy.
    if (b.Length() != size)
      CheckSize(info.Env(), fn, verb, m, (std::string(field) + "s[" + std::to_string(j) + "]").c_str(), b.Length(),
                size);
    memcpy(out.data() + j * size, b.Data(), size);
  }
  return out;
}

Napi::Value MapUpdateBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MapView m = View(env, ArgFd(info, 0, "mapUpdateBatch"), "update");
  std::vector<uint8_t> keys = Pack(info, 1, "mapUpdateBatch", "update", m, "key", m.key_size);
  std::vector<uint8_t> values = Pack(info, 2, "mapUpdateBatch", "update", m, "value", m.value_size);
  uint32_t n = keys.size() / (m.key_size ? m.key_size : 1);
  if (values.size() / (m.value_size ? m.value_size : 1) != n)
    ThrowArg(env, "mapUpdateBatch", "keys and values differ in length");
  if (n == 0) return env.Undefined();
  uint32_t count = n;
  int err = bpf_map_update_batch(m.fd, keys.data(), values.data(), &count, nullptr);
  if (err < 0 && BatchUnsupported(-err)) {
    for (uint32_t j = 0; j < n; j++)
      Check(env, bpf_map_update_elem(m.fd, &keys[j * m.key_size], &values[j * m.value_size], BPF_ANY),
            What("update", m), "bpf_map_update_elem");
    return env.Undefined();
  }
  Check(env, err, What("batch update", m), "bpf_map_update_batch");
  return env.Undefined();
}

Napi::Value MapDeleteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MapView m = View(env, ArgFd(info, 0, "mapDeleteBatch"), "delete");
  std::vector<uint8_t> keys = Pack(info, 1, "mapDeleteBatch", "delete", m, "key", m.key_size);
  uint32_t n = keys.size() / (m.key_size ? m.key_size : 1);
  uint32_t deleted = 0;
  uint32_t at = 0;
  while (at < n) {
    uint32_t count = n - at;
    int err = bpf_map_delete_batch(m.fd, &keys[at * m.key_size], &count, nullptr);
    if (err == 0) {
      deleted += count;
      break;
    }
    if (-err == ENOENT) {  // the kernel stops at an absent key: skip it and go on
      deleted += count;
      at += count + 1;
      continue;
    }
    if (BatchUnsupported(-err)) {
      for (; at < n; at++) {
        int e = bpf_map_delete_elem(m.fd, &keys[at * m.key_size]);
        if (e == -ENOENT) continue;
        Check(env, e, What("delete", m), "bpf_map_delete_elem");
        deleted++;
      }
      break;
    }
    Check(env, err, What("batch delete", m), "bpf_map_delete_batch");
  }
  return Napi::Number::New(env, deleted);
}

Napi::Value MapKeys(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MapView m = View(env, ArgFd(info, 0, "mapKeys"), "list keys of");
  Napi::Array out = Napi::Array::New(env);
  std::vector<uint8_t> cur(m.key_size), next(m.key_size);
  const void* prev = nullptr;
  for (;;) {
    int err = bpf_map_get_next_key(m.fd, prev, next.data());
    if (err == -ENOENT) break;
    Check(env, err, What("list keys of", m), "bpf_map_get_next_key");
    out.Set(out.Length(), Napi::Buffer<uint8_t>::Copy(env, next.data(), next.size()));
    cur.swap(next);
    prev = cur.data();
  }
  return out;
}

Napi::Value MapCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t type = ArgU32(info, 0, "mapCreate", "type");
  std::string name = ArgString(info, 1, "mapCreate", "name");
  uint32_t key_size = ArgU32(info, 2, "mapCreate", "keySize");
  uint32_t value_size = ArgU32(info, 3, "mapCreate", "valueSize");
  uint32_t max_entries = ArgU32(info, 4, "mapCreate", "maxEntries");
  uint32_t flags = ArgU32(info, 5, "mapCreate", "flags");
  LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = flags);
  int fd = bpf_map_create(static_cast<bpf_map_type>(type), name.c_str(), key_size, value_size, max_entries, &opts);
  return Napi::Number::New(env, Check(env, fd, "create map " + name, "bpf_map_create"));
}

// A pinned object may be a program; map info would be misread from its prog info.
bool IsProgFd(int fd) {
  std::ifstream in("/proc/self/fdinfo/" + std::to_string(fd));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("prog_type:", 0) == 0) return true;
  return false;
}

Napi::Value MapOpenPinned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "mapOpenPinned", "path");
  std::string what = "open pinned " + path;
  int fd = Check(env, bpf_obj_get(path.c_str()), what, "bpf_obj_get");
  try {
    if (IsProgFd(fd)) {
      bpf_prog_info pi = {};
      uint32_t len = sizeof(pi);
      Check(env, bpf_obj_get_info_by_fd(fd, &pi, &len), what, "bpf_obj_get_info_by_fd");
      bpf_map_info as_map = {};
      as_map.type = pi.type;
      as_map.id = pi.id;
      as_map.btf_id = pi.btf_id;
      return MapInfoToJs(env, pi.name, fd, as_map);
    }
    auto mi = InfoOf<bpf_map_info>(env, fd, what);
    return MapInfoToJs(env, mi.name, fd, mi);
  } catch (...) {
    close(fd);
    throw;
  }
}

Napi::Value Pin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "pin");
  std::string path = ArgString(info, 1, "pin", "path");
  Check(env, bpf_obj_pin(fd, path.c_str()), "pin fd " + std::to_string(fd) + " at " + path, "bpf_obj_pin");
  return env.Undefined();
}

Napi::Value Unpin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "unpin", "path");
  if (unlink(path.c_str()) != 0) Throw(env, "unpin " + path, errno, "unlink");
  return env.Undefined();
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "closeFd");
  if (close(fd) != 0) Throw(env, "close fd " + std::to_string(fd), errno, "close");
  return env.Undefined();
}

Napi::Value PossibleCpus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Napi::Number::New(env, Check(env, libbpf_num_possible_cpus(), "count possible cpus", "libbpf_num_possible_cpus"));
}

}  // namespace

void InitMaps(Napi::Env env, Napi::Object exports) {
  ExportAll(env, exports, {{"mapLookup", MapLookup}, {"mapUpdate", MapUpdate}, {"mapDelete", MapDelete},
                           {"mapUpdateBatch", MapUpdateBatch}, {"mapDeleteBatch", MapDeleteBatch}, {"mapKeys", MapKeys},
                           {"mapCreate", MapCreate}, {"mapOpenPinned", MapOpenPinned}, {"pin", Pin}, {"unpin", Unpin},
                           {"closeFd", CloseFd}, {"possibleCpus", PossibleCpus}});
}

}  // namespace nf
