#include "util/log.h"

#include <stdexcept>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace weir::util {
namespace {

std::shared_ptr<spdlog::logger> g_access;

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
  auto err = std::make_shared<spdlog::logger>("weir", makeSink(error_log));
  err->set_level(lvl);
  err->set_pattern("%Y-%m-%dT%H:%M:%S.%e [%l] " + process_tag + ": %v");
  err->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(err);

  g_access.reset();
  if (access_log != "off") {
    g_access = std::make_shared<spdlog::logger>("access", makeSink(access_log));
    g_access->set_pattern("%Y-%m-%dT%H:%M:%S.%e %v");
    g_access->set_level(spdlog::level::info);
    g_access->flush_on(spdlog::level::info);
  }
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
