#include "config/section.h"

#include <algorithm>

#include "config/readers.h"

namespace weir::config::detail {
namespace {

// "\"a\"", "\"a\" or \"b\"", "\"a\", \"b\" or \"c\"".
std::string listChoices(std::initializer_list<std::string_view> choices) {
  std::string out;
  size_t i = 0;
  for (std::string_view choice : choices) {
    if (i > 0) {
      out += i + 1 == choices.size() ? " or " : ", ";
    }
    out += quote(choice);
    ++i;
  }
  return out;
}

std::string range(int64_t lo, int64_t hi) {
  return std::to_string(lo) + ".." + std::to_string(hi);
}

}  // namespace

void Section::problem(const toml::node& value, std::string_view key, std::string_view what) const {
  diag_.add(value, pathOf(key), what);
}

void Section::missing(std::string_view key) const {
  diag_.add(table_, path_, "missing required key " + quote(key));
}

void Section::checkKeys(std::initializer_list<std::string_view> known) const {
  for (auto&& [key, value] : table_) {
    bool found = false;
    for (std::string_view k : known) {
      found = found || k == key.str();
    }
    if (!found) {
      problem(value, key.str(), "unknown key" + didYouMean(key.str(), known));
    }
  }
}

std::optional<int64_t> Section::integer(std::string_view key, int64_t lo, int64_t hi) const {
  const toml::node* node = get(key);
  if (node == nullptr) {
    return std::nullopt;
  }
  auto* value = node->as_integer();
  if (value == nullptr) {
    problem(*node, key, "expected an integer " + range(lo, hi) + ", got " + describe(*node));
    return std::nullopt;
  }
  if (value->get() < lo || value->get() > hi) {
    problem(*node, key, "must be " + range(lo, hi) + ", got " + describe(*node));
    return std::nullopt;
  }
  return value->get();
}

std::optional<std::string> Section::string(std::string_view key,
                                           std::string_view expected) const {
  const toml::node* node = get(key);
  if (node == nullptr) {
    return std::nullopt;
  }
  auto* value = node->as_string();
  if (value == nullptr) {
    problem(*node, key, "expected " + std::string(expected) + ", got " + describe(*node));
    return std::nullopt;
  }
  return value->get();
}

std::optional<size_t> Section::oneOf(std::string_view key,
                                     std::initializer_list<std::string_view> choices) const {
  const toml::node* node = get(key);
  if (node == nullptr) {
    return std::nullopt;
  }
  if (auto* value = node->as_string()) {
    size_t i = 0;
    for (std::string_view choice : choices) {
      if (choice == value->get()) {
        return i;
      }
      ++i;
    }
  }
  std::string what = "expected " + listChoices(choices) + ", got " + describe(*node);
  if (auto* value = node->as_string()) {
    what += didYouMean(value->get(), choices);
  }
  problem(*node, key, what);
  return std::nullopt;
}

std::optional<bool> Section::boolean(std::string_view key) const {
  const toml::node* node = get(key);
  if (node == nullptr) {
    return std::nullopt;
  }
  auto* value = node->as_boolean();
  if (value == nullptr) {
    problem(*node, key, "expected true or false, got " + describe(*node));
    return std::nullopt;
  }
  return value->get();
}

std::optional<Section> Section::subtable(std::string_view key) const {
  const toml::node* node = get(key);
  if (node == nullptr) {
    return std::nullopt;
  }
  if (const auto* table = node->as_table()) {
    return Section(*table, pathOf(key), diag_);
  }
  problem(*node, key,
          "expected a table such as [" + pathOf(key) + "], got " + describe(*node));
  return std::nullopt;
}

std::optional<Duration> Section::duration(std::string_view key, Duration max,
                                          bool allow_zero) const {
  const toml::node* node = get(key);
  if (node == nullptr) {
    return std::nullopt;
  }
  std::optional<Duration> parsed;
  if (auto* value = node->as_string()) {
    parsed = parseDuration(value->get());
  }
  if (!parsed) {
    problem(*node, key, "expected a duration such as \"3s\", got " + describe(*node));
    return std::nullopt;
  }
  if (parsed->count() < 0 || (parsed->count() == 0 && !allow_zero)) {
    problem(*node, key, "must be greater than 0, got " + describe(*node));
    return std::nullopt;
  }
  if (*parsed > max) {
    problem(*node, key,
            "must be at most " + quote(formatDuration(max)) + ", got " + describe(*node));
    return std::nullopt;
  }
  return parsed;
}

std::optional<net::SockAddr> readAddress(const toml::node& value, const std::string& path,
                                         Diagnostics& diag) {
  auto* text = value.as_string();
  if (text == nullptr) {
    diag.add(value, path, "expected \"IP:PORT\", got " + describe(value));
    return std::nullopt;
  }
  const std::string& s = text->get();
  auto addr = net::SockAddr::parse(s);
  if (!addr) {
    std::string what = quote(s) + " is not IP:PORT";
    bool bare_v6 = s.find('[') == std::string::npos && s.find(':') != s.rfind(':');
    if (bare_v6) {
      what += " (write IPv6 addresses in brackets, e.g. \"[::1]:80\")";
    }
    diag.add(value, path, what);
    return std::nullopt;
  }
  if (addr->port() == 0) {
    diag.add(value, path, quote(s) + ": port 0 is not allowed");
    return std::nullopt;
  }
  return addr;
}

std::optional<FileRef> readFilePath(const Section& section, std::string_view key) {
  auto text = section.string(key, "a file path");
  if (!text) {
    return std::nullopt;
  }
  const toml::node& node = *section.get(key);
  if (text->empty()) {
    section.problem(node, key, "expected a file path, got \"\"");
    return std::nullopt;
  }
  // Paths end up in one-line messages (and a NUL would cut them short for open()).
  if (std::any_of(text->begin(), text->end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
      })) {
    section.problem(node, key, quote(*text) + ": a file path cannot hold control characters");
    return std::nullopt;
  }
  return FileRef{resolvePath(section.diag().file(), *text),
                 section.diag().where(node.source().begin, section.pathOf(key))};
}

}  // namespace weir::config::detail
