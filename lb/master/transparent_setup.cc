#include "master/transparent_setup.h"

#include <exception>

#include <spdlog/spdlog.h>

#include "netsetup/check.h"

namespace weir::master {

void logTransparentSetup(const config::Config& cfg) {
  try {
    for (const auto& warning : netsetup::setupWarnings(cfg)) {
      spdlog::warn("{}", warning);
    }
  } catch (const std::exception& e) {  // out of memory: a warning is not worth a failed start
    spdlog::warn("transparent mode: cannot check the kernel setup: {}", e.what());
  }
}

}  // namespace weir::master
