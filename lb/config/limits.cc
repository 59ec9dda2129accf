// [listeners.NAME] rate_per_client, max_connections_per_client, per_client_ipv4_prefix and
// per_client_ipv6_prefix: how many connections one client may start, and hold.
#include "config/readers.h"

namespace weir::config::detail {

void readClientLimits(const Section& section, Listener& listener) {
  const toml::node* rate_node = section.get("rate_per_client");
  if (auto text = section.string("rate_per_client", "a rate such as \"20/s\" or \"600/m\"")) {
    if (auto rate = parseRate(*text)) {
      listener.rate_per_client = *rate;
    } else {
      section.problem(*rate_node, "rate_per_client",
                      quote(*text) + ": expected N/s or N/m with N from 1 to " +
                          std::to_string(kMaxRateCount) + ", such as \"20/s\" or \"600/m\"");
    }
  }
  const toml::node* max_node = section.get("max_connections_per_client");
  if (auto max = section.integer("max_connections_per_client", 1, kMaxRateCount)) {
    listener.max_connections_per_client = static_cast<uint32_t>(*max);
  }
  const struct {
    std::string_view key;
    int64_t max;
    unsigned* out;
  } prefixes[] = {{"per_client_ipv4_prefix", 32, &listener.per_client_ipv4_prefix},
                  {"per_client_ipv6_prefix", 128, &listener.per_client_ipv6_prefix}};
  for (const auto& p : prefixes) {
    const auto bits = section.integer(p.key, 0, p.max);
    if (!bits) {
      continue;
    }
    *p.out = static_cast<unsigned>(*bits);
    if (rate_node == nullptr && max_node == nullptr) {
      section.problem(*section.get(p.key), p.key,
                      "only used with rate_per_client or max_connections_per_client (it says "
                      "which clients count as one)");
    }
  }
}

}  // namespace weir::config::detail
