#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "net/address.h"
#include "net/pipe_pool.h"
#include "net/unique_fd.h"
#include "tls/client_context.h"
#include "worker/timer_list.h"

namespace weir::worker {

class Worker;
struct PoolRuntime;
struct ListenerRuntime;

// A user-space buffer for the flows that cannot splice (one side speaks TLS through OpenSSL)
// and for the first, small messages of those that can.
// Taken from the worker's pool while it holds bytes, given back when empty.
struct CopyBuffer {
  static constexpr size_t kSize = 16384;  // one TLS record's plaintext
  std::unique_ptr<char[]> data;
  uint32_t off = 0;  // at most kSize: 32 bits keep the Session small
  uint32_t len = 0;
};


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
  BadHello,       // tls-passthrough: not TLS, a malformed or too large ClientHello, or EOF
  HelloTimeout,   // tls-passthrough: no complete ClientHello within client_hello_timeout
  TlsFailed,      // tls-terminate: the handshake with the client failed
  TlsTimeout,     // tls-terminate: no complete handshake within handshake_timeout
  ProxyUntrusted,  // accept_proxy_protocol: the peer is outside the listener's `trusted`
  BadProxyHeader,  // accept_proxy_protocol: a malformed or partial PROXY header, or none
  ProxyTimeout,    // accept_proxy_protocol: no complete header within proxy_protocol_timeout
};
// How many CloseReasons there are (the last one + 1): shm counts each (kCloseReasonSlots).
inline constexpr size_t kCloseReasons = static_cast<size_t>(CloseReason::ProxyTimeout) + 1;
const char* toString(CloseReason reason);

enum class EndpointKind : uint8_t { Listener, Client, Upstream, Signal };

// What an engine's readiness report points at (engine::Event::ptr): which kind of object
// owns the fd.
struct Endpoint {
  EndpointKind kind;
  void* owner;
};

// One proxied connection: client socket, backend socket and two flows between them.
//
// A listener with accept_proxy_protocol first reads the PROXY header a trusted balancer sends
// (peeked until complete, then exactly its bytes are read, so the client's own bytes stay in
// the socket); its source stands for the client from then on. A pool with proxy_protocol gets
// a header right after the connect, before anything else (its own TLS handshake included).
// A pool with tcp_fastopen connects with what the client has sent so far (that header first)
// as the SYN's data; those bytes stay in c2u_.buf until a connect succeeds, and the flow
// starts with what the SYN did not carry.
//
// Before the flows start, a TLS listener has a first phase on the client socket alone:
// tls-passthrough peeks at the ClientHello (MSG_PEEK, so the bytes stay in the socket and are
// spliced on unchanged) until it is complete and picks the pool by its SNI; tls-terminate
// runs the server handshake. A pool with [tls] adds a client handshake after the connect.
// A flow whose ends are both plain sockets splices, as does one from a plain socket into a
// kTLS socket (the kernel encrypts); any other flow with a TLS end copies through a pooled
// CopyBuffer with SSL_read/SSL_write.
//
// A direction between plain sockets starts with recv()/send() through a pooled 16 KiB
// CopyBuffer: a small message costs two calls and no pipe. The first read that fills the buffer
// marks the flow as bulk traffic, and once that buffer is out the direction splices for good:
// splice(src -> pipe) then splice(pipe -> dst), with no copy into user space.
// A direction holds a pipe from the worker's pool only while bytes sit in it. Reading stops
// while the pipe holds bytes the destination has not taken (backpressure: memory per
// connection is bounded by one pipe per direction). Both fds are watched once by the worker's
// engine (epoll or io_uring, lb/engine), edge-triggered, for IN|OUT|RDHUP; the readiness
// flags below remember the last edge, and EAGAIN clears them, so nothing is re-registered.
class Session {
public:
  enum class State {
    Idle,
    ProxyHeader,
    Hello,
    Handshake,
    Connecting,
    UpHandshake,
    Retrying,
    Streaming,
    Closed
  };

  explicit Session(Worker* worker);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Takes an accepted client socket and starts connecting to a backend of `pool`. `id` names
  // the connection in log lines ([C<id>], conn=<slot>-<id>): unique within the worker, unlike
  // the Session object, which is reused for connection after connection.
  void start(net::UniqueFd client, const net::SockAddr& peer, const ListenerRuntime& listener,
             uint64_t id, int64_t now_ms);
  // A readiness report (EPOLL* bits) for the client (upstream = false) or backend socket.
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
  // This session's index among the worker's sessions: its entry in the worker's ClientHolds
  // (max_connections_per_client).
  uint32_t index = 0;
  TimerHook timer;

private:
  struct Side {
    Endpoint ep;
    net::UniqueFd fd;
    bool readable = false;
    bool writable = false;
    bool eof = false;      // read returned 0
    bool shut_wr = false;  // we sent FIN
    bool hup = false;      // epoll reported RDHUP/HUP/ERR (the peer closed or reset)
    bool fin = false;      // epoll reported RDHUP without ERR: the peer's FIN is queued
    bool ktls_send = false;  // the kernel encrypts what is written: flows into it splice
    tls::UniqueSsl ssl;      // TLS on this side (tls-terminate client, [tls] pool backend)
  };
  struct Flow {
    net::Pipe pipe;
    size_t in_pipe = 0;
    uint64_t bytes = 0;
    bool splicing = false;  // copied through a buffer until a read filled it, spliced since
    bool bulk = false;  // a read filled most of a default pipe: ask for large pipes from now on
    CopyBuffer buf;     // small messages, and flows with a TLS end
  };
  enum class Pump { Blocked, Yield, Done, Failed };

