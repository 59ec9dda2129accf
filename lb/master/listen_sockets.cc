#include "master/listen_sockets.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "master/quiesce.h"
#include "net/socket.h"

namespace weir::master {
namespace {

std::vector<int> rawFds(const ListenGroup& g) {
  std::vector<int> out;
  for (const auto& fd : g.slots) {
    out.push_back(fd.get());
  }
  return out;
}

// listeners.NAME.defer_accept: how long the kernel holds a connection that sent nothing.
// nginx's `deferred` and HAProxy's `defer-accept` wait about this long too; after it, the
// kernel accepts such a connection on the client's next ACK (it is delayed, not lost).
constexpr int kDeferAcceptSeconds = 1;

// Whether IP_TRANSPARENT (IPV6_TRANSPARENT) is set on a socket an old master passed.
bool isTransparent(int fd, int family) {
  int value = 0;
  socklen_t len = sizeof(value);
  const int rc = family == AF_INET6
                     ? ::getsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &value, &len)
                     : ::getsockopt(fd, IPPROTO_IP, IP_TRANSPARENT, &value, &len);
  return rc == 0 && value != 0;
}

// Checks that `fd` is a listening TCP socket bound to `addr`; returns why not, or "".
std::string checkInherited(int fd, const net::SockAddr& addr) {
  if (::fcntl(fd, F_GETFD) < 0) {
    return "fd " + std::to_string(fd) + " is not open";
  }
  int value = 0;
  socklen_t len = sizeof(value);
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &len) != 0 || value != SOCK_STREAM) {
    return "fd " + std::to_string(fd) + " is not a stream socket";
  }
  len = sizeof(value);
  if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &len) != 0 || value != 1) {
    return "fd " + std::to_string(fd) + " is not listening";
  }
  net::SockAddr bound;
  *bound.lenPtr() = bound.capacity();
  if (::getsockname(fd, bound.get(), bound.lenPtr()) != 0 || !(bound == addr)) {
    return "fd " + std::to_string(fd) + " is bound to " + bound.toString() + ", not " +
           addr.toString();
  }
  return "";
}

}  // namespace

ListenGroup* ListenSockets::find(const net::SockAddr& addr) {
  for (auto& g : groups_) {
    if (g.addr == addr) {
      return &g;
    }
  }
  return nullptr;
}

void ListenSockets::adopt(const std::string& spec) {
  size_t pos = 0;
  while (pos < spec.size()) {
    size_t end = spec.find(';', pos);
    if (end == std::string::npos) {
      end = spec.size();
    }
    const std::string entry = spec.substr(pos, end - pos);
    pos = end + 1;
    if (entry.empty()) {
      continue;
    }
    const size_t at = entry.find('@');
    const size_t eq = entry.rfind('=');
    if (at == std::string::npos || eq == std::string::npos || eq < at) {
      throw std::runtime_error("malformed inherited socket entry \"" + entry + "\"");
    }
    auto addr = net::SockAddr::parse(entry.substr(at + 1, eq - at - 1));
    if (!addr) {
      throw std::runtime_error("malformed address in inherited socket entry \"" + entry + "\"");
    }
    ListenGroup g;
    g.addr = *addr;
    const std::string id = entry.substr(0, at);
    g.known_id = id != "-";
    g.steer_id = g.known_id ? static_cast<uint32_t>(std::stoul(id)) : 0;
    g.inherited = true;
    std::string fds = entry.substr(eq + 1);
    size_t fpos = 0;
    while (fpos < fds.size()) {
      size_t comma = fds.find(',', fpos);
      if (comma == std::string::npos) {
        comma = fds.size();
      }
      const int fd = std::stoi(fds.substr(fpos, comma - fpos));
      fpos = comma + 1;
      if (std::string why = checkInherited(fd, g.addr); !why.empty()) {
        throw std::runtime_error("inherited socket for " + g.addr.toString() + ": " + why);
      }
      // Inherited without CLOEXEC (that is how it crossed execve); children must not pass it on.
      (void)::fcntl(fd, F_SETFD, FD_CLOEXEC);
      g.slots.emplace_back(fd);
    }
    g.transparent = !g.slots.empty() && isTransparent(g.slots.front().get(), g.addr.family());
    g.defer_accept = !g.slots.empty() && net::deferAccept(g.slots.front().get());
    spdlog::info("took over {} listening sockets for {}", g.slots.size(), g.addr.toString());
    groups_.push_back(std::move(g));
  }
}

void ListenSockets::attach(ListenGroup& g) {
  g.attached = true;  // attempted: a group whose attach failed stays on the kernel's hash
  const std::optional<uint32_t> known = g.known_id ? std::optional(g.steer_id) : std::nullopt;
  const net::AccessList* access = g.access.get();
  auto id = steering_.attachGroup(rawFds(g), known, access);
  if (!id && access != nullptr && steering_.active()) {
    // The kernel refused the list (memory): steer without it; the workers enforce it.
    spdlog::warn("access list for {} not loaded into the kernel: {}", g.addr.toString(),
                 id.error().message());
    access = nullptr;
    id = steering_.attachGroup(rawFds(g), known, nullptr);
  }
  if (!id) {
    g.known_id = false;
    g.access_in_kernel = false;
    spdlog::warn("steering off for {}: {}; the kernel's reuseport hash spreads its "
                 "connections", g.addr.toString(), id.error().message());
    return;
  }
  g.steer_id = *id;
  g.known_id = steering_.active();
  g.access_in_kernel = g.known_id && access != nullptr;
}

