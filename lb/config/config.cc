#include "config/config.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include <toml++/toml.h>

#include "config/readers.h"
#include "config/toml_guard.h"

namespace weir::config {
namespace {

using detail::Diagnostics;
using detail::Section;

std::string joinLines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) {
    if (!out.empty()) {
      out += '\n';
    }
    out += line;
  }
  return out;
}

unsigned onlineCpus() {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) {
    return 1;  // sysconf failed; one worker still serves
  }
  return static_cast<unsigned>(std::min<long>(n, kMaxWorkers));
}

// Calls f(section, name) for each table under root[kind] ("listeners" -> [listeners.NAME]),
// after checking that root[kind] is a table of tables with valid names.
template <typename F>
void forEachNamed(const toml::table& root, std::string_view kind, Diagnostics& diag, F&& f) {
  const toml::node* node = root.get(kind);
  if (node == nullptr) {
    return;
  }
  auto* tables = node->as_table();
  if (tables == nullptr) {
    diag.add(*node, kind,
             "expected tables such as [" + std::string(kind) + ".NAME], got " +
                 detail::describe(*node));
    return;
  }
  for (auto&& [key, value] : *tables) {
    std::string path = detail::joinPath(kind, key.str());
    auto* table = value.as_table();
    if (table == nullptr) {
      diag.add(value, path, "expected a table, got " + detail::describe(value));
      continue;
    }
    if (!detail::isPlainName(key.str())) {
      diag.add(value, path, "a name may only contain letters, digits, '_' and '-'");
    }
    f(Section(*table, path, diag), std::string(key.str()));
  }
}

detail::PoolNames poolNames(const toml::table& root) {
  detail::PoolNames names;
  if (auto* pools = root["pools"].as_table()) {
    for (auto&& [key, value] : *pools) {
      names.all.emplace_back(key.str());
      if (auto* pool = value.as_table(); pool != nullptr && pool->contains("tls")) {
        names.with_tls.emplace_back(key.str());
      }
    }
  }
  return names;
}

bool hasListeners(const toml::table& root) {
  const toml::node* node = root.get("listeners");
  // A "listeners" that is not a table is reported as a type error instead.
  return node != nullptr && !(node->is_table() && node->as_table()->empty());
}

template <typename T>
void sortByName(std::vector<T>& items) {
  std::sort(items.begin(), items.end(),
            [](const T& a, const T& b) { return a.name < b.name; });
}

Config build(const toml::table& root, const std::string& path, uint32_t euid) {
  Diagnostics diag(path);
  Config config;
  config.path = path;
  Section(root, "", diag).checkKeys({"global", "listeners", "pools"});

  if (const toml::node* node = root.get("global")) {
    if (auto* table = node->as_table()) {
      detail::readGlobal(Section(*table, "global", diag), config.global);
    } else {
      diag.add(*node, "global", "expected a table, got " + detail::describe(*node));
    }
  }
  detail::defaultUser(root, euid, config.global, diag);
  if (config.global.workers_auto) {
    config.global.workers = onlineCpus();
  }

  forEachNamed(root, "pools", diag, [&](const Section& section, const std::string& name) {
    config.pools.push_back(detail::readPool(section, name));
  });

  detail::PoolNames pool_names = poolNames(root);
  std::vector<detail::BindSite> binds;
  forEachNamed(root, "listeners", diag, [&](const Section& section, const std::string& name) {
    config.listeners.push_back(detail::readListener(section, name, pool_names, binds));
  });
  if (!hasListeners(root)) {
    diag.add(toml::source_position{1, 1}, "listeners",
             "no listeners defined; add a [listeners.NAME] table");
  }
  detail::checkBindOverlaps(std::move(binds), diag);
  diag.throwIfAny();

  sortByName(config.pools);
  sortByName(config.listeners);
  // Dangling references were reported above, so every pool a listener names exists.
  auto indexOf = [&pools = config.pools](const std::string& name) {
    auto pool = std::lower_bound(pools.begin(), pools.end(), name,
                                 [](const Pool& p, const std::string& n) { return p.name < n; });
    return static_cast<size_t>(pool - pools.begin());
  };
  for (auto& listener : config.listeners) {
    listener.pool_index = indexOf(listener.pool);
    sortByName(listener.sni);
    for (auto& route : listener.sni) {
      route.pool_index = indexOf(route.pool);
    }
  }
  return config;
}

toml::table parseToml(std::string_view text, const std::string& path) {
  if (auto hazard = detail::findTomlHazard(text)) {
    throw ConfigError({path + ":" + std::to_string(hazard->line) + ":" +
                       std::to_string(hazard->column) + ": syntax error: " + hazard->what});
  }
  try {
    return toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    const auto& at = e.source().begin;
    throw ConfigError({path + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) +
                       ": syntax error: " + detail::escapeControls(e.description())});
  }
}

std::string readFile(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) {
    throw ConfigError({path + ": cannot open: " + std::strerror(errno)});
  }
  std::string text;
  char buf[16384];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), file.get())) > 0) {
    text.append(buf, n);
  }
  if (std::ferror(file.get())) {
    throw ConfigError({path + ": cannot read: " + std::strerror(errno)});
  }
  return text;
}

}  // namespace

ConfigError::ConfigError(std::vector<std::string> messages)
    : std::runtime_error(joinLines(messages)), messages_(std::move(messages)) {}

Config parse(std::string_view text, const std::string& path) {
  return parse(text, path, static_cast<uint32_t>(::geteuid()));
}

Config parse(std::string_view text, const std::string& path, uint32_t euid) {
  return build(parseToml(text, path), path, euid);
}

Config load(const std::string& path) { return load(path, static_cast<uint32_t>(::geteuid())); }

Config load(const std::string& path, uint32_t euid) {
  Config cfg = parse(readFile(path), path, euid);
  if (std::vector<std::string> problems = detail::readAccessFiles(cfg); !problems.empty()) {
    throw ConfigError(std::move(problems));
  }
  return cfg;
}

std::string controlSocketOf(const std::string& path) {
  const toml::table root = parseToml(readFile(path), path);
  Diagnostics diag(path);
  Global global;
  if (const toml::table* table = root["global"].as_table()) {
    detail::readControlSocket(Section(*table, "global", diag), global);
  }
  diag.throwIfAny();
  return global.control_socket;
}

}  // namespace weir::config
