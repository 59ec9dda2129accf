#include "control/reply.h"

namespace weir::control {

std::string encodeReply(const Reply& reply) {
  std::string out = reply.ok ? "ok\n" : "error\n";
  out += reply.body;
  if (!reply.body.empty() && reply.body.back() != '\n') {
    out += '\n';
  }
  return out;
}

std::optional<Reply> decodeReply(std::string_view bytes) {
  for (bool ok : {true, false}) {
    const std::string_view first = ok ? "ok\n" : "error\n";
    if (bytes.substr(0, first.size()) == first) {
      return Reply{ok, std::string(bytes.substr(first.size()))};
    }
  }
  return std::nullopt;
}

}  // namespace weir::control
