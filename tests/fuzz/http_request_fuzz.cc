// libFuzzer target: what a client of the master's metrics listener sends -> lb/master/
// http_request.h's parseHttpRequest.
//
// Beyond crashes and UB it checks the parser's contract: kMaxRequestBytes bytes never give
// Incomplete; an Ok request has a non-empty token method and a path that starts with '/' and
// holds no '?' and no byte outside visible ASCII; a verdict other than Incomplete stays the
// same when more bytes follow (the master answers on the first one).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "master/http_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace weir::fuzz;
  using weir::master::HttpRequest;
  using weir::master::kMaxRequestBytes;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string_view shown = input.substr(0, 64);
  const HttpRequest r = weir::master::parseHttpRequest(input);

  if (size >= kMaxRequestBytes) {
    check(r.status != HttpRequest::Status::Incomplete, "no Incomplete at the limit", shown);
  }
  if (r.status == HttpRequest::Status::Ok) {
    check(!r.method.empty() && isPrintableAscii(r.method), "a token method", shown);
    check(!r.path.empty() && r.path.front() == '/', "a path starting with /", shown);
    check(r.path.find('?') == std::string::npos, "no query in the path", shown);
    check(isPrintableAscii(r.path) && r.path.find(' ') == std::string::npos,
          "a path of visible ASCII", shown);
  } else {
    check(r.method.empty() && r.path.empty(), "nothing parsed unless Ok", shown);
  }
  if (r.status != HttpRequest::Status::Incomplete) {
    const std::string more = std::string(input) + "X-More: 1\r\n\r\n";
    const HttpRequest again = weir::master::parseHttpRequest(more);
    check(again.status == r.status && again.method == r.method && again.path == r.path,
          "a verdict stays when more bytes follow", shown);
  }
  return 0;
}
