#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace weir::tls {

// Server name -> index, for routing a passthrough connection by SNI ([listeners.NAME.sni]) and
// for picking a certificate by name. A name is exact ("api.example.com") or a wildcard of one
// leftmost label ("*.example.com": "a.example.com" matches, "example.com" and
// "a.b.example.com" do not). Exact names win over wildcards. Immutable once built, so workers
// share it without locks.
class SniTable {
public:
  struct Entry {
    std::string name;  // compared without case; a trailing dot is dropped
    size_t index = 0;  // what lookup returns for it
  };

  SniTable() = default;
  // When a name appears twice, the first entry wins (the first certificate is the default).
  explicit SniTable(std::vector<Entry> entries);
  // Route i of `routes` maps to index i.
  explicit SniTable(const std::vector<config::SniRoute>& routes);

  // The index for `server_name` (any case, a trailing dot ignored), or nullopt when no name
  // matches or it is empty or longer than 255 bytes. O(log n); allocates nothing.
  std::optional<size_t> lookup(std::string_view server_name) const;

  size_t size() const { return exact_.size() + wildcard_.size(); }

private:
  std::vector<Entry> exact_;     // sorted by name
  std::vector<Entry> wildcard_;  // "*.example.com" kept as "example.com", sorted by name
};

}  // namespace weir::tls
