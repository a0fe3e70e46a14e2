// tc and XDP hooks. tc prefers TCX links (kernel >= 6.6), pinned so they outlive the
// agent; otherwise (or when the caller asks: forceClsact) a clsact qdisc with one
// direct-action filter at netfence's own handle/priority. Moving a hook between the two
// attaches the new one before removing the old. Only what netfence created is replaced or
// removed.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <string>

#include "bpfinfo.h"
#include "errors.h"
#include "modules.h"
#include "tc.h"

namespace nf {
namespace {

// Missing from libbpf 1.1.2's headers (kernel 6.6 uapi).
constexpr int kBpfTcxIngress = 46;
constexpr int kBpfTcxEgress = 47;
constexpr uint32_t kBpfLinkTypeTcx = 11;

struct Hook {
  int ifindex;
  bool ingress;
  std::string linkPin;  // empty: no TCX

  std::string Name() const { return std::string("tc ") + (ingress ? "ingress" : "egress") + " of ifindex " + std::to_string(ifindex); }
  int TcxType() const { return ingress ? kBpfTcxIngress : kBpfTcxEgress; }
  bpf_tc_hook TcHook() const {
    bpf_tc_hook h = {};
    h.sz = sizeof(h);
    h.ifindex = ifindex;
    h.attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS;
    return h;
  }
};

// (ifindex, dir) of a call; no link pin.
Hook HookArgs(const Napi::CallbackInfo& info, const char* fn) {
  Hook h;
  h.ifindex = static_cast<int>(ArgU32(info, 0, fn, "ifindex"));
  std::string dir = ArgString(info, 1, fn, "dir");
  if (dir != "ingress" && dir != "egress") ThrowArg(info.Env(), fn, "dir must be \"ingress\" or \"egress\"");
  h.ingress = dir == "ingress";
  return h;
}

Hook ParseHook(const Napi::CallbackInfo& info, const char* fn, size_t opts_index) {
  Hook h = HookArgs(info, fn);
  OptString(ArgObject(info, opts_index, fn, "opts"), "linkPin", fn, &h.linkPin);
  return h;
}

// What a pinned TCX link points at (kernel 6.6 bpf_link_info.tcx = {ifindex, attach_type},
// laid out where .xdp.ifindex is in older headers).
struct TcxLink {
  uint32_t type, prog_id, ifindex, attach_type;
};

TcxLink LinkInfo(Napi::Env env, int fd, const std::string& what) {
  bpf_link_info info = {};
  uint32_t len = sizeof(info);
  Check(env, bpf_obj_get_info_by_fd(fd, &info, &len), what, "bpf_obj_get_info_by_fd");
  TcxLink l = {info.type, info.prog_id, info.xdp.ifindex, 0};
  memcpy(&l.attach_type, reinterpret_cast<const char*>(&info.xdp.ifindex) + sizeof(uint32_t), sizeof(uint32_t));
  return l;
}

bool Exists(const std::string& path) { return !path.empty() && access(path.c_str(), F_OK) == 0; }

// What sits at a hook's link pin: nothing, our TCX link on this device, or our link left
// by a gone device of the same name (defunct). Anything else is not ours: this hook fails.
enum class PinnedLink { kNone, kLive, kDefunct };

PinnedLink CheckLinkPin(Napi::Env env, const Hook& h, const std::string& what, Fd* link) {
  if (!Exists(h.linkPin)) return PinnedLink::kNone;
  link->fd = Check(env, bpf_obj_get(h.linkPin.c_str()), what, "bpf_obj_get");
  TcxLink l = LinkInfo(env, link->fd, what);
  bool ours = l.type == kBpfLinkTypeTcx && l.attach_type == static_cast<uint32_t>(h.TcxType());
  if (ours && l.ifindex == static_cast<uint32_t>(h.ifindex)) return PinnedLink::kLive;
  if (!ours || l.ifindex != 0)
    Throw(env, what, EEXIST, "bpf_obj_get", "link pin " + h.linkPin + " holds another hook's link");
  return PinnedLink::kDefunct;
}

// Attaches through a pinned TCX link: an existing live link at the pin is updated in
// place (atomic program swap); a defunct one (its device is gone) is replaced.
// Returns 0 or the negative errno of bpf_link_create, for the caller's fallback.
int AttachTcx(Napi::Env env, const Hook& h, int prog_fd, const std::string& what) {
  Fd pinned{-1};
  switch (CheckLinkPin(env, h, what, &pinned)) {
    case PinnedLink::kLive:
      Check(env, bpf_link_update(pinned.fd, prog_fd, nullptr), what, "bpf_link_update");
      return 0;
    case PinnedLink::kDefunct:
      if (unlink(h.linkPin.c_str()) != 0) Throw(env, what, errno, "unlink");
      break;
    case PinnedLink::kNone:
      break;
  }
  Fd link{bpf_link_create(prog_fd, h.ifindex, static_cast<bpf_attach_type>(h.TcxType()), nullptr)};
  if (link.fd < 0) return link.fd;
  Check(env, bpf_obj_pin(link.fd, h.linkPin.c_str()), what + ": pin link at " + h.linkPin, "bpf_obj_pin");
  return 0;
}

// Detaches and unpins netfence's TCX link, if any.
void DetachTcx(Napi::Env env, const Hook& h, const std::string& what) {
  if (!Exists(h.linkPin)) return;
  Fd link{Check(env, bpf_obj_get(h.linkPin.c_str()), what, "bpf_obj_get")};
  int err = bpf_link_detach(link.fd);
  if (err < 0 && err != -ENOLINK) Check(env, err, what, "bpf_link_detach");  // ENOLINK: device already gone
  if (unlink(h.linkPin.c_str()) != 0) Throw(env, what, errno, "unlink");
}

bpf_tc_opts OurFilter(uint32_t priority = kTcPriority, uint32_t handle = kTcHandle) {
  bpf_tc_opts o = {};
  o.sz = sizeof(o);
  o.handle = handle;
  o.priority = priority;
  return o;
}

// No clsact qdisc or no such filter: nothing of ours to remove or report.
bool NoFilter(int err) { return err == -ENOENT || err == -EINVAL; }

// A device that is gone has nothing of ours left either.
// Every place a filter of netfence's can sit: ours, the spare of a move ahead (left by a
// crash in the middle of one), an older agent's.
struct FilterSlot {
  uint32_t priority;
  uint32_t handle;
};
constexpr FilterSlot kOurSlots[] = {
    {kTcPriority, kTcHandle}, {kTcPriority, kTcSpareHandle}, {kLegacyTcPriority, kTcHandle}};

void DetachClsactAt(Napi::Env env, const Hook& h, uint32_t priority, const std::string& what,
                    uint32_t handle = kTcHandle) {
  bpf_tc_hook hook = h.TcHook();
  bpf_tc_opts opts = OurFilter(priority, handle);
  int err = bpf_tc_detach(&hook, &opts);
  if (!NoFilter(err) && err != -ENODEV) Check(env, err, what, "bpf_tc_detach");
}

void DetachClsact(Napi::Env env, const Hook& h, const std::string& what) {
  for (const FilterSlot& s : kOurSlots) DetachClsactAt(env, h, s.priority, what, s.handle);
}

int ReplaceFilter(bpf_tc_hook* hook, int prog_fd) {
  bpf_tc_opts opts = OurFilter();
  opts.prog_fd = prog_fd;
  opts.flags = BPF_TC_F_REPLACE;
  return bpf_tc_attach(hook, &opts);
}

// The clsact qdisc is made only when the filter finds none (EINVAL: no such parent): a
// pod's second hook, and every replace, costs one netlink request under the rtnl lock,
// not two.
void AttachClsact(Napi::Env env, const Hook& h, int prog_fd, const std::string& what) {
  bpf_tc_hook hook = h.TcHook();
  int err = ReplaceFilter(&hook, prog_fd);
  bool had_qdisc = err != -EINVAL;
  if (!had_qdisc) {
    err = bpf_tc_hook_create(&hook);
    if (err != -EEXIST) Check(env, err, what + ": create clsact qdisc", "bpf_tc_hook_create");
    err = ReplaceFilter(&hook, prog_fd);
  }
  Check(env, err, what, "bpf_tc_attach");
  // Only a qdisc that was there can hold an older agent's filter (ours is in place first).
  if (had_qdisc) DetachClsactAt(env, h, kLegacyTcPriority, what);
}

Napi::Value TcAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Hook h = ParseHook(info, "tcAttach", 3);
  int prog_fd = ArgFd(info, 2, "tcAttach");
  bool force_clsact = OptBool(ArgObject(info, 3, "tcAttach", "opts"), "forceClsact", "tcAttach", false);
  std::string what = "attach " + h.Name();
  Napi::Object out = Napi::Object::New(env);

