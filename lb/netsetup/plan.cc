#include "netsetup/plan.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdio>

namespace weir::netsetup {
namespace {

// The numeric IP of `addr`, or "" for the wildcard of its family.
std::string hostOf(const net::SockAddr& addr) {
  char text[INET6_ADDRSTRLEN] = {};
  if (addr.family() == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(addr.get());
    if (sin->sin_addr.s_addr == htonl(INADDR_ANY)) {
      return "";
    }
    ::inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
  } else {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(addr.get());
    if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr)) {
      return "";
    }
    ::inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
  }
  return text;
}

void addFamily(Plan& plan, int family) {
  (family == AF_INET6 ? plan.ipv6 : plan.ipv4) = true;
}

}  // namespace

std::string Intercept::describe() const {
  if (family == AF_INET6) {
    return "[" + (address.empty() ? std::string("::") : address) + "]:" + std::to_string(port);
  }
  return (address.empty() ? std::string("0.0.0.0") : address) + ":" + std::to_string(port);
}

Plan makePlan(const config::Config& cfg) {
  Plan plan;
  plan.mark = cfg.global.transparent_mark;
  plan.table = cfg.global.transparent_table;
  for (const auto& listener : cfg.listeners) {
    if (!listener.transparent) {
      continue;
    }
    for (const auto& bind : listener.binds) {
      addFamily(plan, bind.family());
      plan.intercepts.push_back(Intercept{bind.family(), hostOf(bind), bind.port()});
    }
  }
  for (const auto& pool : cfg.pools) {
    if (pool.source != config::SourceMode::Client) {
      continue;
    }
    // Replies to a connection made from the client's address come back to that address:
    // the backend's family is the family of the rule that steers them to weir's socket.
    for (const auto& backend : pool.backends) {
      if (backend.named()) {
        // A name may return addresses of either family, now or later.
        addFamily(plan, AF_INET);
        addFamily(plan, AF_INET6);
      } else {
        addFamily(plan, backend.address.family());
      }
    }
  }
  std::sort(plan.intercepts.begin(), plan.intercepts.end());
  plan.intercepts.erase(std::unique(plan.intercepts.begin(), plan.intercepts.end()),
                        plan.intercepts.end());
  return plan;
}

std::string formatMark(uint32_t mark) {
  char text[16];
  std::snprintf(text, sizeof(text), "%#x", mark);
  return text;
}

}  // namespace weir::netsetup
