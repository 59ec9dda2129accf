#pragma once

#include <poll.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "master/http_request.h"
#include "net/address.h"
#include "net/unique_fd.h"
#include "util/result.h"

namespace weir::master {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// The master's small HTTP/1.1 server for /metrics, /status.json and the status page. It runs
// inside the master's poll loop and never blocks it: every socket is non-blocking, a request
// is read until its headers end (at most kMaxRequestBytes), answered once and the connection
// closed (Connection: close). At most kMaxConnections clients at once (more wait in the listen
// queue); each has kDeadlineMs for its whole exchange. Only GET and HEAD are served.
class HttpServer {
public:
  using Handler = std::function<HttpResponse(const std::string& path)>;
  static constexpr size_t kMaxConnections = 16;
  static constexpr int64_t kDeadlineMs = 5000;

  // Binds and listens on `address` (SO_REUSEPORT, so that a new master of a binary upgrade
  // can bind it while the old one still serves).
  static util::Result<std::unique_ptr<HttpServer>> listen(const net::SockAddr& address,
                                                          Handler handler);
  ~HttpServer();

  const net::SockAddr& address() const { return address_; }
  // The fds to poll and what for.
  void addPollFds(std::vector<pollfd>& pfds) const;
  // Accepts, reads, answers and closes what is ready; drops clients past their deadline.
  // now: CLOCK_MONOTONIC milliseconds.
  void service(int64_t now);
  // The earliest client deadline, or -1.
  int64_t nextDeadline() const;

private:
  struct Client {
    net::UniqueFd fd;
    int64_t deadline = 0;
    std::string in;
    std::string out;
    size_t sent = 0;
    bool answered = false;
  };
  HttpServer(net::UniqueFd fd, net::SockAddr address, Handler handler)
      : fd_(std::move(fd)), address_(address), handler_(std::move(handler)) {}
  void accept(int64_t now);
  // False once the client is done with (answered in full, or gone).
  bool advance(Client& c);
  void answer(Client& c, const HttpRequest& request);

  net::UniqueFd fd_;
  net::SockAddr address_;
  Handler handler_;
  std::vector<std::unique_ptr<Client>> clients_;
};

// "HTTP/1.1 200 OK\r\n..." with Content-Length and Connection: close; no body for HEAD.
std::string renderResponse(const HttpResponse& response, bool head);

}  // namespace weir::master
