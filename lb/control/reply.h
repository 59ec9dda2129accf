#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace weir::control {

// The master's answer to one request: a first line "ok" or "error", then the body (text, or
// one JSON document), then the master closes the connection.
struct Reply {
  bool ok = true;
  std::string body;

  static Reply success(std::string body) { return {true, std::move(body)}; }
  static Reply failure(std::string body) { return {false, std::move(body)}; }
};

// The bytes of `reply`; the body gets a final "\n" if it lacks one (an empty body stays empty).
std::string encodeReply(const Reply& reply);
// What weirctl received, or nullopt if it does not start with "ok\n" or "error\n".
std::optional<Reply> decodeReply(std::string_view bytes);

}  // namespace weir::control
