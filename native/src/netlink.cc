#include "netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netlink/errno.h>
#include <netlink/handlers.h>
#include <netlink/socket.h>

#include "errors.h"

namespace nf {

int NlToErrno(int nle) {
  switch (nle) {
    case NLE_EXIST: return EEXIST;
    case NLE_OBJ_NOTFOUND: return ENOENT;
    case NLE_NODEV: return ENODEV;
    case NLE_PERM: return EPERM;
    case NLE_NOACCESS: return EACCES;
    case NLE_INVAL: return EINVAL;
    case NLE_RANGE: return ERANGE;
    case NLE_NOMEM: return ENOMEM;
    case NLE_BUSY: return EBUSY;
    case NLE_AGAIN: return EAGAIN;
    case NLE_AF_NOSUPPORT: return EAFNOSUPPORT;
    case NLE_OPNOTSUPP: return EOPNOTSUPP;
    case NLE_NOADDR: return EADDRNOTAVAIL;
    case NLE_BAD_SOCK: return EBADF;
    case NLE_MSGSIZE: return EMSGSIZE;
    case NLE_PROTO_MISMATCH: return EPROTONOSUPPORT;
    case NLE_INTR: return EINTR;
    default: return EIO;
  }
}

void ThrowNl(Napi::Env env, const std::string& what, int nle, const char* call) {
  int err = NlToErrno(nle);
  Throw(env, what, err, call, err == EIO ? nl_geterror(nle) : ErrnoText(err));
}

NlSocket::NlSocket(Napi::Env env, const std::string& what) : env_(env), sk_(nl_socket_alloc()) {
  if (!sk_) Throw(env, what, ENOMEM, "nl_socket_alloc");
  nl_socket_modify_err_cb(sk_, NL_CB_CUSTOM, OnError, this);
  int err = nl_connect(sk_, NETLINK_ROUTE);
  if (err < 0) {
    nl_socket_free(sk_);
    sk_ = nullptr;
    ThrowNl(env, what, -err, "nl_connect");
  }
}

int NlSocket::OnError(sockaddr_nl*, nlmsgerr* err, void* arg) {
  static_cast<NlSocket*>(arg)->kernel_errno_ = -err->error;
  return NL_STOP;  // libnl then returns the error as its NLE code
}

int NlSocket::Check(int ret, const std::string& what, const char* call) {
  if (ret >= 0) return ret;
  if (kernel_errno_ > 0) Throw(env_, what, kernel_errno_, call);
  ThrowNl(env_, what, -ret, call);
}

NlSocket::~NlSocket() {
  if (sk_) nl_socket_free(sk_);
}

std::string AddrText(nl_addr* a, int family) {
  char buf[INET6_ADDRSTRLEN] = "";
  static const unsigned char kZero[16] = {};
  const void* bin = a && nl_addr_get_len(a) > 0 ? nl_addr_get_binary_addr(a) : kZero;
  inet_ntop(family, bin, buf, sizeof(buf));
  return buf;
}

std::string AddrWithPrefix(nl_addr* a, int family) {
  return AddrText(a, family) + "/" + std::to_string(a ? nl_addr_get_prefixlen(a) : 0);
}

}  // namespace nf
