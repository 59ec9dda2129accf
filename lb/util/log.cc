#include "util/log.h"

#include <stdexcept>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace weir::util {
namespace {

struct Settings {
  std::string error_log;
  std::string access_log;
  std::string level;
  std::string tag;
};

std::shared_ptr<spdlog::logger> g_access;
std::optional<Settings> g_settings;  // of the last setupLogging that succeeded

spdlog::sink_ptr makeSink(const std::string& where) {
  if (where == "stderr") {
    return std::make_shared<spdlog::sinks::stderr_sink_st>();
  }
  // Opened in append mode: every process of the appliance appends whole lines to one file.
  return std::make_shared<spdlog::sinks::basic_file_sink_st>(where, false);
}

}  // namespace

void setupLogging(const std::string& error_log, const std::string& access_log,
                  const std::string& level, const std::string& process_tag) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    throw std::runtime_error("unknown log level \"" + level + "\"");
  }
  // Everything that can fail first: opening the files.
  spdlog::sink_ptr err_sink = makeSink(error_log);
  spdlog::sink_ptr access_sink = access_log != "off" ? makeSink(access_log) : nullptr;

  auto err = std::make_shared<spdlog::logger>("weir", std::move(err_sink));
  err->set_level(lvl);
  err->set_pattern("%Y-%m-%dT%H:%M:%S.%e [%l] " + process_tag + ": %v");
  err->flush_on(spdlog::level::trace);
  std::shared_ptr<spdlog::logger> access;
  if (access_sink) {
    access = std::make_shared<spdlog::logger>("access", std::move(access_sink));
    access->set_pattern("%Y-%m-%dT%H:%M:%S.%e %v");
    access->set_level(spdlog::level::info);
    access->flush_on(spdlog::level::info);
  }
  spdlog::set_default_logger(std::move(err));
  g_access = std::move(access);
  g_settings = Settings{error_log, access_log, level, process_tag};
}

std::optional<std::string> reopenLogs() {
  if (!g_settings) {
    return std::string("logging was never set up");
  }
  const Settings s = *g_settings;  // setupLogging replaces *g_settings
  try {
    setupLogging(s.error_log, s.access_log, s.level, s.tag);
  } catch (const std::exception& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

void closeLogFiles() {
  const spdlog::level::level_enum level = spdlog::default_logger()->level();
  g_access.reset();
  auto err = std::make_shared<spdlog::logger>("weir", makeSink("stderr"));
  err->set_level(level);
  spdlog::set_default_logger(err);
}

spdlog::logger* accessLog() { return g_access.get(); }

}  // namespace weir::util
