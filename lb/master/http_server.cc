#include "master/http_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <spdlog/spdlog.h>

namespace weir::master {
namespace {

constexpr size_t kReadChunk = 4096;

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Internal Server Error";
  }
}

HttpResponse error(int status) {
  return {status, "text/plain; charset=utf-8",
          std::to_string(status) + " " + reason(status) + "\n"};
}

}  // namespace

std::string renderResponse(const HttpResponse& response, bool head) {
  std::string out = "HTTP/1.1 " + std::to_string(response.status) + " " + reason(response.status) +
                    "\r\nContent-Type: " + response.content_type +
                    "\r\nContent-Length: " + std::to_string(response.body.size()) +
                    "\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff"
                    "\r\nConnection: close\r\n";
  if (response.status == 405) {
    out += "Allow: GET, HEAD\r\n";
  }
  out += "\r\n";
  if (!head) {
    out += response.body;
  }
  return out;
}

util::Result<std::unique_ptr<HttpServer>> HttpServer::listen(const net::SockAddr& address,
                                                             Handler handler) {
  const std::string what = "metrics listener " + address.toString();
  net::UniqueFd fd(::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    return util::lastError(what + ": socket");
  }
  const int one = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    return util::lastError(what + ": setsockopt");
  }
  if (::bind(fd.get(), address.get(), address.len()) != 0) {
    return util::lastError(what + ": bind");
  }
  if (::listen(fd.get(), 64) != 0) {
    return util::lastError(what + ": listen");
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(fd), address, std::move(handler)));
}

HttpServer::~HttpServer() = default;

void HttpServer::addPollFds(std::vector<pollfd>& pfds) const {
  if (clients_.size() < kMaxConnections) {
    pfds.push_back({fd_.get(), POLLIN, 0});
  }
  for (const auto& c : clients_) {
    pfds.push_back({c->fd.get(), static_cast<short>(c->answered ? POLLOUT : POLLIN), 0});
  }
}

int64_t HttpServer::nextDeadline() const {
  int64_t next = -1;
  for (const auto& c : clients_) {
    if (next < 0 || c->deadline < next) {
      next = c->deadline;
    }
  }
  return next;
}

void HttpServer::service(int64_t now) {
  accept(now);
  std::erase_if(clients_, [&](const std::unique_ptr<Client>& c) {
    if (!advance(*c)) {
      return true;
    }
    if (now >= c->deadline) {
      spdlog::debug("metrics listener: a client took longer than {} ms; closed", kDeadlineMs);
      return true;
    }
    return false;
  });
}

void HttpServer::accept(int64_t now) {
  while (clients_.size() < kMaxConnections) {
    net::UniqueFd fd(::accept4(fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
        spdlog::warn("metrics listener {}: accept: {}", address_.toString(), std::strerror(errno));
      }
      return;
    }
    auto c = std::make_unique<Client>();
    c->fd = std::move(fd);
    c->deadline = now + kDeadlineMs;
    clients_.push_back(std::move(c));
  }
}

bool HttpServer::advance(Client& c) {
  if (!c.answered) {
    char buf[kReadChunk];
    for (;;) {
      const size_t room = kMaxRequestBytes - std::min(c.in.size(), kMaxRequestBytes);
      const ssize_t n = ::recv(c.fd.get(), buf, std::min(room + 1, sizeof(buf)), 0);
      if (n > 0) {
        c.in.append(buf, static_cast<size_t>(n));
        const HttpRequest request = parseHttpRequest(c.in);
        if (request.status != HttpRequest::Status::Incomplete) {
          answer(c, request);
          break;
        }
        continue;
      }
      if (n == 0) {
        return false;  // the client gave up before a complete request
      }
      if (errno == EINTR) {
        continue;
      }
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
  }
  while (c.sent < c.out.size()) {
    const ssize_t n =
        ::send(c.fd.get(), c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n > 0) {
      c.sent += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
  }
  // Everything sent: closing now (the UniqueFd) is the Connection: close the client was told.
  ::shutdown(c.fd.get(), SHUT_WR);
  return false;
}

void HttpServer::answer(Client& c, const HttpRequest& request) {
  c.answered = true;
  HttpResponse response;
  bool head = false;
  switch (request.status) {
    case HttpRequest::Status::Ok:
      head = request.method == "HEAD";
      if (request.method != "GET" && !head) {
        response = error(405);
      } else {
        response = handler_(request.path);
      }
      break;
    case HttpRequest::Status::TooLarge:
      response = error(431);
      break;
    case HttpRequest::Status::Version:
      response = error(505);
      break;
    default:
      response = error(400);
  }
  c.out = renderResponse(response, head);
}

}  // namespace weir::master
