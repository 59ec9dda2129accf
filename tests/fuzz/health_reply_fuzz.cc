// libFuzzer target: what a backend answers to a health check -> lb/health/reply.h's judges.
//
// Input layout: byte 0 holds flags (bit 0: the backend closed, bit 1: judge as http instead
// of send-expect), bytes 1-4 the accepted status range, byte 5 the length of `expect`, then
// `expect`, then the reply (cut at kMaxReply, as the checker reads no more).
//
// Beyond crashes and UB it checks the judges' contract: send-expect passes exactly when the
// reply contains `expect`; http passes only on a status line whose code is in the range;
// "need more" only while the connection is open and the reply not full; a failure always says
// why, in printable ASCII short enough for a log line and the shm error text.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "health/reply.h"

namespace weir::fuzz {
namespace {

using health::Judgement;
using health::Verdict;

constexpr size_t kHeader = 6;
constexpr size_t kMaxExpect = 512;  // what the config allows
// quoteBytes shows at most 40 bytes, each as at most 4 characters, in quotes, then "...".
constexpr size_t kMaxQuoted = 4 * 40 + 5;

void checkJudgement(const Judgement& j, bool closed, bool full, std::string_view reply) {
  if (j.verdict == Verdict::NeedMore) {
    check(!closed && !full, "no \"need more\" once the backend closed or the reply is full",
          reply);
  }
  if (j.verdict == Verdict::Fail) {
    check(!j.error.empty(), "a failed check says why", reply);
    check(isPrintableAscii(j.error), "a check's error is printable ASCII", j.error);
    // Two quoted byte strings and some words, however long the reply or `expect`.
    check(j.error.size() <= 2 * kMaxQuoted + 100, "a check's error stays short", j.error);
  } else {
    check(j.error.empty(), "only a failed check has an error", j.error);
  }
}

// The status line as the checker must read it: "HTTP/<version> <3 digits>[ <reason>]".
// Returns the status, or -1 if the first line is not one.
int referenceStatus(std::string_view reply) {
  std::string_view line = reply.substr(0, reply.find('\n'));
  if (!line.empty() && line.back() == '\r') {
    line.remove_suffix(1);
  }
  if (line.substr(0, 5) != "HTTP/") {
    return -1;
  }
  size_t space = line.find(' ');
  if (space == std::string_view::npos || line.size() < space + 4) {
    return -1;
  }
  int status = 0;
  for (size_t i = space + 1; i < space + 4; ++i) {
    if (line[i] < '0' || line[i] > '9') {
      return -1;
    }
    status = status * 10 + (line[i] - '0');
  }
  if (line.size() > space + 4 && line[space + 4] != ' ') {
    return -1;
  }
  return status;
}

void fuzzExpect(std::string_view expect, std::string_view reply, bool closed, bool full) {
  Judgement j = health::judgeExpect(reply, expect, closed, full);
  checkJudgement(j, closed, full, reply);
  bool contains = reply.find(expect) != std::string_view::npos;
  check((j.verdict == Verdict::Pass) == contains, "send-expect passes iff the reply contains it",
        reply);
}

void fuzzHttp(uint16_t status_min, uint16_t status_max, std::string_view reply, bool closed,
              bool full) {
  Judgement j = health::judgeHttp(reply, status_min, status_max, closed, full);
  checkJudgement(j, closed, full, reply);
  if (j.verdict == Verdict::NeedMore) {
    check(reply.find('\n') == std::string_view::npos, "a whole status line is judged", reply);
    return;
  }
  int status = referenceStatus(reply);
  bool pass = status >= status_min && status <= status_max;
  check((j.verdict == Verdict::Pass) == pass, "http passes iff the status is in range", reply);
}

}  // namespace
}  // namespace weir::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace weir::fuzz;
  if (size < kHeader) {
    return 0;
  }
  const bool closed = (data[0] & 1) != 0;
  const bool http = (data[0] & 2) != 0;
  // As the config allows: 100 <= min <= max <= 599.
  const auto a = static_cast<uint16_t>(100 + (data[1] | data[2] << 8) % 500);
  const auto b = static_cast<uint16_t>(100 + (data[3] | data[4] << 8) % 500);
  const uint16_t status_min = std::min(a, b);
  const uint16_t status_max = std::max(a, b);
  std::string_view rest(reinterpret_cast<const char*>(data) + kHeader, size - kHeader);
  const size_t expect_len = std::min<size_t>({data[5], rest.size(), kMaxExpect});
  std::string_view expect = rest.substr(0, expect_len);
  std::string_view reply = rest.substr(expect_len, weir::health::kMaxReply);
  const bool full = reply.size() >= weir::health::kMaxReply;

  if (http) {
    fuzzHttp(status_min, status_max, reply, closed, full);
  } else if (!expect.empty()) {  // the config rejects an empty expect
    fuzzExpect(expect, reply, closed, full);
  }
  // Whatever a backend sends ends up quoted in a log line.
  std::string quoted = weir::health::quoteBytes(reply);
  check(isPrintableAscii(quoted), "quoteBytes is printable ASCII", quoted);
  check(quoted.size() <= kMaxQuoted, "quoteBytes keeps at most 40 bytes", quoted);
  return 0;
}