  // What the listener does with a client once it is known who the client is (after the PROXY
  // header, if the listener accepts one): connect, or peek at the hello, or handshake.
  void begin();
  void readProxyHeader();
  // The PROXY header of pools with proxy_protocol, sent right after the connect; false (and
  // the session closed) if it could not be.
  bool sendProxyHeader();
  // Writes the PROXY header into the worker's header scratch; false (and the session closed)
  // if the client's local address is unknown.
  bool encodeProxyHeader();
  // tcp_fastopen: the bytes for the SYN, read once (PROXY header first, then what the client
  // has sent so far) into c2u_.buf, where they stay until a connect succeeds, so a retry sends
  // them again. Sets early_ if the client had sent something; may close the session.
  void takeEarlyData();
  // After a fast-open connect: the held bytes the SYN did not carry are what the flow sends
  // first. The PROXY header's remainder goes now; false (and the session closed) on failure.
  bool skipEarlyData();
  void peekHello();
  enum class Handshake { Done, Wait, Failed };
  Handshake handshakeStep(Side& side);
  void serverHandshake();
  void upstreamHandshake();
  void connected();
  // The backend is connected (and TLS is up, if the pool speaks it): the flows start.
  void startStreaming();
  // The pool of the first SNI route of the listener that matches `name`, else the default.
  void route(const std::string& name);
  void connectNext();
  void connectFailed(int err);
  // backend_'s address: the config's, or what its named slot holds now (nullopt: empty).
  std::optional<net::SockAddr> backendAddress() const;
  // backend_ for logs: its address, or its name if its slot is empty by now.
  std::string backendText() const;
  // The debug line about the failed connect to backend_ (last_error_ says why).
  void logConnectFailure() const;
  void endReservation(bool connected);
  void pumpAll();
  // Whether bytes from `from` to `to` may splice: neither end is TLS that OpenSSL handles.
  static bool splices(const Side& from, const Side& to);
  // What a recv() of `n` bytes (of `asked`) from a plain socket says: a full read turns a
  // flow that may splice into a splicing one; a short one reached the end (after a FIN) or
  // emptied the socket.
  static void noteRead(Flow& flow, Side& from, bool may_splice, size_t n, size_t asked);
  // One flow's turn: copy() until it turns bulk when it may splice, pump() from then on.
  Pump move(Flow& flow, Side& from, Side& to, CloseReason from_err, CloseReason to_err);
  Pump pump(Flow& flow, Side& from, Side& to, CloseReason from_err, CloseReason to_err);
  Pump copy(Flow& flow, Side& from, Side& to, CloseReason from_err, CloseReason to_err);
  void releasePipe(Flow& flow);
  void releaseBuffer(Flow& flow);
  // The FIN of `from` reached `to`: close_notify first when `to` speaks TLS, then FIN.
  void passFin(Side& to);
  void resetSide(Side& side, EndpointKind kind);

  // Every idle connection costs one Session: keep it small (the bench's idle workload
  // measures it) and the small fields together, so padding does not add up.
  Worker* worker_;
  uint64_t id_ = 0;
  Side client_;
  Side upstream_;
  Flow c2u_;
  Flow u2c_;
  net::SockAddr peer_;   // the client: the socket's peer, or the source of its PROXY header
  net::SockAddr via_;    // the socket's peer when a PROXY header named another client
  net::SockAddr local_;  // the address the client connected to (from the header, or the socket)
  PoolRuntime* pool_ = nullptr;
  const ListenerRuntime* listener_ = nullptr;
  std::string sni_;        // the client's SNI (TLS listeners), for the access log
  std::string tls_error_;  // OpenSSL's reason for the last TLS failure
  // What was wrong with the client's PROXY header: a static string, the parser's verdict
  // when proxy_error_is_status_.
  const char* proxy_error_ = nullptr;
  uint64_t tried_ = 0;  // bitmask over the first 64 backends of the pool
  int64_t started_ms_ = 0;
  State state_ = State::Idle;
  int backend_ = -1;
  uint32_t attempts_ = 0;
  int last_error_ = 0;
  // tcp_fastopen: c2u_.buf holds bytes for the SYN; the first early_header_ are the PROXY
  // header, early_sent_ is how many the kernel took with the current attempt's connect.
  uint32_t early_sent_ = 0;
  uint16_t early_header_ = 0;
  bool early_ = false;
  uint8_t proxy_in_ = 0;  // version of the PROXY header received (0: none)
  bool proxy_error_is_status_ = false;
  bool reserved_ = false;  // backend_'s shared active count includes this session
  bool moved_ = false;  // bytes moved during the current dispatch (re-arms the idle timer)
};

}  // namespace weir::worker
