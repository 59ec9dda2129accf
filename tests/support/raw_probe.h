#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "support/deadline.h"
#include "support/net_io.h"
#include "support/sock_addr.h"

// Sends arbitrary bytes (garbage, a truncated ClientHello, a hello from
// TlsClient::clientHelloBytes) and watches how the server reacts: does it close, reset, or
// keep the connection open?
namespace weir::test {

struct RawProbeOptions {
  // > 0: write in pieces of this many bytes, one send() each, TCP_NODELAY on, waiting up to
  // 500 ms per piece for the peer's ACK (see HelloShaping::segment_bytes for what that can
  // and cannot guarantee).
  size_t segment_bytes = 0;
  // After sending: shutdown(SHUT_WR), so the server sees EOF after the bytes.
  bool shutdown_write = false;
  // Connect timeout, and how long to watch after the last byte went out.
  Clock::duration timeout = seconds(5);
};

struct RawProbeResult {
  // Eof: the server closed (read returned 0). Reset: ECONNRESET. Timeout: still open when
  // the watch ended. Error: the connect or a send failed (see detail).
  IoStatus status = IoStatus::Error;
  std::string received;      // what the server sent before closing (an alert, say)
  Clock::duration elapsed{};  // from the last byte sent to the close (or the watch's end)
  std::string detail;         // human-readable account for assertion messages
};

// Connects to `addr`, sends `bytes` as `options` say, then reads until the server closes
// or the watch ends. Never throws.
RawProbeResult sendRawAndWatch(const SockAddr& addr, std::string_view bytes,
                               const RawProbeOptions& options = {});

// Reads from a connected socket until the server closes it or `deadline`; everything read
// goes into the result's `received`. For a connection the test drives itself.
RawProbeResult watchForClose(int fd, Deadline deadline);

// If `received` starts with a TLS alert record, its description code (40
// handshake_failure, 112 unrecognized_name, ...); nullopt otherwise.
std::optional<uint8_t> tlsAlertCode(std::string_view received);

}  // namespace weir::test
