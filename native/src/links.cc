// Network links through libnl-route: list, look up by name, and watch RTM_NEWLINK /
// RTM_DELLINK (and the main table's host routes, which say where a pod is, and the tc
// changes that may have taken netfence's clsact filters or put another filter ahead of
// them) on the event loop.
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_arp.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <netlink/cache.h>
#include <netlink/msg.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>

#include <arpa/inet.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include "errors.h"
#include "modules.h"
#include "netlink.h"
#include "tc.h"
#include "watcher.h"

namespace nf {
namespace {

using LinkPtr = NlPtr<rtnl_link, rtnl_link_put>;
using CachePtr = NlPtr<nl_cache, nl_cache_free>;

Napi::Object LinkToJs(Napi::Env env, rtnl_link* link) {
  Napi::Object o = Napi::Object::New(env);
  const char* kind = rtnl_link_get_type(link);
  const char* name = rtnl_link_get_name(link);
  o.Set("ifindex", rtnl_link_get_ifindex(link));
  o.Set("name", name ? name : "");
  o.Set("kind", kind ? kind : rtnl_link_get_arptype(link) == ARPHRD_LOOPBACK ? "loopback" : "");
  char mac[64] = "";
  nl_addr* addr = rtnl_link_get_addr(link);
  if (addr) nl_addr2str(addr, mac, sizeof(mac));
  o.Set("mac", mac);
  o.Set("up", (rtnl_link_get_flags(link) & IFF_UP) != 0);
  o.Set("masterIfindex", rtnl_link_get_master(link));
  o.Set("linkIfindex", rtnl_link_get_link(link));
  // Set only when the peer is in another netns (the kernel assigns the nsid if needed);
  // -1 (NETNSA_NSID_NOT_ASSIGNED) is a netns going away.
  int32_t nsid = 0;
  if (rtnl_link_get_link_netnsid(link, &nsid) == 0) o.Set("linkNetnsid", nsid);
  return o;
}

// One RTM_GETLINK dump without counters (RTEXT_FILTER_SKIP_STATS): libnl's own cache
// refill asks for every link's statistics (IPv6's per-CPU SNMP sums among them), which
// the agent never reads and which were most of a dump's kernel time under pod churn.
Napi::Value LinkList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* what = "list links";
  NlSocket sk(env, what);
  CachePtr cache;
  sk.Check(nl_cache_alloc_name("route/link", &cache.p), what, "nl_cache_alloc_name");
  // A link added or removed during the dump interrupts it: ask again (a new message, a
  // new sequence number), as libnl's own refill does.
  int err;
  do {
    NlPtr<nl_msg, nlmsg_free> msg(nlmsg_alloc_simple(RTM_GETLINK, NLM_F_DUMP));
    if (!msg.get()) Throw(env, what, ENOMEM, "nlmsg_alloc_simple");
    ifinfomsg ifi = {};
    ifi.ifi_family = AF_UNSPEC;
    sk.Check(nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO), what, "nlmsg_append");
    sk.Check(nla_put_u32(msg.get(), IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS), what, "nla_put_u32");
    nl_cache_clear(cache.get());
    sk.Check(nl_send_auto(sk.get(), msg.get()), what, "nl_send_auto");
    err = nl_cache_pickup(sk.get(), cache.get());
  } while (err == -NLE_DUMP_INTR);
  sk.Check(err, what, "nl_cache_pickup");
  Napi::Array out = Napi::Array::New(env);
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o))
    out.Set(out.Length(), LinkToJs(env, reinterpret_cast<rtnl_link*>(o)));
  return out;
}

Napi::Value LinkByName(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "linkByName", "name");
  std::string what = "get link " + name;
  NlSocket sk(env, what);
  LinkPtr link;
  int err = rtnl_link_get_kernel(sk.get(), 0, name.c_str(), &link.p);
  if (err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV) return env.Null();
  sk.Check(err, what, "rtnl_link_get_kernel");
  return LinkToJs(env, link.get());
}

