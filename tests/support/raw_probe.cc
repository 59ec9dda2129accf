#include "support/raw_probe.h"

#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

namespace weir::test {

namespace {

constexpr uint8_t kAlertRecord = 21;

}  // namespace

RawProbeResult watchForClose(int fd, Deadline deadline) {
  RawProbeResult r;
  const auto start = Clock::now();
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int rc = poll(&p, 1, msLeft(deadline));
    if (rc < 0 && errno == EINTR) {
      continue;
    }
    if (rc <= 0) {
      r.status = rc == 0 ? IoStatus::Timeout : IoStatus::Error;
      r.detail = rc == 0 ? "still open when the watch ended" : "poll: " + errnoText(errno);
      break;
    }
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      r.received.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      r.status = IoStatus::Eof;
      r.detail = "server closed";
      break;
    }
    if (errno == EAGAIN || errno == EINTR) {
      continue;
    }
    r.status = errno == ECONNRESET ? IoStatus::Reset : IoStatus::Error;
    r.detail = "recv: " + errnoText(errno);
    break;
  }
  r.elapsed = Clock::now() - start;
  r.detail += " after " +
              std::to_string(std::chrono::duration_cast<milliseconds>(r.elapsed).count()) +
              " ms, " + std::to_string(r.received.size()) + " bytes received";
  if (const auto alert = tlsAlertCode(r.received)) {
    r.detail += " (TLS alert " + std::to_string(*alert) + ")";
  }
  return r;
}

RawProbeResult sendRawAndWatch(const SockAddr& addr, std::string_view bytes,
                               const RawProbeOptions& options) {
  RawProbeResult r;
  Fd fd = connectTcp(addr, options.timeout, &r.detail);
  if (!fd) {
    return r;
  }
  const int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const Deadline send_deadline = deadlineIn(options.timeout);
  const size_t step = options.segment_bytes > 0 ? options.segment_bytes : bytes.size();
  for (size_t pos = 0; pos < bytes.size(); pos += step) {
    const IoStatus w = writeAll(fd.get(), bytes.substr(pos, step), send_deadline);
    if (w != IoStatus::Ok) {
      // The server may have closed early; what it said is still worth reporting.
      r = watchForClose(fd.get(), deadlineIn(milliseconds(0)));
      r.status = w;
      r.detail = "send at byte " + std::to_string(pos) + ": " + toString(w) + "; " + r.detail;
      return r;
    }
    if (options.segment_bytes > 0 && pos + step < bytes.size()) {
      waitFor(
          [&] {
            int unacked = 0;
            return ioctl(fd.get(), SIOCOUTQ, &unacked) == 0 && unacked == 0;
          },
          milliseconds(500), milliseconds(1));
    }
  }
  if (options.shutdown_write && ::shutdown(fd.get(), SHUT_WR) != 0) {
    r.detail = "shutdown: " + errnoText(errno);
    return r;
  }
  return watchForClose(fd.get(), deadlineIn(options.timeout));
}

std::optional<uint8_t> tlsAlertCode(std::string_view received) {
  // Record header (type, version, length = 2), then alert level and description.
  if (received.size() < 7 || static_cast<uint8_t>(received[0]) != kAlertRecord ||
      static_cast<uint8_t>(received[3]) != 0 || static_cast<uint8_t>(received[4]) != 2) {
    return std::nullopt;
  }
  return static_cast<uint8_t>(received[6]);
}

}  // namespace weir::test
