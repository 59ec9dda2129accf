#include "net/route_table.h"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace weir::net {
namespace {

constexpr int kReplyTimeoutMs = 2000;

// A route request: header, rtmsg and room for RTA_TABLE, RTA_DST (16 bytes) and RTA_OIF.
struct Request {
  nlmsghdr hdr;
  rtmsg rt;
  char attrs[64];
};

void addAttr(Request& req, uint16_t type, const void* data, size_t len) {
  auto* rta = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(&req) +
                                        NLMSG_ALIGN(req.hdr.nlmsg_len));
  rta->rta_type = type;
  rta->rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
  std::memcpy(RTA_DATA(rta), data, len);
  req.hdr.nlmsg_len =
      static_cast<uint32_t>(NLMSG_ALIGN(req.hdr.nlmsg_len) + RTA_ALIGN(rta->rta_len));
}

}  // namespace

HostAddr HostAddr::of(const SockAddr& addr) {
  HostAddr h;
  h.family = addr.family();
  if (h.family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr.get());
    std::memcpy(h.bytes.data(), &in->sin_addr, 4);
  } else if (h.family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr.get());
    std::memcpy(h.bytes.data(), &in6->sin6_addr, 16);
  }
  return h;
}

std::string HostAddr::toString() const {
  char text[INET6_ADDRSTRLEN] = {};
  if (::inet_ntop(family, bytes.data(), text, sizeof(text)) == nullptr) {
    return "?";
  }
  return std::string(text) + "/" + std::to_string(prefixLength());
}

util::Result<RouteTable> RouteTable::open(uint32_t table, uint8_t protocol) {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd) {
    return util::lastError("socket(AF_NETLINK)");
  }
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
    return util::lastError("bind(AF_NETLINK)");
  }
  const unsigned lo = ::if_nametoindex("lo");
  if (lo == 0) {
    return util::lastError("if_nametoindex(lo)");
  }
  return RouteTable(std::move(fd), table, protocol, static_cast<int>(lo));
}

int RouteTable::exchange(const void* req, size_t len, uint32_t seq,
                         const std::function<void(const void* msg, size_t len)>* on_route) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd_.get(), req, len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0) {
    return errno;
  }
  alignas(nlmsghdr) char buf[32768];
  // Bounded: a dump of a table of weir's own is a few messages; a reply that never comes is
  // a timeout, not a hang of the master.
  for (int reads = 0; reads < 100000; ++reads) {
    pollfd pfd{fd_.get(), POLLIN, 0};
    const int ready = ::poll(&pfd, 1, kReplyTimeoutMs);
    if (ready <= 0) {
      return ready == 0 ? ETIMEDOUT : errno;
    }
    const ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errno;
    }
    size_t left = static_cast<size_t>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != seq) {
        continue;  // an answer to an earlier request that timed out
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) {
          return EPROTO;
        }
        return -static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;  // 0: the acknowledgement
      }
      if (h->nlmsg_type == NLMSG_DONE) {
        return 0;
      }
      if (on_route != nullptr && h->nlmsg_type == RTM_NEWROUTE) {
        (*on_route)(h, h->nlmsg_len);
      }
    }
  }
  return EPROTO;
}

util::Result<util::Ok> RouteTable::change(int type, uint16_t flags, const HostAddr& addr,
                                          const char* what) {
  Request req{};
  req.hdr.nlmsg_len = NLMSG_LENGTH(sizeof(rtmsg));
  req.hdr.nlmsg_type = static_cast<uint16_t>(type);
  req.hdr.nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
  req.hdr.nlmsg_seq = ++seq_;
  req.rt.rtm_family = static_cast<unsigned char>(addr.family);
  req.rt.rtm_dst_len = static_cast<unsigned char>(addr.prefixLength());
  req.rt.rtm_table = RT_TABLE_UNSPEC;  // the table number goes in RTA_TABLE (it may be > 255)
  req.rt.rtm_protocol = protocol_;
  req.rt.rtm_scope = RT_SCOPE_LINK;  // no gateway: as `ip route add ... dev lo` makes it
  req.rt.rtm_type = RTN_UNICAST;
  addAttr(req, RTA_TABLE, &table_, sizeof(table_));
  addAttr(req, RTA_DST, addr.bytes.data(), addr.size());
  addAttr(req, RTA_OIF, &lo_, sizeof(lo_));
  const int err = exchange(&req, req.hdr.nlmsg_len, req.hdr.nlmsg_seq, nullptr);
  if (err != 0) {
    return util::SysError{err, std::string(what) + " " + addr.toString() + " dev lo table " +
                                   std::to_string(table_) + " proto " +
                                   std::to_string(protocol_)};
  }
  return util::Ok{};
}

util::Result<util::Ok> RouteTable::add(const HostAddr& addr) {
  return change(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, addr, "ip route replace");
}

util::Result<util::Ok> RouteTable::remove(const HostAddr& addr) {
  auto r = change(RTM_DELROUTE, 0, addr, "ip route del");
  if (!r && r.error().code == ESRCH) {
    return util::Ok{};  // not there (any more): what removing wanted
  }
  return r;
}

util::Result<std::vector<HostAddr>> RouteTable::list() {
  std::vector<HostAddr> out;
  const std::function<void(const void*, size_t)> on_route = [&](const void* msg, size_t len) {
    const auto* h = static_cast<const nlmsghdr*>(msg);
    if (len < NLMSG_LENGTH(sizeof(rtmsg))) {
      return;
    }
    const auto* rt = static_cast<const rtmsg*>(NLMSG_DATA(h));
    if (rt->rtm_protocol != protocol_ ||
        (rt->rtm_family != AF_INET && rt->rtm_family != AF_INET6)) {
      return;
    }
    HostAddr a;
    a.family = rt->rtm_family;
    if (rt->rtm_dst_len != a.prefixLength()) {
      return;
    }
    uint32_t table = rt->rtm_table;
    bool have_dst = false;
    int attr_len = static_cast<int>(RTM_PAYLOAD(h));
    for (auto* rta = RTM_RTA(rt); RTA_OK(rta, attr_len); rta = RTA_NEXT(rta, attr_len)) {
      if (rta->rta_type == RTA_TABLE && RTA_PAYLOAD(rta) >= sizeof(uint32_t)) {
        std::memcpy(&table, RTA_DATA(rta), sizeof(table));
      } else if (rta->rta_type == RTA_DST && RTA_PAYLOAD(rta) == a.size()) {
        std::memcpy(a.bytes.data(), RTA_DATA(rta), a.size());
        have_dst = true;
      }
    }
    if (table == table_ && have_dst) {
      out.push_back(a);
    }
  };
  for (int family : {AF_INET, AF_INET6}) {
    Request req{};
    req.hdr.nlmsg_len = NLMSG_LENGTH(sizeof(rtmsg));
    req.hdr.nlmsg_type = RTM_GETROUTE;
    req.hdr.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.hdr.nlmsg_seq = ++seq_;
    req.rt.rtm_family = static_cast<unsigned char>(family);
    const int err = exchange(&req, req.hdr.nlmsg_len, req.hdr.nlmsg_seq, &on_route);
    if (err != 0) {
      return util::SysError{err, "ip route show table " + std::to_string(table_)};
    }
  }
  return out;
}

}  // namespace weir::net
