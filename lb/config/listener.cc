#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "config/readers.h"

namespace weir::config::detail {
namespace {

bool isWildcard(const net::SockAddr& a) {
  if (a.family() == AF_INET) {
    return reinterpret_cast<const sockaddr_in*>(a.get())->sin_addr.s_addr == htonl(INADDR_ANY);
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a.get());
  return IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
}

bool sameIp(const net::SockAddr& a, const net::SockAddr& b) {
  if (a.family() != b.family()) {
    return false;
  }
  if (a.family() == AF_INET) {
    return reinterpret_cast<const sockaddr_in*>(a.get())->sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in*>(b.get())->sin_addr.s_addr;
  }
  const auto* a6 = reinterpret_cast<const sockaddr_in6*>(a.get());
  const auto* b6 = reinterpret_cast<const sockaddr_in6*>(b.get());
  return std::memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(in6_addr)) == 0;
}

bool overlaps(const net::SockAddr& a, const net::SockAddr& b) {
  return a.family() == b.family() && a.port() == b.port() &&
         (sameIp(a, b) || isWildcard(a) || isWildcard(b));
}

void readBind(const toml::node& node, const std::string& path, const std::string& listener,
              Listener& out, std::vector<BindSite>& binds, Diagnostics& diag) {
  if (auto address = readAddress(node, path, diag)) {
    out.binds.push_back(*address);
    binds.push_back({*address, listener, path, node.source().begin});
  }
}

void readBinds(const Section& section, Listener& out, std::vector<BindSite>& binds) {
  const toml::node* node = section.get("bind");
  if (node == nullptr) {
    section.missing("bind");
    return;
  }
  std::string path = section.pathOf("bind");
  if (node->is_string()) {
    readBind(*node, path, section.path(), out, binds, section.diag());
    return;
  }
  auto* array = node->as_array();
  if (array == nullptr) {
    section.problem(*node, "bind",
                    "expected \"IP:PORT\" or an array of them, got " + describe(*node));
    return;
  }
  if (array->empty()) {
    section.problem(*node, "bind", "needs at least one \"IP:PORT\"");
    return;
  }
  for (size_t i = 0; i < array->size(); ++i) {
    std::string item_path = path + "[" + std::to_string(i) + "]";
    readBind(*array->get(i), item_path, section.path(), out, binds, section.diag());
  }
}

}  // namespace

Listener readListener(const Section& section, const std::string& name,
                      const std::vector<std::string>& pool_names, std::vector<BindSite>& binds) {
  section.checkKeys({"bind", "pool", "backlog"});
  Listener listener;
  listener.name = name;
  readBinds(section, listener, binds);
  if (section.get("pool") == nullptr) {
    section.missing("pool");
  } else if (auto pool = section.string("pool", "a pool name")) {
    if (std::find(pool_names.begin(), pool_names.end(), *pool) == pool_names.end()) {
      section.problem(*section.get("pool"), "pool",
                      "no pool named " + quote(*pool) + didYouMean(*pool, pool_names));
    }
    listener.pool = *pool;
  }
  if (auto backlog = section.integer("backlog", 1, 65535)) {
    listener.backlog = static_cast<int>(*backlog);
  }
  return listener;
}

void checkBindOverlaps(std::vector<BindSite> binds, Diagnostics& diag) {
  std::stable_sort(binds.begin(), binds.end(), [](const BindSite& a, const BindSite& b) {
    return a.at.line != b.at.line ? a.at.line < b.at.line : a.at.column < b.at.column;
  });
  for (size_t i = 0; i < binds.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (!overlaps(binds[i].address, binds[j].address)) {
        continue;
      }
      std::string what =
          binds[i].address.toString() + " is already bound by " + binds[j].listener;
      if (!sameIp(binds[i].address, binds[j].address)) {
        what += " (as " + binds[j].address.toString() + ")";
      }
      diag.add(binds[i].at, binds[i].path, what);
      break;
    }
  }
}

}  // namespace weir::config::detail
