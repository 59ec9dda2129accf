#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "support/testsrv/conn.h"

namespace weir::testsrv {

// A tiny HTTP/1.x responder, weir's demo backend. Every request, whatever its method and
// target, gets "200 OK" with the body "hello from NAME (you are CLIENT_IP:PORT)\n" (no body
// for HEAD); over TLS the headers X-TLS-Version, X-TLS-SNI and X-TLS-ALPN say what the
// handshake settled ("-" when absent). Requests may be pipelined; a Content-Length body is read and skipped.
// HTTP/1.1 is keep-alive unless the request says "Connection: close"; HTTP/1.0 closes
// unless it says "Connection: keep-alive". Malformed requests get 400, oversized heads 431,
// chunked bodies 501 and other HTTP versions 505, each followed by a close.
class HttpProtocol : public Protocol {
public:
  static constexpr size_t kMaxHead = 64 * 1024;

  explicit HttpProtocol(std::string name) : name_(std::move(name)) {}
  void onData(Conn& conn, std::string_view data) override;
  void onEof(Conn& conn) override;

private:
  // Answers every complete request in in_. Stops early when the connection must close.
  void process(Conn& conn);
  // Handles one request head (without the blank line); returns false to stop processing.
  bool handle(Conn& conn, std::string_view head);
  void respond(Conn& conn, int status, std::string_view reason, std::string_view body,
               bool send_body, bool keep_alive);

  std::string name_;
  std::string in_;
  uint64_t body_left_ = 0;  // bytes of the current request body still to skip
};

}  // namespace weir::testsrv
