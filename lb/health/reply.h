#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace weir::health {

// Judging what a backend answered to a check. Pure functions, so the rules are unit-tested
// without sockets.

enum class Verdict { Pass, Fail, NeedMore };

struct Judgement {
  Verdict verdict = Verdict::NeedMore;
  std::string error;  // why it failed, for the log and shm: `expected "+PONG", got "-ERR"`
};

// The most reply bytes a check reads; what the backend sends after that is not looked at.
inline constexpr size_t kMaxReply = 4096;

// send-expect: passes once `reply` contains `expect`. `closed`: the backend closed the
// connection (no more bytes will come); `full`: kMaxReply bytes were read.
Judgement judgeExpect(std::string_view reply, std::string_view expect, bool closed, bool full);

// http: passes when the status line's code is in [status_min, status_max].
Judgement judgeHttp(std::string_view reply, uint16_t status_min, uint16_t status_max,
                    bool closed, bool full);

// The request an http check sends: HTTP/1.0, so the backend closes after answering.
std::string httpRequest(std::string_view path, std::string_view host);

// "200", "2xx" or "200..204": the accepted statuses as the config wrote them.
std::string describeStatus(uint16_t status_min, uint16_t status_max);

// `bytes` as a quoted, escaped string for a log line, cut after `max` bytes with "...".
std::string quoteBytes(std::string_view bytes, size_t max = 40);

}  // namespace weir::health
