#include "net/socket.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace weir::net {

util::Result<util::Ok> setTransparent(int fd, int family, bool on) {
  const int value = on ? 1 : 0;
  const int rc = family == AF_INET6
                     ? ::setsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &value, sizeof(value))
                     : ::setsockopt(fd, IPPROTO_IP, IP_TRANSPARENT, &value, sizeof(value));
  if (rc < 0) {
    return util::lastError(family == AF_INET6 ? "setsockopt IPV6_TRANSPARENT"
                                              : "setsockopt IP_TRANSPARENT");
  }
  return util::Ok{};
}

util::Result<util::Ok> setDeferAccept(int fd, int seconds) {
  if (::setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &seconds, sizeof(seconds)) < 0) {
    return util::lastError("setsockopt TCP_DEFER_ACCEPT");
  }
  return util::Ok{};
}

bool deferAccept(int fd) {
  int value = 0;
  socklen_t len = sizeof(value);
  return ::getsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &value, &len) == 0 && value != 0;
}

util::Result<UniqueFd> listenReuseport(const SockAddr& addr, int backlog, bool transparent) {
  const std::string where = addr.toString();
  UniqueFd fd(::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    return util::lastError("socket for " + where);
  }
  int one = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
      ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
    return util::lastError("setsockopt SO_REUSEPORT on " + where);
  }
  // Without V6ONLY, [::]:80 would also claim 0.0.0.0:80 and clash with an IPv4 listener.
  if (addr.family() == AF_INET6 &&
      ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) {
    return util::lastError("setsockopt IPV6_V6ONLY on " + where);
  }
  // Accepted sockets inherit TCP_NODELAY from the listener: one setsockopt here instead of
  // one per connection.
  setNoDelay(fd.get());
  if (transparent) {
    if (auto set = setTransparent(fd.get(), addr.family(), true); !set) {
      return util::SysError{set.error().code, set.error().context + " on " + where};
    }
  }
  if (::bind(fd.get(), addr.get(), addr.len()) < 0) {
    return util::lastError("bind " + where);
  }
  if (::listen(fd.get(), backlog) < 0) {
    return util::lastError("listen " + where);
  }
  return fd;
}

util::Result<UniqueFd> connectNonBlocking(const SockAddr& addr, const SockAddr* source,
                                          std::string_view early, size_t* sent) {
  if (source != nullptr && source->family() != addr.family()) {
    return util::SysError{EAFNOSUPPORT, "connect " + addr.toString() + " from " +
                                            source->toString()};
  }
  UniqueFd fd(::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    return util::lastError("socket");
  }
  setNoDelay(fd.get());
  if (source != nullptr) {
    if (auto set = setTransparent(fd.get(), source->family(), true); !set) {
      return set.error();
    }
    int one = 1;
    (void)::setsockopt(fd.get(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    SockAddr from = *source;
    from.setPort(0);
    if (::bind(fd.get(), from.get(), from.len()) < 0) {
      return util::lastError("bind " + from.toString());
    }
  }
  if (!early.empty()) {
    *sent = 0;
    const ssize_t n = ::sendto(fd.get(), early.data(), early.size(), MSG_FASTOPEN | MSG_NOSIGNAL,
                               addr.get(), addr.len());
    if (n >= 0) {
      *sent = static_cast<size_t>(n);  // queued with the SYN; the connect is under way
      return fd;
    }
    if (errno == EINPROGRESS) {
      return fd;  // no cookie yet: a plain SYN asking for one went out, no data with it
    }
    if (errno != EOPNOTSUPP) {
      return util::lastError("sendto(MSG_FASTOPEN) " + addr.toString());
    }
    // Client TFO is off in this network namespace: connect as without it.
  }
  if (::connect(fd.get(), addr.get(), addr.len()) < 0 && errno != EINPROGRESS) {
    return util::lastError("connect " + addr.toString());
  }
  return fd;
}

int socketError(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
    return errno;
  }
  return err;
}

void setNoDelay(int fd) {
  int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

}  // namespace weir::net
