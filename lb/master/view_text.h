#pragma once

#include <cstdint>
#include <string>

#include "master/view.h"

namespace weir::master {

// `weirctl status` and `weirctl backends` as text: one header line, aligned columns, ages as
// "3s ago". The JSON forms are toJson(view).

// The master, its steering, and every worker of every generation (slot, pid, active and
// accepted connections), then how evenly the serving generation's workers accepted: the
// ratio of the most to the fewest accepted.
std::string statusText(const View& view);
// One row per backend of every pool of view (the caller filters pools): state, admin state,
// connections, failed connects, the last check's age and its error.
std::string backendsText(const View& view);

// "0s ago", "59s ago", "2m5s ago", "1h2m ago", "3d4h ago"; "never" for a negative age.
std::string formatAge(int64_t age_ms);

}  // namespace weir::master