// IFLA_ADDRESS of an RTM_NEWLINK reply, as libnl formats a link's address.
int OnPeerLink(nl_msg* msg, void* arg) {
  nlattr* tb[IFLA_MAX + 1];
  if (nlmsg_parse(nlmsg_hdr(msg), sizeof(ifinfomsg), tb, IFLA_MAX, nullptr) < 0 || !tb[IFLA_ADDRESS]) return NL_SKIP;
  NlPtr<nl_addr, nl_addr_put> addr(nl_addr_alloc_attr(tb[IFLA_ADDRESS], AF_UNSPEC));
  if (!addr.get()) return NL_SKIP;
  nl_addr_set_family(addr.get(), nl_addr_guess_family(addr.get()));  // AF_LLC: "aa:bb:..."
  char mac[64] = "";
  *static_cast<std::string*>(arg) = nl_addr2str(addr.get(), mac, sizeof(mac));
  return NL_OK;
}

// A veth's peer as the LinkInfo of the veth (from linkList) names it: its ifindex in its
// netns and the nsid this netns knows that netns by (absent: the same netns). Asking by
// both needs no setns (and no /proc walk).
struct PeerRef {
  uint32_t ifindex = 0;
  int32_t nsid = 0;
  bool other = false;
};

// False when the link is not a veth with a known peer (or its peer's netns is going away).
bool PeerOf(const Napi::CallbackInfo& info, const char* fn, PeerRef* out) {
  Napi::Object veth = ArgObject(info, 0, fn, "link");
  std::string kind;
  OptString(veth, "kind", fn, &kind);
  OptU32(veth, "linkIfindex", fn, &out->ifindex);
  out->other = OptI32(veth, "linkNetnsid", fn, &out->nsid);
  return kind == "veth" && out->ifindex != 0 && out->ifindex <= INT_MAX && !(out->other && out->nsid < 0);
}

// The MAC of a veth's peer, usually in a pod's netns: one RTM_GETLINK.
Napi::Value LinkPeerMac(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  PeerRef peer;
  if (!PeerOf(info, "linkPeerMac", &peer)) return env.Null();
  std::string what = "get peer link " + std::to_string(peer.ifindex);
  NlSocket sk(env, what);
  NlPtr<nl_msg, nlmsg_free> msg(nlmsg_alloc_simple(RTM_GETLINK, 0));
  if (!msg.get()) Throw(env, what, ENOMEM, "nlmsg_alloc_simple");
  ifinfomsg ifi = {};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = static_cast<int>(peer.ifindex);
  sk.Check(nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO), what, "nlmsg_append");
  if (peer.other) sk.Check(nla_put_s32(msg.get(), IFLA_TARGET_NETNSID, peer.nsid), what, "nla_put_s32");
  sk.Check(nl_send_auto(sk.get(), msg.get()), what, "nl_send_auto");
  std::string mac;
  nl_socket_modify_cb(sk.get(), NL_CB_VALID, NL_CB_CUSTOM, OnPeerLink, &mac);
  int err = nl_recvmsgs_default(sk.get());
  if (err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV) return env.Null();
  sk.Check(err, what, "nl_recvmsgs");
  return mac.empty() ? env.Null() : Napi::String::New(env, mac);
}

struct PeerAddrs {
  uint32_t ifindex;
  std::vector<std::string> ips;
};

// The global-scope addresses of one interface in an RTM_NEWADDR dump reply.
int OnPeerAddr(nl_msg* msg, void* arg) {
  auto* out = static_cast<PeerAddrs*>(arg);
  nlmsghdr* hdr = nlmsg_hdr(msg);
  auto* ifa = static_cast<ifaddrmsg*>(nlmsg_data(hdr));
  nlattr* tb[IFA_MAX + 1];
  if (hdr->nlmsg_type != RTM_NEWADDR || nlmsg_parse(hdr, sizeof(ifaddrmsg), tb, IFA_MAX, nullptr) < 0) return NL_SKIP;
  if (ifa->ifa_index != out->ifindex || ifa->ifa_scope != RT_SCOPE_UNIVERSE) return NL_SKIP;
  nlattr* a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];  // IFA_LOCAL: the own address on point-to-point links
  if (!a) return NL_SKIP;
  char buf[INET6_ADDRSTRLEN] = "";
  if (ifa->ifa_family == AF_INET ? nla_len(a) == 4 : ifa->ifa_family == AF_INET6 && nla_len(a) == 16)
    out->ips.push_back(inet_ntop(ifa->ifa_family, nla_data(a), buf, sizeof(buf)));
  return NL_OK;
}

