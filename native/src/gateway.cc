// Gateway liveness for the transparent tunnel: one ARP request (IPv4) or neighbour
// solicitation (IPv6) to the gateway out of the uplink, answered or not within a timeout.
// The kernel's own neighbour state can say REACHABLE for up to base_reachable_time after
// the gateway died; only a fresh answer proves that a redirected packet gets through.
// Sockets are opened on the calling (JS) thread, so they live in its network namespace;
// the wait for the answer runs on a libuv worker and resolves a Promise.
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if_arp.h>
#include <netinet/icmp6.h>
#include <netinet/if_ether.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "errors.h"
#include "modules.h"

namespace nf {
namespace {

std::string MacText(const uint8_t* m) {
  char buf[18];
  snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return buf;
}

int64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

class Probe : public Napi::AsyncWorker {
 public:
  Probe(Napi::Env env, std::string ifname, int family, std::string gw, uint32_t timeout_ms)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), ifname_(std::move(ifname)),
        family_(family), gw_text_(std::move(gw)), timeout_ms_(timeout_ms) {
    Prepare();
  }
  ~Probe() override {
    if (fd_ >= 0) close(fd_);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    if (fd_ < 0) return;  // cause_ set by Prepare
    if (family_ == 4 ? !SendArp() : !SendNs()) return;
    sent_ = true;
    int64_t deadline = NowMs() + timeout_ms_;
    for (;;) {
      int64_t left = deadline - NowMs();
      if (left <= 0) break;
      struct pollfd p = {fd_, POLLIN, 0};
      int n = poll(&p, 1, static_cast<int>(left));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      uint8_t buf[1500];
      ssize_t len = recv(fd_, buf, sizeof(buf), 0);
      if (len < 0) continue;
      if (family_ == 4 ? MatchArp(buf, len) : MatchNa(buf, len)) {
        answered_ = true;
        return;
      }
    }
    cause_ = "no answer within " + std::to_string(timeout_ms_) + " ms";
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("answered", answered_);
    if (answered_ && !mac_.empty()) o.Set("mac", mac_);
    if (!answered_) o.Set("cause", cause_);
    o.Set("sent", sent_);
    deferred_.Resolve(o);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  // Link state, our MAC and source address, and the probe socket; a link problem is a
  // `cause` (the gateway is not reachable), not an exception.
  void Prepare() {
    Napi::Env env = Env();
    int af = family_ == 4 ? AF_INET : AF_INET6;
    if (inet_pton(af, gw_text_.c_str(), &gw_) != 1) ThrowArg(env, "gatewayProbe", "address: not an IPv" + std::to_string(family_) + " address: " + gw_text_);
    ifindex_ = if_nametoindex(ifname_.c_str());
    if (ifindex_ == 0) {
      cause_ = "uplink " + ifname_ + " not found";
      return;
    }
    int ctl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (ctl < 0) Fail("socket");
    struct ifreq ifr = {};
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname_.c_str());
    bool ok = ioctl(ctl, SIOCGIFFLAGS, &ifr) == 0;
    short flags = ifr.ifr_flags;
    ok = ok && ioctl(ctl, SIOCGIFHWADDR, &ifr) == 0;
    int err = errno;
    bool carrier = ok && Carrier(ctl, flags);
    close(ctl);
    if (!ok) {
      cause_ = "uplink " + ifname_ + ": " + ErrnoText(err);
      return;
    }
    memcpy(mac_own_, ifr.ifr_hwaddr.sa_data, 6);
    if (!(flags & IFF_UP)) {
      cause_ = "uplink " + ifname_ + " is down";
      return;
    }
    if (!carrier) {
      cause_ = "uplink " + ifname_ + " has no carrier";
      return;
    }
    if (!SourceAddress()) return;
    if (family_ == 4) {
      fd_ = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ARP));
      if (fd_ < 0) Fail("socket");
      struct sockaddr_ll sll = {};
      sll.sll_family = AF_PACKET;
      sll.sll_protocol = htons(ETH_P_ARP);
      sll.sll_ifindex = static_cast<int>(ifindex_);
      if (bind(fd_, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) != 0) Fail("bind");
      return;
    }
    fd_ = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_ICMPV6);
    if (fd_ < 0) Fail("socket");
    struct icmp6_filter filter;
    ICMP6_FILTER_SETBLOCKALL(&filter);
    ICMP6_FILTER_SETPASS(ND_NEIGHBOR_ADVERT, &filter);
    int hops = 255;  // RFC 4861: neighbour discovery is dropped unless hop limit is 255
    int idx = static_cast<int>(ifindex_);
    if (setsockopt(fd_, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof(filter)) != 0 ||
        setsockopt(fd_, SOL_SOCKET, SO_BINDTODEVICE, ifname_.c_str(), ifname_.size()) != 0 ||
        setsockopt(fd_, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops)) != 0 ||
        setsockopt(fd_, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof(hops)) != 0 ||
        setsockopt(fd_, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof(idx)) != 0)
      Fail("setsockopt");
    struct sockaddr_in6 src = {};
    src.sin6_family = AF_INET6;
    src.sin6_addr = src6_;
    src.sin6_scope_id = IN6_IS_ADDR_LINKLOCAL(&src6_) ? ifindex_ : 0;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0) Fail("bind");
  }

  // The driver's link state (ETHTOOL_GLINK: netif_carrier_ok, at once); without ethtool
  // support IFF_RUNNING, which follows the carrier once the kernel's linkwatch ran.
  bool Carrier(int ctl, short flags) {
    struct ethtool_value link = {};
    link.cmd = ETHTOOL_GLINK;
    struct ifreq ifr = {};
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname_.c_str());
    ifr.ifr_data = reinterpret_cast<char*>(&link);
    if (ioctl(ctl, SIOCETHTOOL, &ifr) == 0) return link.data != 0;
    return (flags & IFF_RUNNING) != 0;
  }

  // The constructor throws: the destructor will not run, so the socket closes here.
  [[noreturn]] void Fail(const char* syscall) {
    int err = errno;
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    Throw(Env(), "probe gateway " + gw_text_ + " via " + ifname_, err, syscall);
  }

  // The address the kernel would send from toward the gateway out of the uplink
  // (connect() on a datagram socket routes without sending anything).
  bool SourceAddress() {
    int af = family_ == 4 ? AF_INET : AF_INET6;
    int s = socket(af, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) Fail("socket");
    struct sockaddr_storage dst = {};
    socklen_t dlen;
    if (family_ == 4) {
      auto* d = reinterpret_cast<sockaddr_in*>(&dst);
      d->sin_family = AF_INET;
      d->sin_port = htons(9);
      memcpy(&d->sin_addr, &gw_, 4);
      dlen = sizeof(*d);
    } else {
      auto* d = reinterpret_cast<sockaddr_in6*>(&dst);
      d->sin6_family = AF_INET6;
      d->sin6_port = htons(9);
      memcpy(&d->sin6_addr, &gw_, 16);
      d->sin6_scope_id = IN6_IS_ADDR_LINKLOCAL(&d->sin6_addr) ? ifindex_ : 0;
      dlen = sizeof(*d);
    }
    struct sockaddr_storage src = {};
    socklen_t slen = sizeof(src);
    bool ok = setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, ifname_.c_str(), ifname_.size()) == 0 &&
              connect(s, reinterpret_cast<sockaddr*>(&dst), dlen) == 0 &&
              getsockname(s, reinterpret_cast<sockaddr*>(&src), &slen) == 0;
    int err = errno;
    close(s);
    if (!ok) {
      cause_ = "no route to it via " + ifname_ + ": " + ErrnoText(err);
      return false;
    }
    if (family_ == 4)
      memcpy(&src4_, &reinterpret_cast<sockaddr_in*>(&src)->sin_addr, 4);
    else
      src6_ = reinterpret_cast<sockaddr_in6*>(&src)->sin6_addr;
    return true;
  }

  bool SendArp() {
    struct ether_arp req = {};
    req.arp_hrd = htons(ARPHRD_ETHER);
    req.arp_pro = htons(ETH_P_IP);
    req.arp_hln = 6;
    req.arp_pln = 4;
    req.arp_op = htons(ARPOP_REQUEST);
    memcpy(req.arp_sha, mac_own_, 6);
    memcpy(req.arp_spa, &src4_, 4);
    memcpy(req.arp_tpa, &gw_, 4);
    struct sockaddr_ll to = {};
    to.sll_family = AF_PACKET;
    to.sll_protocol = htons(ETH_P_ARP);
    to.sll_ifindex = static_cast<int>(ifindex_);
    to.sll_halen = 6;
    memset(to.sll_addr, 0xff, 6);
    return Sent(sendto(fd_, &req, sizeof(req), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)), sizeof(req));
  }

  bool MatchArp(const uint8_t* buf, ssize_t len) {
    if (len < static_cast<ssize_t>(sizeof(struct ether_arp))) return false;
    const auto* a = reinterpret_cast<const struct ether_arp*>(buf);
    if (ntohs(a->arp_op) != ARPOP_REPLY || memcmp(a->arp_spa, &gw_, 4) != 0 || memcmp(a->arp_tpa, &src4_, 4) != 0) return false;
    mac_ = MacText(a->arp_sha);
    return true;
  }

  // Neighbour solicitation to the gateway's solicited-node multicast group, carrying our
  // MAC (source link-layer option) so the gateway can answer at once.
  bool SendNs() {
    struct {
      struct nd_neighbor_solicit ns;
      struct nd_opt_hdr opt;
      uint8_t mac[6];
    } __attribute__((packed)) req = {};
    req.ns.nd_ns_type = ND_NEIGHBOR_SOLICIT;
    memcpy(&req.ns.nd_ns_target, &gw_, 16);
    req.opt.nd_opt_type = ND_OPT_SOURCE_LINKADDR;
    req.opt.nd_opt_len = 1;  // units of 8 bytes
    memcpy(req.mac, mac_own_, 6);
    struct sockaddr_in6 to = {};
    to.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "ff02::1:ff00:0", &to.sin6_addr);
    memcpy(&to.sin6_addr.s6_addr[13], &gw_[13], 3);
    to.sin6_scope_id = ifindex_;
    return Sent(sendto(fd_, &req, sizeof(req), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)), sizeof(req));
  }

  bool MatchNa(const uint8_t* buf, ssize_t len) {
    if (len < static_cast<ssize_t>(sizeof(struct nd_neighbor_advert))) return false;
    const auto* na = reinterpret_cast<const struct nd_neighbor_advert*>(buf);
    if (na->nd_na_type != ND_NEIGHBOR_ADVERT || memcmp(&na->nd_na_target, gw_, 16) != 0) return false;
    // Target link-layer address option, when the gateway sent one.
    for (ssize_t off = sizeof(*na); off + 8 <= len;) {
      const auto* opt = reinterpret_cast<const struct nd_opt_hdr*>(buf + off);
      if (opt->nd_opt_len == 0) break;
      if (opt->nd_opt_type == ND_OPT_TARGET_LINKADDR) mac_ = MacText(buf + off + 2);
      off += opt->nd_opt_len * 8;
    }
    return true;
  }

  bool Sent(ssize_t n, size_t want) {
    if (n == static_cast<ssize_t>(want)) return true;
    cause_ = "send to " + ifname_ + ": " + (n < 0 ? ErrnoText(errno) : "short write");
    return false;
  }

  Napi::Promise::Deferred deferred_;
  std::string ifname_;
  int family_;
  std::string gw_text_;
  uint32_t timeout_ms_;
  uint8_t gw_[16] = {};
  unsigned ifindex_ = 0;
  uint8_t mac_own_[6] = {};
  struct in_addr src4_ = {};
  struct in6_addr src6_ = {};
  int fd_ = -1;
  bool sent_ = false;
  bool answered_ = false;
  std::string mac_;
  std::string cause_;
};

// gatewayProbe(ifname, family, address, timeoutMs): Promise<{answered, sent, mac?, cause?}>
Napi::Value GatewayProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname = ArgString(info, 0, "gatewayProbe", "ifname");
  uint32_t family = ArgU32(info, 1, "gatewayProbe", "family");
  if (family != 4 && family != 6) ThrowArg(env, "gatewayProbe", "family: must be 4 or 6");
  std::string address = ArgString(info, 2, "gatewayProbe", "address");
  uint32_t timeout_ms = ArgU32(info, 3, "gatewayProbe", "timeoutMs");
  if (ifname.empty() || ifname.size() >= IFNAMSIZ) ThrowArg(env, "gatewayProbe", "ifname: 1 to 15 characters");
  auto* probe = new Probe(env, ifname, static_cast<int>(family), address, timeout_ms);
  Napi::Promise promise = probe->Promise();
  probe->Queue();
  return promise;
}

}  // namespace

void InitGateway(Napi::Env env, Napi::Object exports) {
  ExportAll(env, exports, {{"gatewayProbe", GatewayProbe}});
}

}  // namespace nf
