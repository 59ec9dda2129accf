#include <utility>

#include "config/readers.h"
#include "net/host_name.h"

namespace weir::config::detail {
namespace {

constexpr std::string_view kNeedsBackend = "a pool needs at least one backend";

// A backend's address: "IP:PORT", or "NAME:PORT" (then `named` is set and `port` holds PORT).
struct BackendAddress {
  net::SockAddr address;
  std::string host;
  uint16_t port = 0;
};

std::optional<BackendAddress> readBackendAddress(const toml::node& value, const std::string& path,
                                                 Diagnostics& diag) {
  auto* text = value.as_string();
  if (text == nullptr) {
    diag.add(value, path, "expected \"IP:PORT\" or \"NAME:PORT\", got " + describe(value));
    return std::nullopt;
  }
  const std::string& s = text->get();
  const size_t colon = s.rfind(':');
  // A name has no ':' and no '[' of its own; anything else is an address or a mistake in one.
  const bool looks_named = colon != std::string::npos && colon > 0 &&
                           s.find(':') == colon && s.find('[') == std::string::npos &&
                           net::validHostName(std::string_view(s).substr(0, colon));
  if (!looks_named) {
    auto addr = readAddress(value, path, diag);
    if (!addr) {
      return std::nullopt;
    }
    return BackendAddress{*addr, {}, 0};
  }
  const std::string_view port_text = std::string_view(s).substr(colon + 1);
  uint32_t port = 0;
  bool digits = !port_text.empty() && port_text.size() <= 5;
  for (char c : port_text) {
    digits = digits && c >= '0' && c <= '9';
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (!digits || port == 0 || port > 65535) {
    diag.add(value, path, quote(s) + ": expected a port 1-65535 after the name");
    return std::nullopt;
  }
  return BackendAddress{{}, s.substr(0, colon), static_cast<uint16_t>(port)};
}

// Reads one { address = "IP:PORT", weight = N } entry; nullopt if it has a problem.
std::optional<Backend> readBackend(const toml::node& node, const std::string& path,
                                   Diagnostics& diag) {
  auto* table = node.as_table();
  if (table == nullptr) {
    diag.add(node, path,
             "expected a table such as { address = \"IP:PORT\", weight = 1 }, got " +
                 describe(node));
    return std::nullopt;
  }
  Section section(*table, path, diag);
  section.checkKeys({"address", "weight", "backup", "max_connections", "max_addresses"});
  Backend backend;
  std::optional<BackendAddress> address;
  if (const toml::node* value = section.get("address")) {
    address = readBackendAddress(*value, section.pathOf("address"), diag);
  } else {
    section.missing("address");
  }
  auto weight = section.integer("weight", 1, 1000);
  if (weight) {
    backend.weight = static_cast<uint32_t>(*weight);
  }
  if (auto backup = section.boolean("backup")) {
    backend.backup = *backup;
  }
  if (auto max = section.integer("max_connections", 0, 1000000)) {
    backend.max_connections = static_cast<uint32_t>(*max);
  }
  auto max_addresses = section.integer("max_addresses", 1, kMaxMaxAddresses);
  if (!address) {
    return std::nullopt;
  }
  if (address->host.empty()) {
    if (max_addresses) {
      section.problem(*section.get("max_addresses"), "max_addresses",
                      "only for a backend given by name (\"NAME:PORT\"); " +
                          address->address.toString() + " is one address");
    }
    backend.address = address->address;
    return backend;
  }
  backend.where =
      diag.where(section.get("address")->source().begin, section.pathOf("address"));
  backend.host = std::move(address->host);
  backend.port = address->port;
  backend.name_slots = max_addresses ? static_cast<uint32_t>(*max_addresses)
                                     : kDefaultMaxAddresses;
  return backend;
}

// Whether a and b are the same backend entry ("IP:PORT", or the same NAME:PORT).
bool sameBackend(const Backend& a, const Backend& b) {
  if (a.named() || b.named()) {
    return a.host == b.host && a.port == b.port;
  }
  return a.address == b.address;
}

void readBackends(const Section& section, Pool& pool) {
  const toml::node* node = section.get("backends");
  if (node == nullptr) {
    section.diag().add(section.table(), section.pathOf("backends"), kNeedsBackend);
    return;
  }
  auto* array = node->as_array();
  if (array == nullptr) {
    section.problem(*node, "backends",
                    "expected an array such as [{ address = \"IP:PORT\" }], got " +
                        describe(*node));
    return;
  }
  if (array->empty()) {
    section.problem(*node, "backends", kNeedsBackend);
    return;
  }
  std::vector<size_t> index_of;  // pool.backends[k] came from backends[index_of[k]]
  for (size_t i = 0; i < array->size(); ++i) {
    const toml::node& item = *array->get(i);
    std::string path = section.pathOf("backends") + "[" + std::to_string(i) + "]";
    auto backend = readBackend(item, path, section.diag());
    if (!backend) {
      continue;
    }
    bool duplicate = false;
    for (size_t k = 0; k < pool.backends.size() && !duplicate; ++k) {
      if (sameBackend(pool.backends[k], *backend)) {
        // readBackend succeeded, so the address key exists.
        const std::string what = backend->named()
                                     ? backend->host + ":" + std::to_string(backend->port)
                                     : backend->address.toString();
        section.diag().add(*item.as_table()->get("address"), path + ".address",
                           what + " is already listed as backends[" +
                               std::to_string(index_of[k]) + "]");
        duplicate = true;
      }
    }
    if (duplicate) {
      continue;
    }
    // A named backend takes one entry per slot (see config::Backend).
    const uint32_t entries = backend->named() ? backend->name_slots : 1;
    for (uint32_t slot = 0; slot < entries; ++slot) {
      backend->name_slot = slot;
      pool.backends.push_back(*backend);
      index_of.push_back(i);
    }
  }
}

void readHealthTable(const Section& section, Pool& pool) {
  if (auto health = section.subtable("health")) {
    pool.health = readHealth(*health);
  }
}

// Passive health: failed connects from traffic. A pool with [health] takes `fall` from it and
// relies on the checker to bring backends back; a pool without one uses a hold-down instead.
void readPassive(const Section& section, Pool& pool) {
  if (pool.health) {
    pool.passive_fall = pool.health->fall;
  }
  if (auto fall = section.integer("passive_fall", 0, 100)) {
    pool.passive_fall = static_cast<uint32_t>(*fall);
  }
  if (auto holddown = section.duration("passive_holddown", kMaxDuration)) {
    if (section.get("health") != nullptr) {
      section.problem(*section.get("passive_holddown"), "passive_holddown",
                      "only used by pools without [" + section.pathOf("health") +
                          "] (there, passing health checks bring a backend back)");
    }
    pool.passive_holddown = *holddown;
  }
}

void readTlsTable(const Section& section, Pool& pool) {
  if (auto tls = section.subtable("tls")) {
    pool.tls = readUpstreamTls(*tls);
  }
}

void readFastOpen(const Section& section, Pool& pool) {
  if (auto fastopen = section.boolean("tcp_fastopen")) {
    pool.tcp_fastopen = *fastopen;
  }
  if (pool.tcp_fastopen && section.get("tls") != nullptr) {
    // weir's own ClientHello to the backend only exists once the connect completed, and the
    // client's bytes may not go before the handshake: nothing could ride in the SYN.
    section.problem(*section.get("tcp_fastopen"), "tcp_fastopen",
                    "cannot be used with [" + section.pathOf("tls") +
                        "]: the ClientHello only exists after the connect, so nothing could "
                        "ride in the SYN");
  }
}

}  // namespace

Pool readPool(const Section& section, const std::string& name) {
  section.checkKeys({"balance", "connect_timeout", "idle_timeout", "retries", "backends",
                     "health", "passive_fall", "passive_holddown", "tls", "source",
                     "proxy_protocol", "tcp_fastopen", "slow_start"});
  Pool pool;
  pool.name = name;
  if (name.size() > kMaxPoolName) {
    section.diag().add(section.table(), section.path(),
                       "a pool name may have at most " + std::to_string(kMaxPoolName) +
                           " characters, got " + std::to_string(name.size()));
  }
  constexpr Balance kBalances[] = {Balance::RoundRobin, Balance::LeastConn, Balance::Maglev,
                                   Balance::RandomTwo};
  if (auto balance =
          section.oneOf("balance", {"round-robin", "least-conn", "maglev", "random-two"})) {
    pool.balance = kBalances[*balance];
  }
  if (auto timeout = section.duration("connect_timeout", kMaxDuration)) {
    pool.connect_timeout = *timeout;
  }
  if (auto timeout = section.duration("idle_timeout", kMaxIdleTimeout)) {
    pool.idle_timeout = *timeout;
  }
  if (auto retries = section.integer("retries", 0, 100)) {
    pool.retries = static_cast<uint32_t>(*retries);
  }
  if (auto slow_start = section.duration("slow_start", kMaxDuration, true)) {
    pool.slow_start = *slow_start;
  }
  constexpr SourceMode kSources[] = {SourceMode::Local, SourceMode::Client};
  if (auto source = section.oneOf("source", {"local", "client"})) {
    pool.source = kSources[*source];
  }
  constexpr ProxyProtocol kProxyProtocols[] = {ProxyProtocol::Off, ProxyProtocol::V1,
                                               ProxyProtocol::V2};
  if (auto proxy = section.oneOf("proxy_protocol", {"off", "v1", "v2"})) {
    pool.proxy_protocol = kProxyProtocols[*proxy];
  }
  readBackends(section, pool);
  readHealthTable(section, pool);
  readPassive(section, pool);
  readTlsTable(section, pool);
  readFastOpen(section, pool);
  return pool;
}

}  // namespace weir::config::detail
