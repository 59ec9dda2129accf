#pragma once

#include <string_view>

namespace weir::master {

// The status page served on / of the metrics listener: one self-contained HTML document
// (inline CSS and script, no external assets) that renders /status.json and refreshes it
// every 2 s in place. Built from lb/master/status_page.html at build time.
extern const std::string_view kStatusPage;

}  // namespace weir::master
