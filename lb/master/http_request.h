#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace weir::master {

// The start of an HTTP/1.x request as far as the master's metrics listener needs it: the
// method and the path. Input from any client that can reach the listener, so the parser
// accepts only what a plain GET/HEAD needs and rejects the rest.
inline constexpr size_t kMaxRequestBytes = 8192;  // request line and headers

struct HttpRequest {
  enum class Status {
    Incomplete,  // no blank line ending the headers yet (and under kMaxRequestBytes)
    Ok,
    Bad,       // 400: malformed request line or header
    TooLarge,  // 431: no end of headers within kMaxRequestBytes
    Version,   // 505: not HTTP/1.0 or HTTP/1.1
  };
  Status status = Status::Incomplete;
  std::string method;  // as sent (a token)
  std::string path;    // the target up to '?', starting with '/'
};

// Parses `data`, everything received so far.
HttpRequest parseHttpRequest(std::string_view data);

}  // namespace weir::master
