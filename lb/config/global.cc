#include "config/readers.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

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

// The table and protocol of announced VIP routes (listeners.NAME.announce). The kernel's own
// tables carry the host's traffic: a route through lo there would deliver the VIP locally for
// the host itself, and a host route in weir-netsetup's table would shadow its "deliver here"
// default. Protocols 0..4 mean unspec, redirect, kernel, boot and static to every routing daemon.
void readAnnounce(const Section& section, Global& global) {
  if (auto table = section.integer("announce_table", 1, 2147483647)) {
    if (*table >= 253 && *table <= 255) {
      section.problem(*section.get("announce_table"), "announce_table",
                      std::to_string(*table) + " is one of the kernel's own tables (253..255: "
                      "default, main, local), which carry this host's traffic; pick a table of "
                      "weir's own, such as 4747 (the default)");
    } else {
      global.announce_table = static_cast<uint32_t>(*table);
    }
  }
  if (auto protocol = section.integer("announce_protocol", 5, 255)) {
    global.announce_protocol = static_cast<uint32_t>(*protocol);
  }
  if (auto delay = section.duration("withdraw_delay", kMaxDuration, true)) {
    global.withdraw_delay = *delay;
  }
  if (global.announce_table == global.transparent_table) {
    const char* key = section.get("announce_table") != nullptr ? "announce_table"
                                                                : "transparent_table";
    const toml::node* node = section.get(key);
    if (node != nullptr) {
      section.problem(*node, key,
                      "announce_table and transparent_table are both " +
                          std::to_string(global.announce_table) +
                          ": announced VIP routes need a table of their own");
    }
  }
}

// A size as nginx writes one: a number of bytes, optionally followed by k, m or g (KiB, MiB,
// GiB; either case). nullopt: not that form, or more than 2^62 bytes.
std::optional<uint64_t> parseSize(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
    ++digits;
  }
  if (digits == 0 || digits > 19) {
    return std::nullopt;
  }
  unsigned shift = 0;
  if (digits + 1 == text.size()) {
    switch (text.back()) {
      case 'k':
      case 'K':
        shift = 10;
        break;
      case 'm':
      case 'M':
        shift = 20;
        break;
      case 'g':
      case 'G':
        shift = 30;
        break;
      default:
        return std::nullopt;
    }
  } else if (digits != text.size()) {
    return std::nullopt;
  }
  const uint64_t value = std::stoull(std::string(text.substr(0, digits)));
  constexpr uint64_t kMax = uint64_t{1} << 62;
  if (value > (kMax >> shift)) {
    return std::nullopt;
  }
  return value << shift;
}

// worker_rlimit_core: "unlimited", a size ("500M", "0") or a number of bytes.
void readCoreLimit(const Section& section, Global& global) {
  const toml::node* node = section.get("worker_rlimit_core");
  if (node == nullptr) {
    return;
  }
  if (auto* number = node->as_integer(); number != nullptr && number->get() >= 0) {
    global.worker_rlimit_core = static_cast<uint64_t>(number->get());
    return;
  }
  if (auto* text = node->as_string(); text != nullptr) {
    if (text->get() == "unlimited") {
      global.worker_rlimit_core = kUnlimitedCore;
      return;
    }
    if (auto bytes = parseSize(text->get())) {
      global.worker_rlimit_core = *bytes;
      return;
    }
  }
  section.problem(*node, "worker_rlimit_core",
                  "expected a size such as \"500M\" (bytes, or k, m, g), \"0\" or "
                  "\"unlimited\", got " + describe(*node));
}

// working_directory: checked now, so that `weir -t` reports a directory that is not there
// instead of every child at run time. Whether the children's user may enter it is theirs to
// find out (they log it).
void readWorkingDirectory(const Section& section, Global& global) {
  auto dir = section.string("working_directory", "an absolute directory path");
  if (!dir) {
    return;
  }
  const toml::node& node = *section.get("working_directory");
  if (dir->empty() || dir->front() != '/') {
    section.problem(node, "working_directory",
                    "expected an absolute directory path, got " + quote(*dir));
    return;
  }
  struct stat st {};
  if (::stat(dir->c_str(), &st) != 0) {
    section.problem(node, "working_directory", quote(*dir) + ": " + std::strerror(errno));
    return;
  }
  if (!S_ISDIR(st.st_mode)) {
    section.problem(node, "working_directory", quote(*dir) + " is not a directory");
    return;
  }
  global.working_directory = *dir;
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

void readControlSocket(const Section& section, Global& global) {
  constexpr std::string_view kExpected = "an absolute path, or \"\" for none";
  auto path = section.string("control_socket", kExpected);
  if (!path) {
    return;
  }
  const toml::node& value = *section.get("control_socket");
  if (!path->empty() && path->front() != '/') {
    section.problem(value, "control_socket",
                    "expected " + std::string(kExpected) + ", got a relative path");
  } else if (path->size() > kMaxControlSocketPath) {
    section.problem(value, "control_socket",
                    "a unix socket path may be at most " + std::to_string(kMaxControlSocketPath) +
                        " bytes here, got " + std::to_string(path->size()));
  } else if (path->find('\0') != std::string::npos) {
    section.problem(value, "control_socket", "a path cannot contain a NUL character");
  } else {
    global.control_socket = *path;
  }
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

// Backends by name: the nameservers ("IP:PORT") and how often names are resolved again.
void readResolvers(const Section& section, Global& global) {
  if (const toml::node* node = section.get("resolvers")) {
    auto* array = node->as_array();
    if (array == nullptr) {
      section.problem(*node, "resolvers",
                      "expected an array of nameservers such as [\"127.0.0.1:53\"], got " +
                          describe(*node));
    } else {
      for (size_t i = 0; i < array->size(); ++i) {
        const std::string path = section.pathOf("resolvers") + "[" + std::to_string(i) + "]";
        if (auto addr = readAddress(*array->get(i), path, section.diag())) {
          global.resolvers.push_back(*addr);
        }
      }
    }
  }
  if (auto interval = section.duration("resolve_interval", kMaxDuration)) {
    if (*interval < kMinResolveInterval) {
      section.problem(*section.get("resolve_interval"), "resolve_interval",
                      "must be at least " + quote(formatDuration(kMinResolveInterval)) +
                          ", got " + quote(formatDuration(*interval)));
    } else {
      global.resolve_interval = *interval;
    }
  }
}

void readGlobal(const Section& section, Global& global) {
  section.checkKeys({"workers", "log_level", "error_log", "access_log", "pid_file",
                     "control_socket", "max_connections", "steering", "drain_timeout", "user",
                     "group", "worker_cpu_affinity", "worker_rlimit_nofile", "worker_priority",
                     "worker_rlimit_core", "working_directory", "transparent_mark",
                     "transparent_table", "metrics", "event_engine", "announce_table",
                     "announce_protocol", "withdraw_delay", "resolvers", "resolve_interval"});
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
  readControlSocket(section, global);
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
  // Nice values, as setpriority(2) takes them: -20 (first served) .. 19.
  if (auto priority = section.integer("worker_priority", -20, 19)) {
    global.worker_priority = static_cast<int>(*priority);
  }
  readCoreLimit(section, global);
  readWorkingDirectory(section, global);
  readTransparent(section, global);
  readMetrics(section, global);
  constexpr EventEngine kEngines[] = {EventEngine::Epoll, EventEngine::IoUring};
  if (auto engine = section.oneOf("event_engine", {"epoll", "io_uring"})) {
    global.event_engine = kEngines[*engine];
  }
  readAnnounce(section, global);
  readResolvers(section, global);
}

}  // namespace weir::config::detail