// The addresses of a veth's peer (a pod's interface, in its netns): one RTM_GETADDR dump
// of the peer's netns (IFA_TARGET_NETNSID), so bridge ports map to pod IPs without any
// traffic having filled the node's neighbour table.
Napi::Value LinkPeerAddrs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  PeerRef peer;
  if (!PeerOf(info, "linkPeerAddrs", &peer)) return out;
  std::string what = "list addresses of peer link " + std::to_string(peer.ifindex);
  NlSocket sk(env, what);
  NlPtr<nl_msg, nlmsg_free> msg(nlmsg_alloc_simple(RTM_GETADDR, NLM_F_DUMP));
  if (!msg.get()) Throw(env, what, ENOMEM, "nlmsg_alloc_simple");
  // The kernel reads IFA_TARGET_NETNSID (and the ifindex filter) of strictly checked dumps only.
  int one = 1;
  if (setsockopt(nl_socket_get_fd(sk.get()), SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof(one)) < 0)
    Throw(env, what, errno, "setsockopt NETLINK_GET_STRICT_CHK");
  ifaddrmsg ifa = {};
  ifa.ifa_family = AF_UNSPEC;
  ifa.ifa_index = peer.ifindex;
  sk.Check(nlmsg_append(msg.get(), &ifa, sizeof(ifa), NLMSG_ALIGNTO), what, "nlmsg_append");
  if (peer.other) sk.Check(nla_put_s32(msg.get(), IFA_TARGET_NETNSID, peer.nsid), what, "nla_put_s32");
  sk.Check(nl_send_auto(sk.get(), msg.get()), what, "nl_send_auto");
  PeerAddrs addrs{peer.ifindex, {}};
  nl_socket_modify_cb(sk.get(), NL_CB_VALID, NL_CB_CUSTOM, OnPeerAddr, &addrs);
  int err = nl_recvmsgs_default(sk.get());
  if (err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV) return out;
  sk.Check(err, what, "nl_recvmsgs");
  for (const std::string& ip : addrs.ips) out.Set(out.Length(), ip);
  return out;
}

// The socket filter of the watcher: only the notifications it reads. Each is one message
// per datagram: its nlmsg_type (host order: BPF_ABS loads are big-endian) decides, and for
// RTM_NEWTFILTER its handle (netfence's own filters are not news).
void AttachWatchFilter(Napi::Env env, int fd, const char* what) {
  const uint16_t kept[] = {RTM_NEWLINK, RTM_DELLINK, RTM_NEWROUTE, RTM_DELROUTE, RTM_DELQDISC, RTM_DELTFILTER};
  const uint8_t n = sizeof(kept) / sizeof(kept[0]);
  constexpr uint32_t kHandleOffset = NLMSG_HDRLEN + offsetof(tcmsg, tcm_handle);
  std::vector<sock_filter> prog;
  prog.push_back(BPF_STMT(BPF_LD | BPF_H | BPF_ABS, offsetof(nlmsghdr, nlmsg_type)));
  prog.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, htons(RTM_NEWTFILTER), n + 2, 0));  // to the handle check
  for (uint8_t i = 0; i < n; i++) prog.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, htons(kept[i]), n - i, 0));
  prog.push_back(BPF_STMT(BPF_RET | BPF_K, 0));           // drop
  prog.push_back(BPF_STMT(BPF_RET | BPF_K, 0xffffffff));  // keep
  prog.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kHandleOffset));
  prog.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, htonl(kTcHandle), 2, 0));
  prog.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, htonl(kTcSpareHandle), 1, 0));
  prog.push_back(BPF_STMT(BPF_RET | BPF_K, 0xffffffff));
  prog.push_back(BPF_STMT(BPF_RET | BPF_K, 0));
  sock_fprog fprog = {static_cast<unsigned short>(prog.size()), prog.data()};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof(fprog)) < 0)
    Throw(env, what, errno, "setsockopt SO_ATTACH_FILTER");
}

