// Policy routing through libnl-route: ip rules (fwmark -> table, tagged with a protocol
// so their owner finds them) and routes in a table. Adds tolerate EEXIST and deletes
// ENOENT, so callers can converge without reading first.
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <netlink/cache.h>
#include <netlink/route/route.h>
#include <netlink/route/rule.h>
#include <sys/socket.h>

#include <string>

#include "errors.h"
#include "modules.h"
#include "netlink.h"

namespace nf {
namespace {

using RulePtr = NlPtr<rtnl_rule, rtnl_rule_put>;
using RoutePtr = NlPtr<rtnl_route, rtnl_route_put>;
using AddrPtr = NlPtr<nl_addr, nl_addr_put>;
using CachePtr = NlPtr<nl_cache, nl_cache_free>;

int FamilyArg(Napi::Env env, Napi::Value v, const char* fn) {
  if (!v.IsNumber()) ThrowArg(env, fn, "family must be 4 or 6");
  int f = v.As<Napi::Number>().Int32Value();
  if (f != 4 && f != 6) ThrowArg(env, fn, "family must be 4 or 6");
  return f == 4 ? AF_INET : AF_INET6;
}

int FamilyJs(int af) { return af == AF_INET ? 4 : 6; }

uint32_t Required(Napi::Object o, const char* key, const char* fn) {
  uint32_t v = 0;
  if (!OptU32(o, key, fn, &v)) ThrowArg(o.Env(), fn, std::string(key) + " is required");
  return v;
}

// One rule or route change from a JS object: `verb` names it in errors ("add rule ...");
// `already` is the result that means the kernel is already so (EEXIST on add, ENOENT on
// delete): that is success, so callers converge without reading first.
template <typename Ptr, typename T>
Napi::Value Change(const Napi::CallbackInfo& info, const char* fn, const char* arg,
                   T* (*from_js)(Napi::Env, Napi::Object, const char*, std::string*), const char* verb,
                   int (*op)(nl_sock*, T*, int), const char* call, int flags, int already) {
  Napi::Env env = info.Env();
  std::string name;
  Ptr obj(from_js(env, ArgObject(info, 0, fn, arg), fn, &name));
  std::string what = std::string(verb) + " " + name;
  NlSocket sk(env, what);
  int err = op(sk.get(), obj.get(), flags);
  if (err != already) sk.Check(err, what, call);
  return env.Undefined();
}

// --- rules ---

std::string RuleName(int af, uint32_t prio, uint32_t table) {
  return std::string("rule ") + (af == AF_INET ? "ipv4" : "ipv6") + " priority " + std::to_string(prio) + " table " +
         std::to_string(table);
}

rtnl_rule* RuleFromJs(Napi::Env env, Napi::Object o, const char* fn, std::string* name) {
  int af = FamilyArg(env, o.Get("family"), fn);
  uint32_t prio = Required(o, "priority", fn);
  uint32_t table = Required(o, "table", fn);
  uint32_t mark = 0, mask = 0, protocol = 0;
  bool has_mark = OptU32(o, "mark", fn, &mark);
  bool has_mask = OptU32(o, "mask", fn, &mask);
  bool has_proto = OptU32(o, "protocol", fn, &protocol);
  if (has_proto && protocol > 255) ThrowArg(env, fn, "protocol must be 0..255");
  *name = RuleName(af, prio, table);
  rtnl_rule* r = rtnl_rule_alloc();
  if (!r) Throw(env, *name, ENOMEM, "rtnl_rule_alloc");
  rtnl_rule_set_family(r, af);
  rtnl_rule_set_prio(r, prio);
  rtnl_rule_set_table(r, table);
  rtnl_rule_set_action(r, FR_ACT_TO_TBL);
  if (has_mark) rtnl_rule_set_mark(r, mark);
  if (has_mark || has_mask) rtnl_rule_set_mask(r, has_mask ? mask : 0xffffffff);
  if (has_proto) rtnl_rule_set_protocol(r, static_cast<uint8_t>(protocol));
  return r;
}

Napi::Value RuleList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int af = FamilyArg(env, info[0], "ruleList");
  std::string what = std::string("list rules ") + (af == AF_INET ? "ipv4" : "ipv6");
  NlSocket sk(env, what);
  CachePtr cache;
  sk.Check(rtnl_rule_alloc_cache(sk.get(), af, &cache.p), what, "rtnl_rule_alloc_cache");
  Napi::Array out = Napi::Array::New(env);
  for (nl_object* obj = nl_cache_get_first(cache.get()); obj; obj = nl_cache_get_next(obj)) {
    auto* r = reinterpret_cast<rtnl_rule*>(obj);
    if (rtnl_rule_get_family(r) != af) continue;  // the dump holds every family
    Napi::Object o = Napi::Object::New(env);
    o.Set("family", FamilyJs(rtnl_rule_get_family(r)));
    o.Set("priority", rtnl_rule_get_prio(r));
    o.Set("table", rtnl_rule_get_table(r));
    // No fwmark match shows as 0/0 (or all ones, depending on the libnl build).
    uint32_t mark = rtnl_rule_get_mark(r), mask = rtnl_rule_get_mask(r);
    auto set = [](uint32_t v) { return v != 0 && v != 0xffffffff; };
    if (set(mark) || set(mask)) {
      o.Set("mark", mark);
      o.Set("mask", mask);
    }
    uint8_t proto = 0;
    if (rtnl_rule_get_protocol(r, &proto) == 0) o.Set("protocol", proto);
    out.Set(out.Length(), o);
  }
  return out;
}

Napi::Value RuleAdd(const Napi::CallbackInfo& info) {
  // NLM_F_EXCL: without it the kernel adds a duplicate instead of reporting EEXIST.
  return Change<RulePtr>(info, "ruleAdd", "rule", RuleFromJs, "add", rtnl_rule_add, "rtnl_rule_add", NLM_F_EXCL,
                         -NLE_EXIST);
}

Napi::Value RuleDelete(const Napi::CallbackInfo& info) {
  return Change<RulePtr>(info, "ruleDelete", "rule", RuleFromJs, "delete", rtnl_rule_delete, "rtnl_rule_delete", 0,
                         -NLE_OBJ_NOTFOUND);
}

// --- routes ---

nl_addr* ParseAddr(Napi::Env env, const std::string& text, int af, const char* fn, const char* field) {
  nl_addr* a = nullptr;
  int err = nl_addr_parse(text.c_str(), af, &a);
  if (err < 0) ThrowArg(env, fn, std::string(field) + " \"" + text + "\" is not an " + (af == AF_INET ? "IPv4" : "IPv6") + " address");
  return a;
}

rtnl_route* RouteFromJs(Napi::Env env, Napi::Object o, const char* fn, std::string* name) {
  int af = FamilyArg(env, o.Get("family"), fn);
  uint32_t table = Required(o, "table", fn);
  std::string dst, gateway;
  if (!OptString(o, "dst", fn, &dst)) ThrowArg(env, fn, "dst is required");
  bool has_gw = OptString(o, "gateway", fn, &gateway);
  uint32_t oif = 0, protocol = 0, scope = 0;
  bool has_oif = OptU32(o, "oif", fn, &oif);
  bool has_proto = OptU32(o, "protocol", fn, &protocol);
  bool has_scope = OptU32(o, "scope", fn, &scope);
  if ((has_proto && protocol > 255) || (has_scope && scope > 255)) ThrowArg(env, fn, "protocol and scope must be 0..255");
  *name = "route " + dst + " table " + std::to_string(table);

  AddrPtr dst_addr(ParseAddr(env, dst, af, fn, "dst"));
  RoutePtr r(rtnl_route_alloc());
  if (!r.get()) Throw(env, *name, ENOMEM, "rtnl_route_alloc");
  rtnl_route_set_family(r.get(), af);
  rtnl_route_set_table(r.get(), table);
  rtnl_route_set_type(r.get(), RTN_UNICAST);
  CheckNl(env, rtnl_route_set_dst(r.get(), dst_addr.get()), *name, "rtnl_route_set_dst");
  if (has_proto) rtnl_route_set_protocol(r.get(), static_cast<uint8_t>(protocol));
  if (has_scope) rtnl_route_set_scope(r.get(), static_cast<uint8_t>(scope));
  if (has_gw || has_oif) {
    rtnl_nexthop* nh = rtnl_route_nh_alloc();
    if (!nh) Throw(env, *name, ENOMEM, "rtnl_route_nh_alloc");
    if (has_oif) rtnl_route_nh_set_ifindex(nh, oif);
    if (has_gw) {
      AddrPtr gw(ParseAddr(env, gateway, af, fn, "gateway"));
      rtnl_route_nh_set_gateway(nh, gw.get());
    }
    rtnl_route_add_nexthop(r.get(), nh);  // the route owns nh from here
  }
  rtnl_route* out = r.p;
  r.p = nullptr;
  return out;
}

Napi::Value RouteList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int af = FamilyArg(env, info[0], "routeList");
  uint32_t table = ArgU32(info, 1, "routeList", "table");
  std::string what = "list routes table " + std::to_string(table);
  NlSocket sk(env, what);
  CachePtr cache;
  sk.Check(rtnl_route_alloc_cache(sk.get(), af, 0, &cache.p), what, "rtnl_route_alloc_cache");
  Napi::Array out = Napi::Array::New(env);
  for (nl_object* obj = nl_cache_get_first(cache.get()); obj; obj = nl_cache_get_next(obj)) {
    auto* r = reinterpret_cast<rtnl_route*>(obj);
    if (rtnl_route_get_table(r) != table) continue;
    Napi::Object o = Napi::Object::New(env);
    o.Set("family", FamilyJs(af));
    o.Set("table", table);
    o.Set("dst", AddrWithPrefix(rtnl_route_get_dst(r), af));
    if (rtnl_route_get_nnexthops(r) > 0) {
      rtnl_nexthop* nh = rtnl_route_nexthop_n(r, 0);
      nl_addr* gw = rtnl_route_nh_get_gateway(nh);
      if (gw) o.Set("gateway", AddrText(gw, af));
      if (rtnl_route_nh_get_ifindex(nh) > 0) o.Set("oif", rtnl_route_nh_get_ifindex(nh));
    }
    o.Set("protocol", rtnl_route_get_protocol(r));
    o.Set("scope", rtnl_route_get_scope(r));
    out.Set(out.Length(), o);
  }
  return out;
}

Napi::Value RouteReplace(const Napi::CallbackInfo& info) {
  // A replace has no "already so": 0 is its only success.
  return Change<RoutePtr>(info, "routeReplace", "route", RouteFromJs, "replace", rtnl_route_add, "rtnl_route_add",
                          NLM_F_REPLACE, 0);
}

Napi::Value RouteDelete(const Napi::CallbackInfo& info) {
  return Change<RoutePtr>(info, "routeDelete", "route", RouteFromJs, "delete", rtnl_route_delete, "rtnl_route_delete",
                          0, -NLE_OBJ_NOTFOUND);
}

}  // namespace

void InitRouting(Napi::Env env, Napi::Object exports) {
  ExportAll(env, exports, {{"ruleList", RuleList}, {"ruleAdd", RuleAdd}, {"ruleDelete", RuleDelete},
                           {"routeList", RouteList}, {"routeReplace", RouteReplace}, {"routeDelete", RouteDelete}});
}

}  // namespace nf
