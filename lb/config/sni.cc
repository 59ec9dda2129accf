// Server names: [listeners.NAME.sni] routes and the host names TLS keys take.
#include <algorithm>

#include "config/readers.h"

namespace weir::config::detail {
namespace {

constexpr size_t kMaxHostName = 253;  // RFC 1035 2.3.4, without the trailing dot
constexpr size_t kMaxLabel = 63;

// Underscores too: not in RFC 1123 host names, but common in internal names (and accepted by
// clients that send them as SNI), so a route must be able to name them.
bool isLabelChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

std::string lowerCase(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

// Why `name` (lower case) cannot be a route's name, or "" if it can.
std::string routeNameProblem(std::string_view name) {
  if (name == "*") {
    return "\"*\" alone is not a route; the listener's pool takes every name no route matches";
  }
  if (name.find('*') == std::string_view::npos) {
    return hostNameProblem(name);
  }
  if (name.substr(0, 2) != "*." || name.find('*', 1) != std::string_view::npos) {
    return "a wildcard must be a whole leftmost label, as in \"*.example.com\"";
  }
  std::string_view rest = name.substr(2);
  if (std::string problem = hostNameProblem(rest); !problem.empty()) {
    return problem;
  }
  if (rest.find('.') == std::string_view::npos) {
    return "a wildcard needs at least two labels after \"*.\" (\"*.example.com\", not "
           "\"*.com\")";
  }
  return "";
}

struct Route {
  SniRoute route;
  std::string path;  // listeners.NAME.sni."api.example.com"
  std::string written;  // the name as the file spells it
  toml::source_position at;  // of the name
};

}  // namespace

std::string hostNameProblem(std::string_view name) {
  if (name.empty()) {
    return "a host name must not be empty";
  }
  if (name.size() > kMaxHostName) {
    return "a host name has at most " + std::to_string(kMaxHostName) + " characters, got " +
           std::to_string(name.size());
  }
  size_t start = 0;
  while (true) {
    const size_t dot = name.find('.', start);
    std::string_view label = name.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty()) {
      return "empty label: a host name has no dot at its start or end, nor two in a row";
    }
    if (label.size() > kMaxLabel) {
      return "label " + quote(label) + " is longer than " + std::to_string(kMaxLabel) +
             " characters";
    }
    if (!std::all_of(label.begin(), label.end(), isLabelChar)) {
      return "label " + quote(label) + " may only hold letters, digits, '-' and '_'";
    }
    if (label.front() == '-' || label.back() == '-') {
      return "label " + quote(label) + " must not start or end with '-'";
    }
    if (dot == std::string_view::npos) {
      return "";
    }
    start = dot + 1;
  }
}

std::optional<std::string> readHostName(const Section& section, std::string_view key) {
  auto text = section.string(key, "a host name such as \"app.internal\"");
  if (!text) {
    return std::nullopt;
  }
  std::string name = lowerCase(*text);
  if (std::string problem = hostNameProblem(name); !problem.empty()) {
    section.problem(*section.get(key), key, quote(*text) + " is not a host name: " + problem);
    return std::nullopt;
  }
  return name;
}

std::vector<SniRoute> readSniRoutes(const Section& section,
                                    const std::vector<std::string>& pool_names) {
  std::vector<Route> routes;
  for (auto&& [key, value] : section.table()) {
    Route r;
    r.written = std::string(key.str());
    r.route.name = lowerCase(r.written);
    r.path = section.pathOf(r.written);
    r.at = key.source().begin;
    bool ok = true;
    if (std::string problem = routeNameProblem(r.route.name); !problem.empty()) {
      section.diag().add(r.at, r.path, problem);
      ok = false;
    }
    auto* pool = value.as_string();
    if (pool == nullptr) {
      section.diag().add(value, r.path, "expected a pool name, got " + describe(value));
      continue;
    }
    r.route.pool = pool->get();
    if (std::find(pool_names.begin(), pool_names.end(), r.route.pool) == pool_names.end()) {
      section.diag().add(value, r.path,
                         "no pool named " + quote(r.route.pool) +
                             didYouMean(r.route.pool, pool_names));
      ok = false;
    }
    if (ok) {
      routes.push_back(std::move(r));
    }
  }
  // toml++ iterates a table in key order; "already routed" must name the one written first.
  std::stable_sort(routes.begin(), routes.end(), [](const Route& a, const Route& b) {
    return a.at.line != b.at.line ? a.at.line < b.at.line : a.at.column < b.at.column;
  });
  std::vector<SniRoute> out;
  for (size_t i = 0; i < routes.size(); ++i) {
    const auto end = routes.begin() + static_cast<ptrdiff_t>(i);
    auto earlier = std::find_if(routes.begin(), end, [&](const Route& r) {
      return r.route.name == routes[i].route.name;
    });
    if (earlier != end) {
      section.diag().add(routes[i].at, routes[i].path,
                         "already routed as " + quote(earlier->written) + " (line " +
                             std::to_string(earlier->at.line) +
                             "); server names are not case-sensitive");
      continue;
    }
    out.push_back(routes[i].route);  // a copy: later routes compare against this one
  }
  return out;
}

}  // namespace weir::config::detail
