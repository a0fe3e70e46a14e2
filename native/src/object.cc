// BPF objects: open an ELF with libbpf, pin/reuse maps under a bpffs root, load,
// and expose the maps' and programs' fds and kernel info.
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <string>

#include "bpfinfo.h"
#include "errors.h"
#include "modules.h"

namespace nf {
namespace {

// libbpf's messages (verifier log, pinning complaints) for the current open/load, so a
// failure can say why. The addon runs on the JS thread only.
std::string g_libbpf_log;
constexpr size_t kLogTail = 4096;

int CaptureLibbpfLog(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[1024];
  int n = vsnprintf(buf, sizeof(buf), fmt, args);
  g_libbpf_log.append(buf, n < 0 ? 0 : std::min<size_t>(n, sizeof(buf) - 1));
  if (g_libbpf_log.size() > 4 * kLogTail) g_libbpf_log.erase(0, g_libbpf_log.size() - kLogTail);
  return n;
}

std::string LogTail() {
  if (g_libbpf_log.empty()) return "";
  size_t start = g_libbpf_log.size() > kLogTail ? g_libbpf_log.size() - kLogTail : 0;
  return "\n" + g_libbpf_log.substr(start);
}

// libbpf refuses to reuse a pinned map whose definition changed, with only a log line.
// Compare first so the error names the map, the pin and the field that differs.
void CheckPinnedMapsCompatible(Napi::Env env, bpf_object* obj, const std::string& what) {
  bpf_map* map;
  bpf_object__for_each_map(map, obj) {
    const char* pin = bpf_map__pin_path(map);
    if (!pin || access(pin, F_OK) != 0) continue;
    int fd = bpf_obj_get(pin);
    if (fd < 0) Throw(env, what, -fd, "bpf_obj_get", std::string("open pinned map ") + bpf_map__name(map) + " at " + pin + ": " + ErrnoText(-fd));
    bpf_map_info info = {};
    uint32_t len = sizeof(info);
    int err = bpf_obj_get_info_by_fd(fd, &info, &len);
    close(fd);
    if (err) Throw(env, what, -err, "bpf_obj_get_info_by_fd");
    struct Field { const char* name; uint32_t pinned, wanted; };
    // max_entries 0 means "set by libbpf at load" (perf event arrays): not comparable.
    uint32_t want_max = bpf_map__max_entries(map);
    const Field fields[] = {
        {"type", info.type, static_cast<uint32_t>(bpf_map__type(map))},
        {"key_size", info.key_size, bpf_map__key_size(map)},
        {"value_size", info.value_size, bpf_map__value_size(map)},
        {"max_entries", info.max_entries, want_max ? want_max : info.max_entries},
        {"map_flags", info.map_flags, bpf_map__map_flags(map)},
    };
    for (const Field& f : fields) {
      if (f.pinned == f.wanted) continue;
      Napi::Error e = MakeError(env, what, EINVAL, "bpf_object__load",
                                std::string("pinned map ") + bpf_map__name(map) + " at " + pin + " has " + f.name + " " +
                                    std::to_string(f.pinned) + ", object wants " + std::to_string(f.wanted) +
                                    " (migrate or remove the pin)");
      e.Set("map", bpf_map__name(map));
      e.Set("pinPath", pin);
      e.Set("field", f.name);
      throw e;
    }
  }
}

// libbpf only says EINVAL when the pin root is missing or not bpffs: say which.
void CheckPinRoot(Napi::Env env, const std::string& root, const std::string& what) {
  struct statfs st;
  if (statfs(root.c_str(), &st) != 0) Throw(env, what, errno, "statfs", "pin root " + root + ": " + ErrnoText(errno));
  if (st.f_type != BPF_FS_MAGIC) Throw(env, what, EINVAL, "statfs", "pin root " + root + " is not on bpffs");
}

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "BpfObject",
                       {InstanceMethod<&BpfObject::Maps>("maps"), InstanceMethod<&BpfObject::Programs>("programs"),
                        InstanceMethod<&BpfObject::Close>("close")});
  }

  explicit BpfObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObject>(info) {
    obj_ = info[0].As<Napi::External<bpf_object>>().Data();
    path_ = info[1].As<Napi::String>().Utf8Value();
  }

  // Not closed on garbage collection: callers hold the fds from maps()/programs(),
  // which must not vanish under them. close() is the contract.

 private:
  bpf_object* Live(Napi::Env env, const char* verb) {
    if (!obj_) Throw(env, std::string(verb) + " object " + path_, EBADF, verb, "object is closed");
    return obj_;
  }

  Napi::Value Maps(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_object* obj = Live(env, "maps");
    Napi::Array out = Napi::Array::New(env);
    bpf_map* map;
    bpf_object__for_each_map(map, obj) {
      int fd = bpf_map__fd(map);
      if (fd < 0) continue;  // not created (autocreate off)
      auto mi = InfoOf<bpf_map_info>(env, fd, std::string("get info of map ") + bpf_map__name(map));
      out.Set(out.Length(), MapInfoToJs(env, bpf_map__name(map), fd, mi));
    }
    return out;
  }

  Napi::Value Programs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_object* obj = Live(env, "programs");
    Napi::Array out = Napi::Array::New(env);
    bpf_program* prog;
    bpf_object__for_each_program(prog, obj) {
      int fd = bpf_program__fd(prog);
      if (fd < 0) continue;  // not loaded (autoload off)
      auto pi = InfoOf<bpf_prog_info>(env, fd, std::string("get info of program ") + bpf_program__name(prog));
      out.Set(out.Length(), ProgInfoToJs(env, bpf_program__name(prog), fd, pi));
    }
    return out;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (obj_) bpf_object__close(obj_);
    obj_ = nullptr;
    return info.Env().Undefined();
  }

  bpf_object* obj_ = nullptr;
  std::string path_;
};

