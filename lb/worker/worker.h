#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "balance/balancer.h"
#include "config/config.h"
#include "engine/engine.h"
#include "net/pipe_pool.h"
#include "net/unique_fd.h"
#include "shm/backend_map.h"
#include "shm/region.h"
#include "steer/client_limits.h"
#include "steer/slot_load.h"
#include "tls/client_context.h"
#include "tls/client_hello.h"
#include "tls/contexts.h"
#include "tls/server_context.h"
#include "tls/sni.h"
#include "worker/session.h"
#include "worker/timer_list.h"

namespace weir::worker {

// One listening socket of this worker's slot (borrowed from the master's reuseport group).
struct ListenSocket {
  int fd = -1;
  uint32_t listener = 0;  // index into Config::listeners
  // The worker enforces the listener's access list right after accept: the steering program,
  // which refuses denied clients' SYNs in the kernel, is not loaded (or refused the list).
  bool check_access = false;
  // The worker enforces the listener's rate_per_client after accept (the program does not).
  bool check_rate = false;
};

// Per-pool state a worker keeps: its balancer, the pool's backends in shm (health states and
// counters shared with every other process) and the timer lists of the pool's durations.
struct PoolRuntime {
  const config::Pool* pool = nullptr;
  std::unique_ptr<balance::Balancer> balancer;
  const shm::PoolSlots* slots = nullptr;
  TimerList* connect_timers = nullptr;
  TimerList* idle_timers = nullptr;
  tls::ClientContext* tls = nullptr;  // [pools.NAME.tls]: speak TLS to the backends
};

// Per-listener state: its default pool, its SNI routes, its TLS server context.
struct ListenerRuntime {
  uint32_t index = 0;  // into Config::listeners
  const config::Listener* listener = nullptr;
  PoolRuntime* pool = nullptr;         // the default pool
  std::vector<PoolRuntime*> routes;    // pool of each listener->sni entry
  std::unique_ptr<tls::SniTable> sni;  // name -> index into routes; null without routes
  const tls::ServerContext* server = nullptr;  // tls-terminate
  TimerList* first_timers = nullptr;  // client_hello_timeout / handshake_timeout
  TimerList* proxy_timers = nullptr;  // accept_proxy_protocol: proxy_protocol_timeout
};

// A worker process's event loop. Accepts from its own slot's listening sockets only (the
// sk_reuseport program already chose this slot), proxies each connection with a Session.
//
// Loop iteration, as nginx's: wait (timeout = nearest timer) -> dispatch ready fds -> expire
// timers -> deferred work (sessions that used their budget, connect retries, paused accepts,
// freeing closed sessions, which must outlive the event batch that may still name them).
class Worker {
public:
  // load: this worker's part of the steering load. backends: where cfg's backends live in the
  // shared-memory region (bound to this worker's traffic row); stats: this worker's entry in
  // the region. Both outlive the worker.
  // tls: the generation's OpenSSL contexts (built by the master), null if it has none.
  Worker(const config::Config& cfg, unsigned slot, std::vector<ListenSocket> sockets,
         steer::SlotLoad load, const shm::BackendMap& backends, shm::WorkerSlot& stats,
         std::shared_ptr<const tls::Contexts> tls = nullptr,
         steer::ClientHolds* holds = nullptr);
  ~Worker();

  // Runs until SIGTERM/SIGINT (fast stop) or SIGQUIT once every connection has ended.
  // Returns the process exit code.
  int run();

