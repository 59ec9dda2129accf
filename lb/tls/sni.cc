#include "tls/sni.h"

#include <algorithm>

namespace weir::tls {
namespace {

constexpr size_t kMaxName = 255;

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string_view dropTrailingDot(std::string_view name) {
  if (!name.empty() && name.back() == '.') {
    name.remove_suffix(1);
  }
  return name;
}

// Sorted by name; among equal names the earliest entry comes first (stable) and is the one kept.
void sortUnique(std::vector<SniTable::Entry>& names) {
  std::stable_sort(names.begin(), names.end(),
                   [](const auto& a, const auto& b) { return a.name < b.name; });
  auto last = std::unique(names.begin(), names.end(),
                          [](const auto& a, const auto& b) { return a.name == b.name; });
  names.erase(last, names.end());
}

std::optional<size_t> find(const std::vector<SniTable::Entry>& names, std::string_view key) {
  auto it = std::lower_bound(
      names.begin(), names.end(), key,
      [](const SniTable::Entry& e, std::string_view k) { return e.name < k; });
  if (it == names.end() || it->name != key) {
    return std::nullopt;
  }
  return it->index;
}

std::vector<SniTable::Entry> entriesOf(const std::vector<config::SniRoute>& routes) {
  std::vector<SniTable::Entry> entries;
  entries.reserve(routes.size());
  for (size_t i = 0; i < routes.size(); ++i) {
    entries.push_back({routes[i].name, i});
  }
  return entries;
}

}  // namespace

SniTable::SniTable(std::vector<Entry> entries) {
  for (Entry& e : entries) {
    std::string name(dropTrailingDot(e.name));
    std::transform(name.begin(), name.end(), name.begin(), lower);
    if (name.size() > 2 && name.starts_with("*.")) {
      wildcard_.push_back({name.substr(2), e.index});
    } else {
      exact_.push_back({std::move(name), e.index});
    }
  }
  sortUnique(exact_);
  sortUnique(wildcard_);
}

SniTable::SniTable(const std::vector<config::SniRoute>& routes)
    : SniTable(entriesOf(routes)) {}

std::optional<size_t> SniTable::lookup(std::string_view server_name) const {
  server_name = dropTrailingDot(server_name);
  if (server_name.empty() || server_name.size() > kMaxName) {
    return std::nullopt;
  }
  char buf[kMaxName];
  std::transform(server_name.begin(), server_name.end(), buf, lower);
  const std::string_view name(buf, server_name.size());
  if (auto exact = find(exact_, name)) {
    return exact;
  }
  // The wildcard stands for the whole first label, which must not be empty.
  const size_t dot = name.find('.');
  if (dot == 0 || dot == std::string_view::npos || dot + 1 == name.size()) {
    return std::nullopt;
  }
  return find(wildcard_, name.substr(dot + 1));
}

}  // namespace weir::tls
