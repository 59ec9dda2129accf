// libFuzzer target: the bytes a local client sends on the master's control socket ->
// lb/control/request.h's parseReceived (and parseRequest, formatRequest).
//
// The input is what the client sent, the first byte says whether it then closed its side
// (odd: eof). Beyond crashes and UB it checks the contract: nothing but the first
// kMaxRequest bytes is read (bytes past them change nothing); no verdict while a request may
// still come, and a verdict once there is a newline, kMaxRequest bytes or eof; more bytes
// after a verdict never change it (one request per connection); an error is one line of
// printable ASCII of bounded length; a request has a known format and command, an argument
// count the command takes, arguments that are printable words, and formatRequest gives back
// exactly the line it came from.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "control/request.h"
#include "fuzz_check.h"

namespace weir::fuzz {
namespace {

using control::kMaxRequest;
using control::ParsedRequest;

bool same(const std::optional<ParsedRequest>& a, const std::optional<ParsedRequest>& b) {
  if (a.has_value() != b.has_value()) {
    return false;
  }
  return !a || (a->request == b->request && a->error == b->error);
}

void checkVerdict(const ParsedRequest& p, std::string_view bytes) {
  const std::string_view shown = bytes.substr(0, 64);
  if (!p.request) {
    check(!p.error.empty() && p.error.size() <= 256 && isPrintableAscii(p.error),
          "an error is one short line of printable ASCII", shown);
    return;
  }
  check(p.error.empty(), "a request comes without an error", shown);
  const control::Arity arity = control::arityOf(p.request->command);
  check(p.request->args.size() >= arity.min && p.request->args.size() <= arity.max,
        "the command takes that many arguments", shown);
  for (const std::string& arg : p.request->args) {
    check(!arg.empty() && arg.size() <= control::kMaxWord && isPrintableAscii(arg) &&
              arg.find(' ') == std::string::npos,
          "arguments are printable words", shown);
  }
  const size_t nl = bytes.find('\n');
  check(nl != std::string_view::npos && nl < kMaxRequest, "a request ends in a newline", shown);
  check(control::formatRequest(*p.request) == bytes.substr(0, nl + 1),
        "the request formats back to its line", shown);
}

}  // namespace
}  // namespace weir::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace weir::fuzz;
  if (size == 0) {
    return 0;
  }
  const bool eof = (data[0] & 1) != 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::optional<ParsedRequest> full = weir::control::parseReceived(bytes, eof);

  const bool decided = bytes.substr(0, kMaxRequest).find('\n') != std::string_view::npos ||
                       bytes.size() >= kMaxRequest || eof;
  check(full.has_value() == decided, "a verdict exactly when one is due", bytes.substr(0, 64));
  if (bytes.size() > kMaxRequest) {
    check(same(weir::control::parseReceived(bytes.substr(0, kMaxRequest), eof), full),
          "bytes past kMaxRequest change nothing", bytes.substr(0, 64));
  }
  if (!full) {
    return 0;
  }
  checkVerdict(*full, bytes);
  // The verdict is final: the shortest prefix that has one gives the same.
  for (size_t n = 0; n < bytes.size() && n <= kMaxRequest; ++n) {
    if (auto early = weir::control::parseReceived(bytes.substr(0, n), false)) {
      check(same(early, full), "more bytes never change a verdict", bytes.substr(0, 64));
      break;
    }
  }
  return 0;
}