  // For Session.
  int64_t now() const { return now_ms_; }
  engine::Engine& engine() { return *engine_; }
  net::PipePool& pipes() { return pipes_; }
  const config::Config& config() const { return cfg_; }
  void enqueue(Session* s);
  void onClosed(Session* s);
  // A client of listener `listener` (index into Config::listeners) ended: the counters of the
  // listener and of close reasons in this worker's shm slot.
  void onSessionEnd(uint32_t listener, CloseReason reason, uint64_t from_client,
                    uint64_t to_client);
  void onRejectedFull();
  void onBadHello();
  void onProxyUntrusted();
  void onBadProxyHeader();
  void onTlsHandshake(bool ok, bool resumed);
  // The pool of the SNI route that matches `name`, or null (then the listener's default).
  PoolRuntime* routeFor(const ListenerRuntime& listener, const std::string& name) const;
  // Scratch space for peeking at a ClientHello or a PROXY header (the bytes stay in the
  // socket); at least tls::kMaxClientHello >= proxy::kMaxLength bytes.
  std::span<char> helloScratch() { return {hello_scratch_.get(), tls::kMaxClientHello}; }
  // Where a session builds the PROXY header it sends (reused: no allocation per connection).
  std::string& headerScratch() { return header_scratch_; }
  std::unique_ptr<char[]> takeBuffer();
  void giveBuffer(std::unique_ptr<char[]> buf);
  unsigned slot() const { return slot_; }

private:
  void setup();
  // Closes a client connection the listener's access list refuses, with a RST.
  static void refuse(int fd);
  // max_connections_per_client: counts session s's client, unless it holds its limit already
  // (then returns false and counts nothing).
  bool holdClient(Session* s, uint32_t listener, const net::SockAddr& peer);
  void acceptFrom(size_t index);
  void acceptPending();
  bool holdingForNames();
  void pauseAccepting(int64_t until_ms);
  void dispatch(const engine::Event& ev);
  void onSignal();
  void expireTimers();
  void runDeferred();
  void reconcileSteered();
  int waitTimeout() const;
  TimerList* timerList(int64_t duration_ms);
  Session* newSession();

  const config::Config& cfg_;
  unsigned slot_;
  std::vector<ListenSocket> sockets_;
  std::vector<Endpoint> listen_eps_;
  std::vector<bool> accept_pending_;
  steer::SlotLoad load_;
  std::vector<weir_client_limit> client_limits_;  // per listener (rate_per_client)
  // The connections this worker holds against max_connections_per_client (nullptr: no
  // listener has one), which the master gives back if this worker dies.
  steer::ClientHolds* holds_ = nullptr;
  const shm::BackendMap& backends_;
  shm::WorkerSlot& stats_;

  std::unique_ptr<engine::Engine> engine_;
  net::UniqueFd signal_fd_;
  Endpoint signal_ep_{EndpointKind::Signal, nullptr};
  net::PipePool pipes_;
  std::vector<std::unique_ptr<TimerList>> timer_lists_;
  std::vector<std::unique_ptr<PoolRuntime>> pools_;
  std::vector<std::unique_ptr<ListenerRuntime>> listeners_;
  std::shared_ptr<const tls::Contexts> tls_;
  std::unique_ptr<char[]> hello_scratch_;
  std::string header_scratch_;
  std::vector<std::unique_ptr<char[]>> free_buffers_;  // CopyBuffer storage, at most kFreeBuffers

  std::vector<std::unique_ptr<Session>> all_sessions_;
  std::vector<Session*> free_sessions_;
  std::vector<Session*> ready_;
  std::vector<Session*> dead_;

  int64_t now_ms_ = 0;
  int64_t accept_paused_until_ = 0;
  // Backend names not yet answered (shm Header::names_unanswered: a first start, or a reload
  // that added a name): the listeners of names_hold_ (by socket) accept nothing until then, or
  // until this time (0: not holding).
  int64_t names_hold_until_ms_ = 0;
  std::vector<bool> names_hold_;
  int64_t next_reconcile_ms_ = 0;
  int64_t next_pipe_trim_ms_ = 0;
  uint64_t active_ = 0;
  uint64_t accepted_ = 0;  // also the id of the last connection accepted (see Session::start)
  int64_t last_emfile_log_ms_ = -1000000;
  bool stopping_ = false;  // SIGQUIT: no more accepts, exit when idle
  bool exit_now_ = false;  // SIGTERM/SIGINT
};

// Current CLOCK_MONOTONIC time in milliseconds.
int64_t monotonicMs();

}  // namespace weir::worker