void ListenSockets::applyAccess(ListenGroup& g, const config::Listener& listener) {
  const bool same = g.access != nullptr && listener.access != nullptr &&
                    *g.access == *listener.access;
  g.access = listener.access;
  if (same && g.access_in_kernel) {
    return;  // a reload that left the list alone: no need to build a million-entry trie again
  }
  if (!g.attached) {
    return;  // attach() installs it with the program
  }
  if (!g.known_id) {
    g.access_in_kernel = false;
    return;
  }
  auto set = steering_.setAccess(g.steer_id, g.access.get());
  if (!set) {
    // Not the old list either: the workers enforce the new one, and only they.
    spdlog::warn("access list for {} not loaded into the kernel: {}", g.addr.toString(),
                 set.error().message());
    (void)steering_.setAccess(g.steer_id, nullptr);
  }
  g.access_in_kernel = set && g.access != nullptr;
}

void ListenSockets::open(const config::Config& cfg, unsigned n) {
  const size_t groups_before = groups_.size();
  std::vector<std::pair<size_t, size_t>> grown;  // (group index, slots before)
  try {
    for (const auto& listener : cfg.listeners) {
      for (const auto& addr : listener.binds) {
        ListenGroup* g = find(addr);
        if (g == nullptr) {
          ListenGroup fresh;
          fresh.addr = addr;
          fresh.backlog = listener.backlog;
          groups_.push_back(std::move(fresh));
          g = &groups_.back();
        } else if (g->slots.size() < n) {
          grown.emplace_back(static_cast<size_t>(g - groups_.data()), g->slots.size());
        }
        while (g->slots.size() < n) {
          auto fd = net::listenReuseport(addr, listener.backlog, listener.transparent);
          if (!fd) {
            throw std::runtime_error("listeners." + listener.name + ": " +
                                     fd.error().message());
          }
          if (listener.defer_accept) {
            (void)net::setDeferAccept(fd->get(), kDeferAcceptSeconds);  // cannot fail on TCP
          }
          g->slots.push_back(std::move(*fd));
        }
      }
    }
  } catch (...) {
    for (auto [index, before] : grown) {
      groups_[index].slots.resize(before);
    }
    groups_.resize(groups_before);
    throw;
  }
  // Nothing below can fail the reload.
  for (const auto& listener : cfg.listeners) {
    for (const auto& addr : listener.binds) {
      ListenGroup* g = find(addr);
      if (g->backlog != listener.backlog) {
        // listen() again on a listening socket only changes its backlog.
        for (const auto& fd : g->slots) {
          (void)::listen(fd.get(), listener.backlog);
        }
        g->backlog = listener.backlog;
      }
      if (g->transparent != listener.transparent) {
        // A reload turned TPROXY interception on or off for an address that stays: sockets
        // opened above already have the new setting; the others change now.
        for (const auto& fd : g->slots) {
          if (auto set = net::setTransparent(fd.get(), addr.family(), listener.transparent);
              !set) {
            spdlog::warn("listeners.{}: {} on {}", listener.name, set.error().message(),
                         addr.toString());
          }
        }
      }
      g->transparent = listener.transparent;
      applyAccess(*g, listener);
      if (g->defer_accept != listener.defer_accept) {
        // Sockets opened above have the new setting already; setting it again is harmless.
        const int seconds = listener.defer_accept ? kDeferAcceptSeconds : 0;
        for (const auto& fd : g->slots) {
          if (auto set = net::setDeferAccept(fd.get(), seconds); !set) {
            spdlog::warn("listeners.{}: {} on {}", listener.name, set.error().message(),
                         addr.toString());
          }
        }
        g->defer_accept = listener.defer_accept;
      }
    }
  }
  for (auto [index, before] : grown) {
    ListenGroup& g = groups_[index];
    if (g.known_id) {
      std::vector<int> fresh;
      for (size_t s = before; s < g.slots.size(); ++s) {
        fresh.push_back(g.slots[s].get());
      }
      if (auto added = steering_.addSlots(g.steer_id, before, fresh); !added) {
        spdlog::warn("steering for {}: {}", g.addr.toString(), added.error().message());
      }
    }
  }
  // Groups with an id from the old master first, so that fresh ids never take theirs.
  for (bool known : {true, false}) {
    for (auto& g : groups_) {
      if (!g.attached && !g.retiring && g.known_id == known) {
        attach(g);
        if (!g.inherited) {
          spdlog::info("listening on {} ({} sockets)", g.addr.toString(), g.slots.size());
        }
      }
    }
  }
  for (const auto& listener : cfg.listeners) {
    if (listener.access) {
      logAccess(listener);
    }
  }
}

