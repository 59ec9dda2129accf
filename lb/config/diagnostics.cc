#include "config/diagnostics.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "config/config.h"

namespace weir::config::detail {
namespace {

// Levenshtein distance that also counts a swap of two neighbours as one edit ("bnid" is one
// edit from "bind"), which is the typo people actually make.
size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) {
    d[i][0] = i;
  }
  for (size_t j = 0; j <= b.size(); ++j) {
    d[0][j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

template <typename Range>
std::string closest(std::string_view word, const Range& candidates) {
  constexpr size_t kMaxDistance = 2;
  // The distance table is |word| x |candidate|: nobody mistypes a name this long, and a
  // config holding one must not cost gigabytes to reject.
  constexpr size_t kMaxWord = 256;
  if (word.size() > kMaxWord) {
    return "";
  }
  std::string_view best;
  size_t best_distance = kMaxDistance + 1;
  for (std::string_view candidate : candidates) {
    const size_t apart = candidate.size() > word.size() ? candidate.size() - word.size()
                                                        : word.size() - candidate.size();
    if (apart > kMaxDistance) {
      continue;  // at least that many edits apart
    }
    size_t distance = editDistance(word, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  if (best_distance > kMaxDistance) {
    return "";
  }
  return "; did you mean " + quote(best) + "?";
}

// Appends `c`, or its escape if it is a control character: \n, \t or \u00XX as TOML writes them.
void appendEscaped(std::string& out, char c) {
  if (c == '\n') {
    out += "\\n";
  } else if (c == '\t') {
    out += "\\t";
  } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned char>(c));
    out += buf;
  } else {
    out += c;
  }
}

}  // namespace

std::string Diagnostics::where(const toml::source_position& at, std::string_view path) const {
  std::string text = file_ + ":" + std::to_string(at.line) + ":" + std::to_string(at.column);
  if (!path.empty()) {
    text.append(": ").append(path);
  }
  return text;
}

void Diagnostics::add(const toml::source_position& at, std::string_view path,
                      std::string_view what) {
  std::string text = where(at, path) + ": ";
  text.append(what);
  problems_.push_back({at.line, at.column, std::move(text)});
}

void Diagnostics::throwIfAny() const {
  if (problems_.empty()) {
    return;
  }
  std::vector<Problem> sorted = problems_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Problem& a, const Problem& b) {
    return a.line != b.line ? a.line < b.line : a.column < b.column;
  });
  std::vector<std::string> messages;
  messages.reserve(sorted.size());
  for (auto& problem : sorted) {
    messages.push_back(std::move(problem.text));
  }
  throw ConfigError(std::move(messages));
}

std::string quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    appendEscaped(out, c);
  }
  out += '"';
  return out;
}

std::string escapeControls(std::string_view text) {
  std::string out;
  for (char c : text) {
    appendEscaped(out, c);
  }
  return out;
}

std::string describe(const toml::node& node) {
  if (auto* s = node.as_string()) {
    return quote(s->get());
  }
  if (node.is_table()) {
    return "a table";
  }
  if (node.is_array()) {
    return "an array";
  }
  // Numbers, booleans, dates and times: toml++ prints them as they would be written.
  std::ostringstream out;
  node.visit([&out](const auto& value) { out << value; });
  return out.str();
}

bool isPlainName(std::string_view name) {
  if (name.empty()) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
  });
}

std::string joinPath(std::string_view parent, std::string_view key) {
  std::string out(parent);
  if (!out.empty()) {
    out += '.';
  }
  if (isPlainName(key)) {
    out.append(key);
  } else {
    out += quote(key);
  }
  return out;
}

std::string didYouMean(std::string_view word, std::initializer_list<std::string_view> candidates) {
  return closest(word, candidates);
}

std::string didYouMean(std::string_view word, const std::vector<std::string>& candidates) {
  return closest(word, candidates);
}

}  // namespace weir::config::detail
