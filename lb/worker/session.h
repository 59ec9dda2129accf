#pragma once

#include <cstdint>
#include <string>

#include "net/address.h"
#include "net/pipe_pool.h"
#include "net/unique_fd.h"
#include "worker/timer_list.h"

namespace weir::worker {

class Worker;
struct PoolRuntime;

// Why a session ended; one access-log line says it.
enum class CloseReason {
  Done,           // both directions reached end of stream
  ClientReset,    // error reading from / writing to the client
  UpstreamReset,  // error reading from / writing to the backend
  IdleTimeout,    // no byte either way for idle_timeout
  ConnectFailed,  // every attempt (1 + retries) refused or timed out
  NoBackend,      // no backend of the pool is up (or every one that is was tried)
  BackendsFull,   // every eligible backend is at its max_connections
  ResourceLimit,  // out of fds or pipe memory
  Shutdown,       // the worker stopped
};
const char* toString(CloseReason reason);

enum class EndpointKind : uint8_t { Listener, Client, Upstream, Signal };

// What epoll_event.data.ptr points at: says which kind of object owns the fd.
struct Endpoint {
  EndpointKind kind;
  void* owner;
};

// One proxied connection: client socket, backend socket and two splice flows between them.
//
// Bytes never enter user space: each direction is splice(src -> pipe) then splice(pipe -> dst).
// A direction holds a pipe from the worker's pool only while bytes sit in it. Reading stops
// while the pipe holds bytes the destination has not taken (backpressure: memory per
// connection is bounded by one pipe per direction). Both fds are registered once, edge-
// triggered, for IN|OUT|RDHUP; the readiness flags below remember the last edge, and EAGAIN
// clears them, so no epoll_ctl is needed after registration.
class Session {
public:
  enum class State { Idle, Connecting, Retrying, Streaming, Closed };

  explicit Session(Worker* worker);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Takes an accepted client socket and starts connecting to a backend of `pool`. `id` names
  // the connection in log lines ([C<id>], conn=<slot>-<id>): unique within the worker, unlike
  // the Session object, which is reused for connection after connection.
  void start(net::UniqueFd client, const net::SockAddr& peer, uint32_t listener, PoolRuntime* pool,
             uint64_t id, int64_t now_ms);
  // An epoll event for the client (upstream = false) or backend socket.
  void onEvent(bool upstream, uint32_t events);
  // The armed timer expired (connect_timeout or idle_timeout).
  void onTimeout();
  // Deferred work from the ready list: continue a pump that used its budget, or retry connect.
  void onReady();
  // Ends the session: closes both sockets, writes the access-log line. Idempotent.
  void finish(CloseReason reason);

  State state() const { return state_; }
  uint64_t id() const { return id_; }
  // "client IP:PORT -> backend IP:PORT, N bytes up, M down, open T ms" for a log line.
  std::string describe() const;
  bool queued = false;  // on the worker's ready list
  TimerHook timer;

private:
  struct Side {
    Endpoint ep;
    net::UniqueFd fd;
    bool readable = false;
    bool writable = false;
    bool eof = false;      // read returned 0
    bool shut_wr = false;  // we sent FIN
  };
  struct Flow {
    net::Pipe pipe;
    size_t in_pipe = 0;
    uint64_t bytes = 0;
    bool bulk = false;  // a read filled most of a default pipe: ask for large pipes from now on
  };
  enum class Pump { Blocked, Yield, Done, Failed };

  void connectNext();
  void connectFailed(int err);
  // The debug line about the failed connect to backend_ (last_error_ says why).
  void logConnectFailure() const;
  void endReservation(bool connected);
  void pumpAll();
  Pump pump(Flow& flow, Side& from, Side& to, CloseReason from_err, CloseReason to_err);
  void releasePipe(Flow& flow);
  void resetSide(Side& side, EndpointKind kind);

  Worker* worker_;
  uint64_t id_ = 0;
  State state_ = State::Idle;
  Side client_;
  Side upstream_;
  Flow c2u_;
  Flow u2c_;
  net::SockAddr peer_;
  PoolRuntime* pool_ = nullptr;
  uint32_t listener_ = 0;
  int backend_ = -1;
  bool reserved_ = false;  // backend_'s shared active count includes this session
  uint32_t attempts_ = 0;
  uint64_t tried_ = 0;  // bitmask over the first 64 backends of the pool
  int last_error_ = 0;
  int64_t started_ms_ = 0;
  bool moved_ = false;  // bytes moved during the current dispatch (re-arms the idle timer)
};

}  // namespace weir::worker
