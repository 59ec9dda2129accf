#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

namespace weir::config::detail {

// Collects every problem found while validating one file, so that the operator sees all of
// them at once, in file order, instead of fixing one per restart.
class Diagnostics {
public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}

  // Records "FILE:LINE:COL: path: what". An empty path omits the "path: " part.
  void add(const toml::source_position& at, std::string_view path, std::string_view what);
  void add(const toml::node& at, std::string_view path, std::string_view what) {
    add(at.source().begin, path, what);
  }

  bool empty() const { return problems_.empty(); }

  // The config file's name as the messages give it.
  const std::string& file() const { return file_; }
  // "FILE:LINE:COL: path", the start of a message about `at` (see FileRef::where).
  std::string where(const toml::source_position& at, std::string_view path) const;

  // Throws ConfigError holding every problem ordered by line and column (problems at the same
  // position keep the order they were added in). Returns if there are none.
  void throwIfAny() const;

private:
  struct Problem {
    uint32_t line;
    uint32_t column;
    std::string text;
  };

  std::string file_;
  std::vector<Problem> problems_;
};

// `text` as a double-quoted TOML basic string: "a\"b".
std::string quote(std::string_view text);

// `text` with its control characters written as escapes (\n, \t, \u0001) and nothing else
// changed, so that it fits in one line of an error message.
std::string escapeControls(std::string_view text);

// A node as it should appear after "got ": "many", 3, true, a table, an array.
std::string describe(const toml::node& node);

// True if `name` matches [A-Za-z0-9_-]+ (listener and pool names, bare TOML keys).
bool isPlainName(std::string_view name);

// "parent.key", quoting `key` unless it is a plain name; just `key` if parent is empty.
std::string joinPath(std::string_view parent, std::string_view key);

// "; did you mean \"x\"?" for the candidate closest to `word` within edit distance 2,
// or "" if none is that close.
std::string didYouMean(std::string_view word, std::initializer_list<std::string_view> candidates);
std::string didYouMean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace weir::config::detail
