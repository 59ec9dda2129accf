#pragma once

#include "net/unique_fd.h"

namespace weir::test {

// The daemon's own fd owner (header-only, no daemon code linked): one per fd, closed once.
using Fd = weir::net::UniqueFd;

}  // namespace weir::test
