#include "master/quiesce.h"

#include <linux/filter.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "net/unique_fd.h"

namespace weir::master {
namespace {

constexpr int kTcpSynRecv = 3;  // TCP_SYN_RECV in the kernel's state numbering
constexpr int kMaxDumpReads = 4096;  // bounds the netlink read loop

bool sameLocal(const net::SockAddr& addr, const inet_diag_msg& msg) {
  if (msg.idiag_family != addr.family() || ntohs(msg.id.idiag_sport) != addr.port()) {
    return false;
  }
  if (addr.family() == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(addr.get());
    return sin->sin_addr.s_addr == INADDR_ANY || sin->sin_addr.s_addr == msg.id.idiag_src[0];
  }
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(addr.get());
  static const in6_addr kAny = IN6ADDR_ANY_INIT;
  return std::memcmp(&sin6->sin6_addr, &kAny, sizeof(kAny)) == 0 ||
         std::memcmp(&sin6->sin6_addr, msg.id.idiag_src, sizeof(in6_addr)) == 0;
}

}  // namespace

int dropNewHandshakes(int fd) {
  // The filter sees the segment from its TCP header on: byte 13 holds the flags.
  static sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),
      BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12),         // SYN | ACK
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1),   // SYN alone?
      BPF_STMT(BPF_RET | BPF_K, 0),                      // drop
      BPF_STMT(BPF_RET | BPF_K, 0xffffffff),             // keep all of it
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof(code) / sizeof(code[0])), code};
  if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) != 0) {
    return errno;
  }
  return 0;
}

int allowNewHandshakes(int fd) {
  int unused = 0;
  if (::setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &unused, sizeof(unused)) != 0) {
    return errno == ENOENT ? 0 : errno;
  }
  return 0;
}

uint32_t acceptQueueLength(int fd) {
  tcp_info info{};
  socklen_t len = sizeof(info);
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) {
    return 0;
  }
  return info.tcpi_unacked;
}

int64_t halfOpenCount(const net::SockAddr& addr) {
  net::UniqueFd nl(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!nl) {
    return -1;
  }
  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 req;
  } msg{};
  msg.nlh.nlmsg_len = sizeof(msg);
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  msg.req.sdiag_family = static_cast<uint8_t>(addr.family());
  msg.req.sdiag_protocol = IPPROTO_TCP;
  msg.req.idiag_states = 1u << kTcpSynRecv;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(nl.get(), &msg, sizeof(msg), 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof(kernel)) < 0) {
    return -1;
  }
  int64_t count = 0;
  alignas(nlmsghdr) char buf[16384];
  for (int reads = 0; reads < kMaxDumpReads; ++reads) {
    ssize_t n = ::recv(nl.get(), buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return -1;
    }
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, static_cast<unsigned>(n));
         h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) {
        return count;
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        return -1;
      }
      const auto* diag = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
      if (sameLocal(addr, *diag)) {
        ++count;
      }
    }
  }
  return -1;
}

}  // namespace weir::master