class LinkWatcher : public FdWatcher {
 public:
  LinkWatcher(Napi::Env env, Napi::Function cb) : FdWatcher(env, cb, "netfence:linkwatch") {}

  static Napi::Object Open(Napi::Env env, Napi::Function cb) {
    const char* what = "watch links";
    auto* self = new LinkWatcher(env, cb);
    try {
      self->sk_ = nl_socket_alloc();
      if (!self->sk_) Throw(env, what, ENOMEM, "nl_socket_alloc");
      nl_socket_disable_seq_check(self->sk_);  // notifications carry no sequence numbers
      nl_socket_modify_cb(self->sk_, NL_CB_VALID, NL_CB_CUSTOM, OnMessage, self);
      CheckNl(env, nl_connect(self->sk_, NETLINK_ROUTE), what, "nl_connect");
      for (int group : {RTNLGRP_LINK, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE, RTNLGRP_TC})
        CheckNl(env, nl_socket_add_membership(self->sk_, group), what, "nl_socket_add_membership");
      // Only what OnMessage reads: the agent's own tc changes (a qdisc, chains and a filter
      // per new pod hook) are dropped in the kernel, so they neither wake the event loop
      // nor fill the socket (an overflow costs a resync of every hook).
      AttachWatchFilter(env, nl_socket_get_fd(self->sk_), what);
      CheckNl(env, nl_socket_set_nonblocking(self->sk_), what, "nl_socket_set_nonblocking");
    } catch (...) {
      self->Release();
      delete self;
      throw;
    }
    return self->Start(nl_socket_get_fd(self->sk_), what);
  }

 private:
  static int OnMessage(nl_msg* msg, void* arg) {
    auto* self = static_cast<LinkWatcher*>(arg);
    nlmsghdr* hdr = nlmsg_hdr(msg);
    int type = hdr->nlmsg_type;
    if (self->closed()) return NL_SKIP;
    if (type == RTM_NEWROUTE || type == RTM_DELROUTE) {
      self->OnRoute(type, static_cast<const rtmsg*>(nlmsg_data(hdr)));
      return self->closed() ? NL_STOP : NL_OK;
    }
    if (type == RTM_DELQDISC || type == RTM_DELTFILTER || type == RTM_NEWTFILTER) {
      self->OnTc(hdr);
      return self->closed() ? NL_STOP : NL_OK;
    }
    if (type != RTM_NEWLINK && type != RTM_DELLINK) return NL_SKIP;
    self->type_ = type == RTM_NEWLINK ? "new" : "del";
    nl_msg_parse(msg, OnLink, self);
    return self->closed() ? NL_STOP : NL_OK;
  }

  static void OnLink(nl_object* obj, void* arg) {
    auto* self = static_cast<LinkWatcher*>(arg);
    Napi::Object ev = Napi::Object::New(self->env_);
    ev.Set("type", self->type_);
    ev.Set("link", LinkToJs(self->env_, reinterpret_cast<rtnl_link*>(obj)));
    self->Deliver(ev);
  }

  // A CNI adds a pod's host route after its veth: discovery needs to hear of it. Only
  // main-table /32 and /128 routes, so the agent's own tunnel table (and route
  // replaces that change nothing) cause no passes.
  void OnRoute(int type, const rtmsg* rtm) {
    bool host = (rtm->rtm_family == AF_INET && rtm->rtm_dst_len == 32) || (rtm->rtm_family == AF_INET6 && rtm->rtm_dst_len == 128);
    if (!host || rtm->rtm_table != RT_TABLE_MAIN) return;
    Napi::Object ev = Napi::Object::New(env_);
    ev.Set("type", type == RTM_NEWROUTE ? "route-new" : "route-del");
    ev.Set("family", rtm->rtm_family == AF_INET ? 4 : 6);
    Deliver(ev);
  }