  // Without a pin a TCX link would die with its fd: such callers get clsact.
  if (!force_clsact && !h.linkPin.empty()) {
    int err = AttachTcx(env, h, prog_fd, what);
    if (err == 0) {
      DetachClsact(env, h, what);  // moving from clsact: TCX runs first, then drop the old filter
      out.Set("mode", "tcx");
      out.Set("linkPin", h.linkPin);
      return out;
    }
    if (err != -EINVAL && err != -EOPNOTSUPP && err != -kENOTSUPP) Check(env, err, what, "bpf_link_create");
  }
  // A pin that is not our link fails the hook before anything is attached.
  Fd pinned{-1};
  CheckLinkPin(env, h, what, &pinned);
  AttachClsact(env, h, prog_fd, what);
  DetachTcx(env, h, what);  // moving from TCX: the filter is in place first
  out.Set("mode", "clsact");
  return out;
}

// Puts our filter ahead of cls_bpf filters added at its priority after it (the kernel runs
// the newest first): a spare copy goes first, ours is added again (first again), the spare
// goes. A program of ours runs ahead of the other filters at every step. If a step fails
// the spare stays (still first) and the next pass attaches ours again.
Napi::Value TcMoveAhead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Hook h = ParseHook(info, "tcMoveAhead", 3);
  int prog_fd = ArgFd(info, 2, "tcMoveAhead");
  std::string what = "move ahead " + h.Name();
  bpf_tc_hook hook = h.TcHook();
  auto add = [&](uint32_t handle) {
    bpf_tc_opts o = OurFilter(kTcPriority, handle);
    o.prog_fd = prog_fd;
    Check(env, bpf_tc_attach(&hook, &o), what, "bpf_tc_attach");
  };
  auto remove = [&](uint32_t handle) {
    bpf_tc_opts o = OurFilter(kTcPriority, handle);
    int err = bpf_tc_detach(&hook, &o);
    if (!NoFilter(err)) Check(env, err, what, "bpf_tc_detach");
  };
  remove(kTcSpareHandle);  // a crash's leftover: not first any more
  add(kTcSpareHandle);
  remove(kTcHandle);
  add(kTcHandle);
  remove(kTcSpareHandle);
  return env.Undefined();
}