struct ObjectData {
  Napi::FunctionReference ctor;
};

Napi::Value OpenObject(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "openObject", "path");
  Napi::Object opts = ArgObject(info, 1, "openObject", "opts");
  std::string pin_root;
  bool pinned = OptString(opts, "pinRoot", "openObject", &pin_root);
  std::string what_open = "open object " + path;
  std::string what_load = "load object " + path;

  if (pinned) CheckPinRoot(env, pin_root, what_open);
  g_libbpf_log.clear();
  LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = pinned ? pin_root.c_str() : nullptr);
  bpf_object* obj = bpf_object__open_file(path.c_str(), &oo);
  if (!obj) Throw(env, what_open, errno, "bpf_object__open_file", ErrnoText(errno) + LogTail());

  try {
    Napi::Value max_entries = opts.Get("maxEntries");
    if (!max_entries.IsUndefined() && !max_entries.IsObject()) ThrowArg(env, "openObject", "maxEntries must be an object");
    if (max_entries.IsObject()) {
      Napi::Object overrides = max_entries.As<Napi::Object>();
      Napi::Array names = overrides.GetPropertyNames();
      for (uint32_t i = 0; i < names.Length(); i++) {
        std::string name = names.Get(i).As<Napi::String>().Utf8Value();
        uint32_t max = 0;
        OptU32(overrides, name.c_str(), "openObject maxEntries", &max);
        bpf_map* map = bpf_object__find_map_by_name(obj, name.c_str());
        if (!map) Throw(env, "set max_entries of map " + name, ENOENT, "bpf_object__find_map_by_name", "no such map in " + path);
        Check(env, bpf_map__set_max_entries(map, max), "set max_entries of map " + name, "bpf_map__set_max_entries");
      }
    }
    if (pinned) {
      CheckPinnedMapsCompatible(env, obj, what_load);
    } else {
      // libbpf pins LIBBPF_PIN_BY_NAME maps under /sys/fs/bpf by default; absent means none.
      bpf_map* map;
      bpf_object__for_each_map(map, obj) Check(env, bpf_map__set_pin_path(map, nullptr), what_open, "bpf_map__set_pin_path");
    }
    g_libbpf_log.clear();
    int err = bpf_object__load(obj);
    if (err) Throw(env, what_load, -err, "bpf_object__load", ErrnoText(-err) + LogTail());
  } catch (...) {
    bpf_object__close(obj);
    throw;
  }

  auto* data = env.GetInstanceData<ObjectData>();
  return data->ctor.New({Napi::External<bpf_object>::New(env, obj), Napi::String::New(env, path)});
}

}  // namespace

Napi::Object MapInfoToJs(Napi::Env env, const std::string& name, int fd, const bpf_map_info& info) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", name);
  o.Set("fd", fd);
  o.Set("type", info.type);
  o.Set("keySize", info.key_size);
  o.Set("valueSize", info.value_size);
  o.Set("maxEntries", info.max_entries);
  o.Set("flags", info.map_flags);
  o.Set("id", info.id);
  o.Set("btfId", info.btf_id);
  return o;
}

Napi::Object ProgInfoToJs(Napi::Env env, const std::string& name, int fd, const bpf_prog_info& info) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", name);
  o.Set("fd", fd);
  o.Set("type", info.type);
  o.Set("id", info.id);
  return o;
}

void InitObject(Napi::Env env, Napi::Object exports) {
  libbpf_set_print(CaptureLibbpfLog);
  auto* data = new ObjectData();
  data->ctor = Napi::Persistent(BpfObject::Define(env));
  env.SetInstanceData(data);
  ExportAll(env, exports, {{"openObject", OpenObject}});
}

}  // namespace nf
