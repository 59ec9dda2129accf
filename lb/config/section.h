#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include <toml++/toml.h>

#include "config/config.h"
#include "config/diagnostics.h"

namespace weir::config::detail {

// One TOML table being read: its key path ("pools.web") and where problems go. The typed
// readers below return nullopt both when the key is absent (the caller keeps its default) and
// when the value is wrong (the problem is recorded at the value's position).
class Section {
public:
  Section(const toml::table& table, std::string path, Diagnostics& diag)
      : table_(table), path_(std::move(path)), diag_(diag) {}

  const toml::table& table() const { return table_; }
  const std::string& path() const { return path_; }
  Diagnostics& diag() const { return diag_; }
  const toml::node* get(std::string_view key) const { return table_.get(key); }
  std::string pathOf(std::string_view key) const { return joinPath(path_, key); }

  // Records a problem about the value of `key`, at that value.
  void problem(const toml::node& value, std::string_view key, std::string_view what) const;
  // Records a missing required key, at this table.
  void missing(std::string_view key) const;
  // Records every key not in `known` as unknown, with a hint when a known key is close.
  void checkKeys(std::initializer_list<std::string_view> known) const;

  // An integer lo..hi.
  std::optional<int64_t> integer(std::string_view key, int64_t lo, int64_t hi) const;
  // Any string; `expected` describes a valid value ("a file path").
  std::optional<std::string> string(std::string_view key, std::string_view expected) const;
  // A string that is one of `choices`; returns its index.
  std::optional<size_t> oneOf(std::string_view key,
                              std::initializer_list<std::string_view> choices) const;
  // true or false.
  std::optional<bool> boolean(std::string_view key) const;
  // A duration string greater than zero (or zero, with `allow_zero`) and at most `max` (see
  // parseDuration). The bound keeps every deadline weir computes from it (now + duration) far
  // from int64 overflow.
  std::optional<Duration> duration(std::string_view key, Duration max,
                                   bool allow_zero = false) const;
  // The subtable at `key` ([path.key]) as a Section, or nullopt: absent (nothing recorded)
  // or not a table (a problem recorded).
  std::optional<Section> subtable(std::string_view key) const;

private:
  const toml::table& table_;
  std::string path_;
  Diagnostics& diag_;
};

// Parses an "IP:PORT" value with a non-zero port; records a problem under `path` otherwise.
std::optional<net::SockAddr> readAddress(const toml::node& value, const std::string& path,
                                         Diagnostics& diag);

// A file path value (non-empty, no control characters), resolved against the config file's
// directory (resolvePath) and never opened, with where the config wrote it; nullopt if
// absent or wrong (the problem recorded).
std::optional<FileRef> readFilePath(const Section& section, std::string_view key);

}  // namespace weir::config::detail