Napi::Value TcDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Hook h = ParseHook(info, "tcDetach", 2);
  std::string what = "detach " + h.Name();
  DetachTcx(env, h, what);
  DetachClsact(env, h, what);
  return env.Undefined();
}

Napi::Value TcQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Hook h = ParseHook(info, "tcQuery", 2);
  std::string what = "query " + h.Name();
  if (Exists(h.linkPin)) {
    Fd link{Check(env, bpf_obj_get(h.linkPin.c_str()), what, "bpf_obj_get")};
    TcxLink l = LinkInfo(env, link.fd, what);
    if (l.type == kBpfLinkTypeTcx && l.ifindex == static_cast<uint32_t>(h.ifindex) &&
        l.attach_type == static_cast<uint32_t>(h.TcxType()))
      return Napi::Number::New(env, l.prog_id);
  }
  bpf_tc_hook hook = h.TcHook();
  bpf_tc_opts opts = OurFilter();
  int err = bpf_tc_query(&hook, &opts);
  if (NoFilter(err)) return Napi::Number::New(env, 0);
  Check(env, err, what, "bpf_tc_query");
  return Napi::Number::New(env, opts.prog_id);
}

// The clsact filters at netfence's places (kOurSlots), with the program each runs: whoever
// removes them checks the program is netfence's first (the handle and priority alone say
// nothing about who attached it).
Napi::Value TcFilters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Hook h = HookArgs(info, "tcFilters");
  std::string what = "list filters of " + h.Name();
  Napi::Array out = Napi::Array::New(env);
  for (const FilterSlot& s : kOurSlots) {
    bpf_tc_hook hook = h.TcHook();
    bpf_tc_opts opts = OurFilter(s.priority, s.handle);
    int err = bpf_tc_query(&hook, &opts);
    if (NoFilter(err)) continue;
    Check(env, err, what, "bpf_tc_query");
    Napi::Object f = Napi::Object::New(env);
    f.Set("priority", s.priority);
    f.Set("handle", s.handle);
    f.Set("progId", opts.prog_id);
    Fd prog{bpf_prog_get_fd_by_id(opts.prog_id)};
    if (prog.fd >= 0) f.Set("progName", InfoOf<bpf_prog_info>(env, prog.fd, what).name);
    out.Set(out.Length(), f);
  }
  return out;
}

