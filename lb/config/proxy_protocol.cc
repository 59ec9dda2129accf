// [listeners.NAME] accept_proxy_protocol, trusted and proxy_protocol_timeout: who may put a
// PROXY protocol header in front of a connection, and how long weir waits for it.
#include <algorithm>

#include "config/readers.h"

namespace weir::config::detail {
namespace {

constexpr std::string_view kTrustedExample =
    "trusted = [\"10.0.0.0/8\"], or [\"0.0.0.0/0\", \"::/0\"] to trust anyone";

}  // namespace

void readProxyProtocol(const Section& section, Listener& listener) {
  const toml::node* accept_node = section.get("accept_proxy_protocol");
  const std::optional<bool> accept = section.boolean("accept_proxy_protocol");
  if (accept) {
    listener.accept_proxy_protocol = *accept;
  }
  const bool trusted_ok = readPrefixArray(section, "trusted", listener.trusted);
  const auto timeout = section.duration("proxy_protocol_timeout", kMaxDuration);
  if (timeout) {
    listener.proxy_protocol_timeout = *timeout;
  }
  if (accept_node != nullptr && !accept) {
    return;  // recorded above; whether the other keys belong is unknown
  }
  const toml::node* trusted = section.get("trusted");
  if (listener.accept_proxy_protocol) {
    // With elements that are all wrong, those are what to fix.
    if (trusted == nullptr || (trusted->is_array() && trusted->as_array()->empty())) {
      section.problem(*accept_node, "accept_proxy_protocol",
                      "needs the addresses of the balancers allowed to send a PROXY header "
                      "in trusted, e.g. " + std::string(kTrustedExample));
    }
    return;
  }
  if (trusted != nullptr && trusted_ok) {
    section.problem(*trusted, "trusted",
                    "only used with accept_proxy_protocol = true (it lists the peers allowed "
                    "to send a PROXY header)");
  }
  if (timeout) {
    section.problem(*section.get("proxy_protocol_timeout"), "proxy_protocol_timeout",
                    "only used with accept_proxy_protocol = true (it bounds the wait for a "
                    "PROXY header)");
  }
}

}  // namespace weir::config::detail
