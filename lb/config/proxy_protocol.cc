// [listeners.NAME] accept_proxy_protocol, trusted and proxy_protocol_timeout: who may put a
// PROXY protocol header in front of a connection, and how long weir waits for it.
#include <algorithm>

#include "config/readers.h"

namespace weir::config::detail {
namespace {

constexpr std::string_view kTrustedExample =
    "trusted = [\"10.0.0.0/8\"], or [\"0.0.0.0/0\", \"::/0\"] to trust anyone";

// Reads `trusted` into `out`, leaving out (and recording) each wrong or repeated element.
// Returns false if `trusted` itself is not an array (the problem is recorded at it).
bool readTrusted(const Section& section, std::vector<net::Cidr>& out) {
  const toml::node* node = section.get("trusted");
  if (node == nullptr) {
    return true;
  }
  auto* array = node->as_array();
  if (array == nullptr) {
    section.problem(*node, "trusted",
                    "expected an array of addresses or prefixes such as [\"10.0.0.0/8\", "
                    "\"2001:db8::/32\"], got " + describe(*node));
    return false;
  }
  std::vector<size_t> index_of;  // out[k] came from trusted[index_of[k]]
  for (size_t i = 0; i < array->size(); ++i) {
    const toml::node& item = *array->get(i);
    std::string path = section.pathOf("trusted") + "[" + std::to_string(i) + "]";
    auto* text = item.as_string();
    if (text == nullptr) {
      section.diag().add(item, path,
                         "expected an address or prefix such as \"10.0.0.0/8\", got " +
                             describe(item));
      continue;
    }
    std::string error;
    auto cidr = net::Cidr::parse(text->get(), error);
    if (!cidr) {
      section.diag().add(item, path, quote(text->get()) + ": " + error);
      continue;
    }
    auto earlier = std::find(out.begin(), out.end(), *cidr);
    if (earlier != out.end()) {
      const size_t k = static_cast<size_t>(earlier - out.begin());
      std::string what =
          quote(text->get()) + " is already listed as trusted[" + std::to_string(index_of[k]) + "]";
      const std::string& written = array->get(index_of[k])->as_string()->get();
      if (written != text->get()) {
        what += " (as " + quote(written) + ")";
      }
      section.diag().add(item, path, what);
      continue;
    }
    out.push_back(*cidr);
    index_of.push_back(i);
  }
  return true;
}

}  // namespace

void readProxyProtocol(const Section& section, Listener& listener) {
  const toml::node* accept_node = section.get("accept_proxy_protocol");
  const std::optional<bool> accept = section.boolean("accept_proxy_protocol");
  if (accept) {
    listener.accept_proxy_protocol = *accept;
  }
  const bool trusted_ok = readTrusted(section, listener.trusted);
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
