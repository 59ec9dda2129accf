#include "canned_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <stdexcept>

namespace weir::health {
namespace {

constexpr int kPollMs = 10;
constexpr int kRequestWaitMs = 300;

net::UniqueFd bindLoopback(uint16_t& port) {
  net::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
    throw std::runtime_error("bind 127.0.0.1:0 failed");
  }
  port = ntohs(addr.sin_port);
  return fd;
}

}  // namespace

CannedServer::~CannedServer() {
  stop_ = true;
  if (thread_.joinable()) {
    thread_.join();
  }
}

uint16_t CannedServer::listen(std::string reply) {
  auto l = std::make_unique<Listener>();
  uint16_t port = 0;
  l->fd = bindLoopback(port);
  if (::listen(l->fd.get(), 64) < 0) {
    throw std::runtime_error("listen failed");
  }
  l->reply = std::move(reply);
  listeners_.push_back(std::move(l));
  return port;
}

void CannedServer::start() {
  thread_ = std::thread([this] { serve(); });
}

void CannedServer::setReply(size_t listener, std::string reply) {
  std::lock_guard<std::mutex> lock(mu_);
  listeners_[listener]->reply = std::move(reply);
}

void CannedServer::serve() {
  std::vector<pollfd> fds;
  for (auto& l : listeners_) {
    fds.push_back({l->fd.get(), POLLIN, 0});
  }
  while (!stop_.load()) {
    if (::poll(fds.data(), fds.size(), kPollMs) <= 0) {
      continue;
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents & POLLIN) {
        answer(*listeners_[i]);
      }
    }
  }
}

void CannedServer::answer(Listener& l) {
  net::UniqueFd conn(::accept4(l.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn) {
    return;
  }
  ++l.accepted;
  // Read the request (or the end of stream of a connect-only check) before answering, so that
  // closing never resets a connection with unread bytes.
  pollfd p{conn.get(), POLLIN, 0};
  char buf[4096];
  if (::poll(&p, 1, kRequestWaitMs) > 0) {
    (void)::recv(conn.get(), buf, sizeof(buf), 0);
  }
  std::string reply;
  {
    std::lock_guard<std::mutex> lock(mu_);
    reply = l.reply;
  }
  if (!reply.empty()) {
    (void)::send(conn.get(), reply.data(), reply.size(), MSG_NOSIGNAL);
  }
  ::shutdown(conn.get(), SHUT_WR);
  if (::poll(&p, 1, kRequestWaitMs) > 0) {
    (void)::recv(conn.get(), buf, sizeof(buf), 0);  // the client's close
  }
}

uint16_t closedPort() {
  uint16_t port = 0;
  net::UniqueFd fd = bindLoopback(port);
  return port;
}

net::UniqueFd silentListener(uint16_t& port) {
  net::UniqueFd fd = bindLoopback(port);
  if (::listen(fd.get(), 64) < 0) {
    throw std::runtime_error("listen failed");
  }
  return fd;
}

}  // namespace weir::health