void ListenSockets::logAccess(const config::Listener& listener) const {
  const net::AccessList& access = *listener.access;
  bool in_kernel = true;
  for (const auto& addr : listener.binds) {
    for (const auto& g : groups_) {
      in_kernel = in_kernel && (!(g.addr == addr) || g.access_in_kernel);
    }
  }
  spdlog::info("listeners.{}: access list of {} allowed and {} denied prefixes (any other "
               "client {}) enforced {}", listener.name, access.allowCount(), access.denyCount(),
               access.defaultAllow() ? "allowed" : "refused",
               in_kernel ? "in the kernel: the steering program refuses the SYN"
               : steering_.active() ? "by the workers after accept: the kernel refused the list"
                                    : "by the workers after accept: BPF steering is not loaded");
}

size_t ListenSockets::retire(const config::Config* cfg) {
  size_t retiring = 0;
  for (auto& g : groups_) {
    bool keep = false;
    if (cfg != nullptr) {
      for (const auto& listener : cfg->listeners) {
        keep = keep || std::find(listener.binds.begin(), listener.binds.end(), g.addr) !=
                           listener.binds.end();
      }
    }
    if (!keep && !g.retiring) {
      g.retiring = true;
      for (const auto& fd : g.slots) {
        if (int err = dropNewHandshakes(fd.get()); err != 0) {
          spdlog::warn("{}: cannot stop new handshakes ({}); connections that arrive while it "
                       "closes will be reset", g.addr.toString(), std::strerror(err));
        }
      }
      spdlog::info("retiring {}: new connections refused, queued ones still accepted",
                   g.addr.toString());
    }
    retiring += g.retiring ? 1 : 0;
  }
  return retiring;
}

bool ListenSockets::anyRetiring() const {
  return std::any_of(groups_.begin(), groups_.end(),
                     [](const ListenGroup& g) { return g.retiring; });
}

int64_t ListenSockets::retiringBacklog() const {
  int64_t total = 0;
  for (const auto& g : groups_) {
    if (!g.retiring) {
      continue;
    }
    for (const auto& fd : g.slots) {
      total += acceptQueueLength(fd.get());
    }
    const int64_t half_open = halfOpenCount(g.addr);
    if (half_open < 0) {
      return -1;
    }
    total += half_open;
  }
  return total;
}

void ListenSockets::closeRetiring() {
  for (auto& g : groups_) {
    if (g.retiring) {
      if (g.known_id) {
        steering_.releaseGroup(g.steer_id, rawFds(g));
      }
      spdlog::info("closed the {} listening sockets of {}", g.slots.size(), g.addr.toString());
    }
  }
  std::erase_if(groups_, [](const ListenGroup& g) { return g.retiring; });
}

void ListenSockets::closeAll(bool forget) {
  for (auto& g : groups_) {
    if (forget && g.known_id) {
      steering_.releaseGroup(g.steer_id, rawFds(g));
    }
  }
  groups_.clear();
}

std::vector<worker::ListenSocket> ListenSockets::socketsFor(const config::Config& cfg,
                                                            unsigned index, unsigned n) const {
  std::vector<worker::ListenSocket> out;
  for (const auto& g : groups_) {
    for (uint32_t li = 0; li < cfg.listeners.size(); ++li) {
      const auto& binds = cfg.listeners[li].binds;
      if (std::find(binds.begin(), binds.end(), g.addr) == binds.end()) {
        continue;
      }
      const bool check = cfg.listeners[li].access != nullptr && !g.access_in_kernel;
      for (size_t s = index; s < g.slots.size(); s += n) {
        out.push_back({g.slots[s].get(), li, check});
      }
    }
  }
  return out;
}

void ListenSockets::closeAllExcept(const std::vector<worker::ListenSocket>& keep) {
  for (auto& g : groups_) {
    for (auto& fd : g.slots) {
      const bool mine = std::any_of(keep.begin(), keep.end(), [&](const worker::ListenSocket& k) {
        return k.fd == fd.get();
      });
      if (!mine) {
        fd.reset();
      }
    }
  }
}

std::string ListenSockets::inheritSpec() const {
  std::string spec;
  for (const auto& g : groups_) {
    if (g.retiring) {
      continue;  // about to close; the new master need not know it
    }
    if (!spec.empty()) {
      spec += ';';
    }
    spec += (g.known_id ? std::to_string(g.steer_id) : "-") + "@" + g.addr.toString() + "=";
    for (size_t s = 0; s < g.slots.size(); ++s) {
      spec += (s > 0 ? "," : "") + std::to_string(g.slots[s].get());
    }
  }
  return spec;
}

std::vector<int> ListenSockets::fds() const {
  std::vector<int> out;
  for (const auto& g : groups_) {
    if (!g.retiring) {
      for (const auto& fd : g.slots) {
        out.push_back(fd.get());
      }
    }
  }
  return out;
}

void ListenSockets::reattach() {
  for (auto& g : groups_) {
    if (g.known_id) {
      steering_.releaseGroup(g.steer_id, {});  // frees the id for attach() to take it again
      attach(g);
    }
  }
}

}  // namespace weir::master
