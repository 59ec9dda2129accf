#include "client_attempt.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "support/net_io.h"

namespace weir::test {

std::string attemptFrom(const std::string& source, const SockAddr& target) {
  Fd fd(::socket(target.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  auto from = SockAddr::from(source, 0);
  if (!fd || !from || ::bind(fd.get(), from->get(), from->len) != 0) {
    return "bind " + source + ": " + std::strerror(errno);
  }
  std::string error;
  fd = connectTcp(std::move(fd), target, seconds(3), &error);
  if (!fd) {
    if (error.find("Connection refused") != std::string::npos) {
      return "refused";
    }
    // The RST of a worker that accepted and refused can come before connect's completion is
    // read.
    return error.find("Connection reset") != std::string::npos ? "reset" : error;
  }
  const IoStatus status = echoRoundTrip(fd.get(), "hello from " + source, deadlineIn(seconds(3)));
  if (status == IoStatus::Ok) {
    return "echo";
  }
  return status == IoStatus::Reset ? "reset" : std::string("echo failed: ") + toString(status);
}

}  // namespace weir::test
