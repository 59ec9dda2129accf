#include "client_attempt.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "support/net_io.h"

namespace weir::test {

Fd connectFrom(const std::string& source, const SockAddr& target, std::string* outcome) {
  Fd fd(::socket(target.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  auto from = SockAddr::from(source, 0);
  if (!fd || !from || ::bind(fd.get(), from->get(), from->len) != 0) {
    *outcome = "bind " + source + ": " + std::strerror(errno);
    return Fd();
  }
  std::string error;
  fd = connectTcp(std::move(fd), target, seconds(3), &error);
  if (!fd) {
    *outcome = error.find("Connection refused") != std::string::npos  ? "refused"
               : error.find("Connection reset") != std::string::npos ? "reset"
                                                                      : error;
  }
  return fd;
}

std::string attemptFrom(const std::string& source, const SockAddr& target) {
  std::string outcome;
  Fd fd = connectFrom(source, target, &outcome);
  if (!fd) {
    return outcome;
  }
  const IoStatus status = echoRoundTrip(fd.get(), "hello from " + source, deadlineIn(seconds(3)));
  if (status == IoStatus::Ok) {
    return "echo";
  }
  return status == IoStatus::Reset ? "reset" : std::string("echo failed: ") + toString(status);
}

}  // namespace weir::test
