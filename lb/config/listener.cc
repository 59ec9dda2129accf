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

bool isLoopback(const net::SockAddr& a) {
  if (a.family() == AF_INET) {
    return (ntohl(reinterpret_cast<const sockaddr_in*>(a.get())->sin_addr.s_addr) >> 24) == 127;
  }
  return IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(a.get())->sin6_addr);
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

constexpr std::string_view kTlsModes =
    "only used with mode = \"tls-passthrough\" or \"tls-terminate\"";

// nullopt if `mode` is wrong: the checks of the keys that depend on it are then skipped.
std::optional<ListenerMode> readMode(const Section& section) {
  if (section.get("mode") == nullptr) {
    return ListenerMode::Tcp;
  }
  constexpr ListenerMode kModes[] = {ListenerMode::Tcp, ListenerMode::TlsPassthrough,
                                     ListenerMode::TlsTerminate};
  if (auto mode = section.oneOf("mode", {"tcp", "tls-passthrough", "tls-terminate"})) {
    return kModes[*mode];
  }
  return std::nullopt;
}

// A passthrough listener hands the client's own TLS bytes to the backend; a pool that wants
// weir to speak TLS to its backends would get them encrypted twice.
void checkPassthroughPool(const Section& section, const toml::node& value,
                          const std::string& path, const PoolNames& pools) {
  auto* pool = value.as_string();
  if (pool == nullptr || std::find(pools.with_tls.begin(), pools.with_tls.end(),
                                   pool->get()) == pools.with_tls.end()) {
    return;
  }
  section.diag().add(value, path,
                     "pool " + quote(pool->get()) + " has [" + joinPath("pools", pool->get()) +
                         ".tls], but tls-passthrough forwards the client's TLS untouched (only "
                         "tls-terminate re-encrypts to backends)");
}

void readSni(const Section& section, std::optional<ListenerMode> mode, const PoolNames& pools,
             Listener& listener) {
  const std::optional<Section> sni = section.subtable("sni");
  if (!sni) {
    return;
  }
  listener.sni = readSniRoutes(*sni, pools.all);
  if (mode == ListenerMode::Tcp) {
    section.problem(*section.get("sni"), "sni", kTlsModes);
  }
  if (mode == ListenerMode::TlsPassthrough) {
    for (auto&& [key, value] : sni->table()) {
      checkPassthroughPool(section, value, sni->pathOf(key.str()), pools);
    }
  }
}

void readServerTlsTable(const Section& section, std::optional<ListenerMode> mode,
                        Listener& listener) {
  const toml::node* node = section.get("tls");
  if (node == nullptr) {
    if (mode == ListenerMode::TlsTerminate) {
      section.diag().add(section.table(), section.path(),
                         "missing required key \"tls\": mode = \"tls-terminate\" needs [" +
                             section.pathOf("tls") + "] with its certificates");
    }
    return;
  }
  const std::optional<Section> tls = section.subtable("tls");
  if (!tls) {
    return;
  }
  listener.tls = readServerTls(*tls);
  if (mode == ListenerMode::Tcp) {
    section.problem(*node, "tls", "only used with mode = \"tls-terminate\"");
  } else if (mode == ListenerMode::TlsPassthrough) {
    section.problem(*node, "tls",
                    "only used with mode = \"tls-terminate\" (tls-passthrough does not "
                    "decrypt: the backends hold the certificates)");
  }
}

void readClientHelloTimeout(const Section& section, std::optional<ListenerMode> mode,
                            Listener& listener) {
  auto timeout = section.duration("client_hello_timeout", kMaxDuration);
  if (!timeout) {
    return;
  }
  listener.client_hello_timeout = *timeout;
  const toml::node& node = *section.get("client_hello_timeout");
  if (mode == ListenerMode::Tcp) {
    section.problem(node, "client_hello_timeout", "only used with mode = \"tls-passthrough\"");
  } else if (mode == ListenerMode::TlsTerminate) {
    section.problem(node, "client_hello_timeout",
                    "only used with mode = \"tls-passthrough\"; tls-terminate bounds the whole "
                    "handshake with " + section.pathOf("tls") + ".handshake_timeout");
  }
}

// A route names one address: a wildcard bind has none to announce.
void readAnnounce(const Section& section, Listener& listener) {
  auto announce = section.boolean("announce");
  if (!announce) {
    return;
  }
  listener.announce = *announce;
  if (!*announce) {
    return;
  }
  for (const net::SockAddr& bind : listener.binds) {
    if (isWildcard(bind)) {
      section.problem(*section.get("announce"), "announce",
                      "bind " + bind.toString() + " is a wildcard address: an announced "
                      "listener binds the VIP itself (the address the routers send to this "
                      "node), such as \"192.0.2.10:443\"");
      return;
    }
    if (isLoopback(bind)) {
      section.problem(*section.get("announce"), "announce",
                      "bind " + bind.toString() + " is a loopback address, which no router can "
                      "reach: announce the VIP the routers send to this node");
      return;
    }
  }
}

}  // namespace

Listener readListener(const Section& section, const std::string& name, const PoolNames& pools,
                      std::vector<BindSite>& binds) {
  section.checkKeys({"bind", "pool", "backlog", "mode", "client_hello_timeout", "sni", "tls",
                     "transparent", "accept_proxy_protocol", "trusted",
                     "proxy_protocol_timeout", "defer_accept", "announce", "allow", "deny",
                     "allow_file", "deny_file"});
  Listener listener;
  listener.name = name;
  readBinds(section, listener, binds);
  const std::optional<ListenerMode> mode = readMode(section);
  if (section.get("pool") == nullptr) {
    section.missing("pool");
  } else if (auto pool = section.string("pool", "a pool name")) {
    if (std::find(pools.all.begin(), pools.all.end(), *pool) == pools.all.end()) {
      section.problem(*section.get("pool"), "pool",
                      "no pool named " + quote(*pool) + didYouMean(*pool, pools.all));
    } else if (mode == ListenerMode::TlsPassthrough) {
      checkPassthroughPool(section, *section.get("pool"), section.pathOf("pool"), pools);
    }
    listener.pool = *pool;
  }
  if (auto backlog = section.integer("backlog", 1, 65535)) {
    listener.backlog = static_cast<int>(*backlog);
  }
  if (mode) {
    listener.mode = *mode;
  }
  readClientHelloTimeout(section, mode, listener);
  readSni(section, mode, pools, listener);
  readServerTlsTable(section, mode, listener);
  // Binds need no check here: a transparent socket may bind an address this host does not
  // own, and weir-netsetup's rules deliver the traffic for it.
  if (auto transparent = section.boolean("transparent")) {
    listener.transparent = *transparent;
  }
  if (auto defer = section.boolean("defer_accept")) {
    listener.defer_accept = *defer;
  }
  readProxyProtocol(section, listener);
  readAnnounce(section, listener);
  readAccess(section, listener);
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
