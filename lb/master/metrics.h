#pragma once

#include <string>

#include "master/view.h"

namespace weir::master {

// The Prometheus text exposition format (0.0.4) of a View: every metric named weir_*, with
// HELP and TYPE lines; label values are names from the configuration (pools, backends,
// listeners), worker slot numbers and fixed words, so the label sets stay bounded.
// docs/metrics.md lists them.
std::string renderMetrics(const View& view);

inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace weir::master
