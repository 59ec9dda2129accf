#include "config/readers.h"

#include <grp.h>
#include <pwd.h>

#include <vector>

namespace weir::config::detail {
namespace {

void readWorkers(const Section& section, Global& global) {
  const toml::node* node = section.get("workers");
  if (node == nullptr) {
    return;  // "auto"
  }
  if (auto* text = node->as_string(); text != nullptr && text->get() == "auto") {
    global.workers_auto = true;
    return;
  }
  if (auto* number = node->as_integer();
      number != nullptr && number->get() >= 1 && number->get() <= kMaxWorkers) {
    global.workers = static_cast<unsigned>(number->get());
    global.workers_auto = false;
    return;
  }
  section.problem(*node, "workers",
                  "expected \"auto\" or an integer 1.." + std::to_string(kMaxWorkers) +
                      ", got " + describe(*node));
}

// A log target: "stderr", "off" (if allowed) or a file path, which must not be empty.
void readLogTarget(const Section& section, std::string_view key, std::string_view expected,
                   std::string& out) {
  auto value = section.string(key, expected);
  if (!value) {
    return;
  }
  if (value->empty()) {
    section.problem(*section.get(key), key, "expected " + std::string(expected) + ", got \"\"");
    return;
  }
  out = *value;
}

// A decimal number that fits a uid_t/gid_t, for users and groups given by id.
std::optional<uint32_t> numericId(const std::string& text) {
  if (text.empty() || text.size() > 10 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  uint64_t value = std::stoull(text);
  if (value >= 0xffffffffu) {
    return std::nullopt;  // (uid_t)-1 means "unchanged" to setuid and friends
  }
  return static_cast<uint32_t>(value);
}

// Looks `name` up in the user database (getpwnam_r), or takes it as a numeric uid.
// Sets *primary_gid when the user exists in the database.
std::optional<uint32_t> lookUpUser(const std::string& name, std::optional<uint32_t>* primary_gid) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    *primary_gid = found->pw_gid;
    return found->pw_uid;
  }
  return numericId(name);
}

std::optional<uint32_t> lookUpGroup(const std::string& name) {
  std::vector<char> buf(16384);
  group gr{};
  group* found = nullptr;
  if (::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    return found->gr_gid;
  }
  return numericId(name);
}

// [global] user and group: names (or numeric ids) resolved now, so that a typo fails the
// config check instead of a worker at run time.
void readCredentials(const Section& section, Global& global) {
  std::optional<uint32_t> primary_gid;
  if (auto user = section.string("user", "a user name or uid")) {
    if (user->empty()) {
      section.problem(*section.get("user"), "user", "expected a user name or uid, got \"\"");
    } else if (auto uid = lookUpUser(*user, &primary_gid)) {
      global.user = *user;
      global.uid = uid;
    } else {
      section.problem(*section.get("user"), "user", "no such user " + quote(*user));
    }
  }
  if (auto name = section.string("group", "a group name or gid")) {
    if (name->empty()) {
      section.problem(*section.get("group"), "group", "expected a group name or gid, got \"\"");
    } else if (auto gid = lookUpGroup(*name)) {
      global.group = *name;
      global.gid = gid;
    } else {
      section.problem(*section.get("group"), "group", "no such group " + quote(*name));
    }
  } else if (global.uid && primary_gid) {
    global.gid = primary_gid;
  } else if (global.uid && *global.uid != 0) {
    // A bare uid with no entry in the user database has no primary group: the children would
    // keep the master's group (root's).
    section.problem(*section.get("user"), "user",
                    "user \"" + global.user + "\" has no entry in the user database, so it has "
                    "no primary group; set group as well");
  }
}

// The mark and routing table of weir-netsetup's policy rule for transparent sockets. Mark 0 is
// what every unmarked packet carries. Tables 253..255 are the kernel's own ("default", "main",
// "local"), which the host's own traffic goes through: the "deliver here" default route
// weir-netsetup puts in its table would capture all of it there.
void readTransparent(const Section& section, Global& global) {
  if (auto mark = section.integer("transparent_mark", 1, 0xffffffff)) {
    global.transparent_mark = static_cast<uint32_t>(*mark);
  }
  auto table = section.integer("transparent_table", 1, 2147483647);
  if (!table) {
    return;
  }
  if (*table >= 253 && *table <= 255) {
    constexpr const char* kNames[] = {"default", "main", "local"};
    section.problem(*section.get("transparent_table"), "transparent_table",
                    std::to_string(*table) + " is the kernel's \"" + kNames[*table - 253] +
                        "\" table, which the host's own traffic uses (253..255 are reserved): "
                        "weir-netsetup's \"deliver here\" default route there would capture "
                        "all of it; pick a table of weir's own, such as 7765 (the default)");
    return;
  }
  global.transparent_table = static_cast<uint32_t>(*table);
}

}  // namespace