// Removes the filter at this priority and handle, one of netfence's places (kOurSlots).
Napi::Value TcFilterDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Hook h = HookArgs(info, "tcFilterDelete");
  uint32_t priority = ArgU32(info, 2, "tcFilterDelete", "priority");
  uint32_t handle = ArgU32(info, 3, "tcFilterDelete", "handle");
  bool ours = false;
  for (const FilterSlot& s : kOurSlots) ours = ours || (s.priority == priority && s.handle == handle);
  if (!ours) ThrowArg(env, "tcFilterDelete", "priority and handle must be one of netfence's filters");
  DetachClsactAt(env, h, priority, "delete filter of " + h.Name(), handle);
  return env.Undefined();
}

Napi::Value XdpAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t ifindex = ArgU32(info, 0, "xdpAttach", "ifindex");
  int prog_fd = ArgFd(info, 1, "xdpAttach");
  uint32_t flags = ArgU32(info, 2, "xdpAttach", "flags");
  Check(env, bpf_xdp_attach(ifindex, prog_fd, flags, nullptr), "attach xdp to ifindex " + std::to_string(ifindex),
        "bpf_xdp_attach");
  return env.Undefined();
}

Napi::Value XdpDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t ifindex = ArgU32(info, 0, "xdpDetach", "ifindex");
  uint32_t flags = ArgU32(info, 1, "xdpDetach", "flags");
  Check(env, bpf_xdp_detach(ifindex, flags, nullptr), "detach xdp from ifindex " + std::to_string(ifindex),
        "bpf_xdp_detach");
  return env.Undefined();
}

}  // namespace

void InitAttach(Napi::Env env, Napi::Object exports) {
  ExportAll(env, exports, {{"tcAttach", TcAttach}, {"tcMoveAhead", TcMoveAhead}, {"tcDetach", TcDetach}, {"tcQuery", TcQuery},
                           {"tcFilters", TcFilters}, {"tcFilterDelete", TcFilterDelete}, {"xdpAttach", XdpAttach}, {"xdpDetach", XdpDetach}});
}

}  // namespace nf
