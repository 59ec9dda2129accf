#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace weir::engine {

// Which kernel interface a worker waits on (global.event_engine).
enum class Kind { Epoll, IoUring };
const char* toString(Kind kind);

// One readiness report: the `ptr` given to watch() and what is ready, as EPOLL* bits
// (EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLHUP, EPOLLERR; poll(2)'s bits have the same values).
struct Event {
  void* ptr;
  uint32_t events;
};

// The seam under a worker's loop. The Session state machine and the worker's accept loop are
// the same on every engine; an engine tells them when a socket is ready, edge-triggered (one
// report per change, as EPOLLET: a caller reads or writes until EAGAIN before it waits for
// the next), and closes the sockets it watches.
//
// epoll: epoll_ctl(ADD) per socket, epoll_wait per loop iteration, close(2) per socket.
// io_uring: a multishot poll request per socket and a close request per socket, queued in
// the ring's submission queue and submitted together, with the wait for completions, by one
// io_uring_enter per loop iteration: the epoll_ctl and close system calls go away.
class Engine {
public:
  virtual ~Engine() = default;
  virtual Kind kind() const = 0;

  // Reports readiness of `fd` for `events` (EPOLLIN | EPOLLOUT | EPOLLRDHUP; errors and
  // hang-ups always) with `ptr`, until close(). False (errno set) if it cannot be watched.
  virtual bool watch(int fd, uint32_t events, void* ptr) = 0;
  // Stops the reports for `fd` and closes it. Reports for it already fetched by wait() may
  // still be handed out in that batch: callers check that what they name is still open.
  // The fd number may stay taken until the next wait() (io_uring closes it there).
  virtual void close(int fd) = 0;
  // As close(), for an fd whose file other processes may hold too (a listening socket the
  // master keeps): epoll forgets a registration only when the file itself goes away.
  virtual void forget(int fd) = 0;
  // Waits up to `timeout_ms` (0: do not block) for readiness; fills at most `max` events.
  // Returns how many, or -1 with errno (EINTR: a signal; the caller just loops).
  virtual int wait(Event* out, int max, int timeout_ms) = 0;
};

// The engine `wanted` names, or epoll when io_uring cannot be used here (not built in, the
// kernel lacks it or a feature weir needs, kernel.io_uring_disabled, or seccomp): then
// `fallback_reason` says why and the caller logs it. Throws if even epoll cannot be set up.
std::unique_ptr<Engine> make(Kind wanted, std::string& fallback_reason);

}  // namespace weir::engine
