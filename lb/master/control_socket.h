#pragma once

#include <poll.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "control/reply.h"
#include "control/request.h"
#include "net/unique_fd.h"

namespace weir::master {

// The master's control socket (global.control_socket; weirctl is its client): a unix stream
// socket, mode 0660, owned by the master's user and the children's group.
//
// One request per connection (control/request.h), answered by the handler from inside the
// master's loop, which this class never blocks: every socket is non-blocking, a request is
// at most control::kMaxRequest bytes, each connection has kTimeoutMs from accept to the last
// byte of its reply, and at most kMaxConnections are open (the rest wait in the backlog).
//
// The path always answers, including across a binary upgrade: the socket is bound to a
// temporary name (PATH.PID) and renamed over PATH, which replaces a stale socket file and
// lets a new master take the path over from a running old one. Closing unlinks PATH only
// while it is still this socket (same inode), so an old master never removes its
// successor's socket.
class ControlSocket {
public:
  using Handler = std::function<control::Reply(const control::Request&)>;

  static constexpr int64_t kTimeoutMs = 5000;
  static constexpr size_t kMaxConnections = 16;

  // Binds and listens at `path`, the socket's group `gid` (nullopt: the master's own).
  // `take_over`: replace a socket at `path` even if a live process listens there (a new
  // master in a binary upgrade, or this master recreating its own); otherwise that is an
  // error, so that a second master cannot steal the path of one that runs. Throws
  // std::runtime_error naming the path and the failing step.
  ControlSocket(std::string path, std::optional<uint32_t> gid, Handler handler, bool take_over);
  ~ControlSocket();
  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;

  const std::string& path() const { return path_; }
  std::optional<uint32_t> gid() const { return gid_; }

  // The uid weir's children run as (global.uid). The socket's group is theirs, so a worker
  // could connect: a client with this uid (its SO_PEERCRED) may only read (status, backends),
  // never change anything, so that a compromised worker cannot drain backends or reload.
  // nullopt or 0 (children run as root): no such limit.
  void setReadOnlyUid(std::optional<uint32_t> uid) { read_only_uid_ = uid; }

  // Appends the fds to poll: the listening socket (unless at kMaxConnections) and each
  // connection. Remembers how many it added.
  void addPollFds(std::vector<pollfd>& fds) const;
  // After poll: `fds` points at the entries addPollFds appended. Accepts, reads requests,
  // calls the handler, writes replies; closes connections that are done or past their time.
  void onPoll(const pollfd* fds, int64_t now);
  // The earliest connection deadline, or -1.
  int64_t nextDeadline() const;

  // A new master answers at the path now (binary upgrade done): stop listening and never
  // unlink the path.
  void handOff();
  // Binds again and renames over the path (a failed binary upgrade's new master may have
  // taken it). Keeps the current socket if that fails, and says why (or "").
  std::string rebind();

private:
  struct Conn {
    net::UniqueFd fd;
    int64_t deadline = 0;
    std::string in;
    std::string out;  // the reply, once there is one
    size_t sent = 0;
    std::optional<uint32_t> uid;  // the client's, from SO_PEERCRED
  };

  void bindAndRename(bool take_over);
  void acceptSome(int64_t now);
  // false: the connection is finished (done, failed or timed out) and may be closed.
  bool onReadable(Conn& c);
  bool onWritable(Conn& c);
  void answer(Conn& c, const control::ParsedRequest& parsed);
  void unlinkIfOurs();

  std::string path_;
  std::optional<uint32_t> gid_;
  Handler handler_;
  std::optional<uint32_t> read_only_uid_;
  net::UniqueFd listen_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  std::vector<Conn> conns_;
  mutable size_t polled_conns_ = 0;  // connections addPollFds added, in order
  mutable bool polled_listen_ = false;
};

}  // namespace weir::master