  // A clsact qdisc deleted (both hooks' filters go with it, unannounced), a filter at
  // netfence's priority deleted from a clsact hook (ours, or one whose place ours may take
  // now), or another cls_bpf filter added there (the kernel runs it ahead of ours).
  // Everything else (other priorities, other qdiscs) is dropped here, the agent's own
  // filters by the socket filter. An interface that is gone (deleting a veth announced no
  // tc deletion on the kernels tried, but a race may) has nothing to repair: no event.
  void OnTc(nlmsghdr* hdr) {
    int type = hdr->nlmsg_type;
    const auto* tcm = static_cast<const tcmsg*>(nlmsg_data(hdr));
    nlattr* tb[TCA_MAX + 1];
    if (nlmsg_parse(hdr, sizeof(tcmsg), tb, TCA_MAX, nullptr) < 0) return;
    auto kind_is = [&](const char* kind) { return tb[TCA_KIND] && nla_strcmp(tb[TCA_KIND], kind) == 0; };
    Napi::Array dirs = Napi::Array::New(env_);
    if (type == RTM_DELQDISC) {
      // An ingress qdisc (same handle) never holds ours.
      if (tcm->tcm_parent != TC_H_CLSACT || tcm->tcm_handle != TC_H_MAKE(TC_H_CLSACT, 0) || !kind_is("clsact")) return;
      dirs.Set(0u, "ingress");
      dirs.Set(1u, "egress");
    } else {
      if (TC_H_MAJ(tcm->tcm_info) >> 16 != kTcPriority) return;
      // Only a cls_bpf filter can share our priority.
      if (type == RTM_NEWTFILTER && !kind_is("bpf")) return;
      if (tcm->tcm_parent == TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS))
        dirs.Set(0u, "ingress");
      else if (tcm->tcm_parent == TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS))
        dirs.Set(0u, "egress");
      else
        return;
    }
    // The name in the watcher's netns (SIOCGIFNAME works on any socket).
    ifreq ifr = {};
    ifr.ifr_ifindex = tcm->tcm_ifindex;
    if (ioctl(nl_socket_get_fd(sk_), SIOCGIFNAME, &ifr) != 0) return;
    Napi::Object ev = Napi::Object::New(env_);
    ev.Set("type", type == RTM_DELQDISC ? "qdisc-del" : type == RTM_DELTFILTER ? "filter-del" : "filter-ahead");
    ev.Set("ifindex", tcm->tcm_ifindex);
    ev.Set("ifname", std::string(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ)));
    ev.Set("dirs", dirs);
    Deliver(ev);
  }

  // A burst of changes overflowed the socket (ENOBUFS): those events are lost. libuv sees
  // the error first (POLLERR: it stops polling), or a drain meets it (the burst came while
  // the callback ran); either way the callback hears {type: "overflow"} once, to look at
  // every link and hook again, and the watcher reads and polls on.
  bool OnPollError() override {
    Drain();
    return !closed() && DeliverOverflow();
  }

  void OnReadable() override {
    if (Drain() && !closed()) DeliverOverflow();
  }

  // Reads every queued datagram; whether an ENOBUFS (libnl: NLE_NOMEM) was met on the way.
  bool Drain() {
    bool overflow = false;
    while (!closed()) {
      int err = nl_recvmsgs_default(sk_);
      if (err == -NLE_NOMEM) overflow = true;
      else if (err < 0 && err != -NLE_MSG_TRUNC) break;
    }
    return overflow;
  }

  bool DeliverOverflow() {
    Napi::Object ev = Napi::Object::New(env_);
    ev.Set("type", "overflow");
    return Deliver(ev);
  }

  void Release() override {
    if (sk_) nl_socket_free(sk_);
    sk_ = nullptr;
  }

  nl_sock* sk_ = nullptr;
  const char* type_ = "";
};

Napi::Value LinkWatch(const Napi::CallbackInfo& info) {
  return LinkWatcher::Open(info.Env(), ArgFunction(info, 0, "linkWatch", "onEvent"));
}

}  // namespace

void InitLinks(Napi::Env env, Napi::Object exports) {
  ExportAll(env, exports, {{"linkList", LinkList}, {"linkByName", LinkByName}, {"linkPeerMac", LinkPeerMac}, {"linkPeerAddrs", LinkPeerAddrs}, {"linkWatch", LinkWatch}});
}

}  // namespace nf
