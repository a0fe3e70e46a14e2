// libnl-route plumbing shared by links and routing: a connected NETLINK_ROUTE socket,
// libnl error codes turned into errno names, and RAII for libnl objects.
#pragma once

#include <napi.h>
#include <netlink/addr.h>
#include <netlink/netlink.h>

#include <string>

namespace nf {

// libnl returns -NLE_* codes; JS errors carry the errno they stand for.
int NlToErrno(int nle);
[[noreturn]] void ThrowNl(Napi::Env env, const std::string& what, int nle, const char* call);
inline int CheckNl(Napi::Env env, int ret, const std::string& what, const char* call) {
  if (ret < 0) ThrowNl(env, what, -ret, call);
  return ret;
}

// A NETLINK_ROUTE socket in the calling thread's netns. It keeps the kernel's errno
// from the last error reply: libnl folds many (ENETUNREACH, ...) into one NLE code.
class NlSocket {
 public:
  NlSocket(Napi::Env env, const std::string& what);
  ~NlSocket();
  NlSocket(const NlSocket&) = delete;
  NlSocket& operator=(const NlSocket&) = delete;
  nl_sock* get() const { return sk_; }
  // Throws "what: cause" with the kernel's errno when ret (a libnl result) is < 0.
  int Check(int ret, const std::string& what, const char* call);

 private:
  static int OnError(sockaddr_nl* nla, nlmsgerr* err, void* arg);
  Napi::Env env_;
  nl_sock* sk_;
  int kernel_errno_ = 0;
};

// Owns one libnl object or cache (nl_object_put / nl_cache_free, via the deleter).
template <typename T, void (*Free)(T*)>
struct NlPtr {
  T* p = nullptr;
  NlPtr() = default;
  explicit NlPtr(T* q) : p(q) {}
  ~NlPtr() {
    if (p) Free(p);
  }
  NlPtr(const NlPtr&) = delete;
  NlPtr& operator=(const NlPtr&) = delete;
  T* operator->() const { return p; }
  T* get() const { return p; }
};

// Address text ("10.1.2.3", "fd00::1"); absent or empty is the zero address.
std::string AddrText(nl_addr* a, int family);
// With the prefix length always shown: "10.1.2.3/32", "0.0.0.0/0".
std::string AddrWithPrefix(nl_addr* a, int family);

}  // namespace nf