void defaultUser(const toml::table& root, uint32_t euid, Global& global, Diagnostics& diag) {
  const toml::node* table = root.get("global");
  if (euid != 0 || (table != nullptr && table->as_table() != nullptr &&
                    table->as_table()->contains("user"))) {
    return;  // not root, or the file names a user (a bad one is reported by readCredentials)
  }
  for (const char* name : {"weir", "nobody"}) {
    std::vector<char> buf(16384);
    passwd pw{};
    passwd* found = nullptr;
    if (::getpwnam_r(name, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
      global.user = name;
      global.uid = found->pw_uid;
      if (!global.gid) {
        global.gid = found->pw_gid;
      }
      global.user_default = true;
      return;
    }
  }
  diag.add(table != nullptr ? table->source().begin : toml::source_position{1, 1}, "global.user",
           "not set, and neither user \"weir\" nor \"nobody\" exists to run the workers as "
           "(the master runs as root); create one of them or set user (\"root\" keeps the "
           "workers root)");
}

// metrics = "IP:PORT" ("[IPv6]:PORT"), or "" for off.
void readMetrics(const Section& section, Global& global) {
  const toml::node* node = section.get("metrics");
  if (node == nullptr) {
    return;
  }
  if (const auto* text = node->as_string(); text != nullptr && text->get().empty()) {
    return;
  }
  global.metrics = readAddress(*node, section.pathOf("metrics"), section.diag());
}

void readGlobal(const Section& section, Global& global) {
  section.checkKeys({"workers", "log_level", "error_log", "access_log", "pid_file",
                     "max_connections", "steering", "drain_timeout", "user", "group",
                     "worker_cpu_affinity", "worker_rlimit_nofile", "transparent_mark",
                     "transparent_table", "metrics"});
  readWorkers(section, global);

  const std::initializer_list<std::string_view> levels = {
      "trace", "debug", "info", "warn", "error", "critical", "off"};
  if (auto level = section.oneOf("log_level", levels)) {
    global.log_level = levels.begin()[*level];
  }
  readLogTarget(section, "error_log", "\"stderr\" or a file path", global.error_log);
  readLogTarget(section, "access_log", "\"off\", \"stderr\" or a file path", global.access_log);
  if (auto pid_file = section.string("pid_file", "a file path, or \"\" for none")) {
    global.pid_file = *pid_file;
  }
  if (auto max = section.integer("max_connections", 1, 1000000)) {
    global.max_connections = static_cast<uint32_t>(*max);
  }
  constexpr Steering kSteerings[] = {Steering::LeastLoaded, Steering::RoundRobin, Steering::Hash};
  if (auto steering = section.oneOf("steering", {"least-loaded", "round-robin", "hash"})) {
    global.steering = kSteerings[*steering];
  }
  if (auto drain = section.duration("drain_timeout", kMaxDuration)) {
    global.drain_timeout = *drain;
  }
  readCredentials(section, global);
  if (auto affinity = section.oneOf("worker_cpu_affinity", {"auto", "off"})) {
    global.worker_cpu_affinity = *affinity == 0;
  }
  // fs.nr_open caps RLIMIT_NOFILE at 1073741816 on every kernel weir runs on.
  if (auto nofile = section.integer("worker_rlimit_nofile", 64, 1073741816)) {
    global.worker_rlimit_nofile = static_cast<uint64_t>(*nofile);
  }
  readTransparent(section, global);
  readMetrics(section, global);
}

}  // namespace weir::config::detail
