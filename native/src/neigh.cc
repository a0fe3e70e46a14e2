// Neighbour table and bridge FDB dumps through libnl-route: on bridge layouts (no /32
// route per pod) they say where a pod is: its IP -> MAC (neighbour) -> bridge port (FDB).
#include <linux/neighbour.h>
#include <netlink/cache.h>
#include <netlink/route/neighbour.h>
#include <sys/socket.h>

#include "modules.h"
#include "netlink.h"

namespace nf {
namespace {

using CachePtr = NlPtr<nl_cache, nl_cache_free>;

std::string MacText(nl_addr* a) {
  char mac[64] = "";
  return a && nl_addr_get_len(a) > 0 ? nl_addr2str(a, mac, sizeof(mac)) : "";
}

// The entries with a link-layer address of one RTM_GETNEIGH dump: of the FDBs (asked
// for with family AF_BRIDGE) or of ARP and NDP (AF_UNSPEC; the kernel leaves FDBs out).
Napi::Array Dump(Napi::Env env, const char* what, bool bridge) {
  NlSocket sk(env, what);
  CachePtr cache;
  sk.Check(nl_cache_alloc_name("route/neigh", &cache.p), what, "nl_cache_alloc_name");
  if (bridge) nl_cache_set_arg1(cache.get(), AF_BRIDGE);
  sk.Check(nl_cache_refill(sk.get(), cache.get()), what, "nl_cache_refill");
  Napi::Array out = Napi::Array::New(env);
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
    auto* n = reinterpret_cast<rtnl_neigh*>(o);
    int af = rtnl_neigh_get_family(n);
    std::string mac = MacText(rtnl_neigh_get_lladdr(n));
    if (mac.empty() || (bridge ? af != AF_BRIDGE : af != AF_INET && af != AF_INET6)) continue;
    Napi::Object e = Napi::Object::New(env);
    e.Set("ifindex", rtnl_neigh_get_ifindex(n));
    e.Set("mac", mac);
    int state = rtnl_neigh_get_state(n);
    if (bridge) {
      e.Set("masterIfindex", rtnl_neigh_get_master(n));
      int vlan = rtnl_neigh_get_vlan(n);
      e.Set("vlan", vlan > 0 ? vlan : 0);
      // NUD_PERMANENT: the bridge's own address on that port (not a station behind it);
      // NTF_SELF: the port device's own table (not the bridge's).
      e.Set("local", (state & NUD_PERMANENT) != 0);
      e.Set("self", (rtnl_neigh_get_flags(n) & NTF_SELF) != 0);
    } else {
      e.Set("family", af == AF_INET ? 4 : 6);
      e.Set("ip", AddrText(rtnl_neigh_get_dst(n), af));
      // Unresolved and failed entries carry no usable MAC; stale ones still say where.
      e.Set("valid", (state & (NUD_INCOMPLETE | NUD_FAILED | NUD_NOARP)) == 0);
    }
    out.Set(out.Length(), e);
  }
  return out;
}

Napi::Value NeighList(const Napi::CallbackInfo& info) {
  return Dump(info.Env(), "list neighbours", false);
}

Napi::Value FdbList(const Napi::CallbackInfo& info) {
  return Dump(info.Env(), "list bridge fdb", true);
}

}  // namespace

void InitNeigh(Napi::Env env, Napi::Object exports) {
  ExportAll(env, exports, {{"neighList", NeighList}, {"fdbList", FdbList}});
}

}  // namespace nf
