#include "config/readers.h"

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

}  // namespace

void readGlobal(const Section& section, Global& global) {
  section.checkKeys({"workers", "log_level", "error_log", "access_log", "pid_file",
                     "max_connections", "steering"});
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
}

}  // namespace weir::config::detail
