#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/result.h"

namespace weir::control {

// The most weirctl reads of one reply (a status of thousands of backends is far below).
inline constexpr size_t kMaxReply = 64 << 20;

// weirctl's side of one exchange: connects to the unix stream socket at `path`, sends
// `request` and reads until the master closes the connection, all within `timeout_ms`.
// Returns the reply's bytes. Fails with the errno of socket/connect (ENOENT: no socket there;
// ECONNREFUSED: nobody listens; EACCES: no permission), ETIMEDOUT when the master does not
// answer in time, EMSGSIZE past kMaxReply or ENAMETOOLONG for a path sun_path cannot hold.
util::Result<std::string> exchange(const std::string& path, std::string_view request,
                                   int64_t timeout_ms);

}  // namespace weir::control
