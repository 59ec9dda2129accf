#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include <openssl/ssl.h>

#include "config/config.h"

namespace weir::tls {

struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
// One TLS connection. Freeing it neither sends close_notify nor closes its socket.
using UniqueSsl = std::unique_ptr<SSL, SslFree>;

// The client side of a pool's [tls]: one OpenSSL SSL_CTX from which every connection to the
// pool's backends (traffic and health checks) is made. Built once per pool at start-up, then
// only read: newSsl is cheap and may be called on the data path.
//
// Policy, whatever the config: TLS 1.2 or 1.3 only, no compression, no renegotiation (a
// backend's HelloRequest is refused). verify = true checks the chain against `ca` (or the
// system's default store) and, when `sni` is set, that the certificate names it; verify =
// false checks nothing, explicitly. Without `sni`, a connection to a backend given by name
// sends and checks that name instead (newSsl's `name`), as a client that dialled the name
// would.
//
// The connections it makes write with write(2) (OpenSSL's socket BIO), so a process that
// uses it must ignore SIGPIPE, as the workers and the health checker do.
class ClientContext {
public:
  // Builds the context. Throws std::runtime_error on any failure, naming the file and where
  // the config set it ("FILE:LINE:COL: pools.app.tls.ca: cannot load CA file /x.pem: ...")
  // for an unreadable CA bundle or client certificate, a bad key or a key that does not
  // match its certificate; naming the string for a cipher list that selects nothing.
  static ClientContext build(const config::UpstreamTls& tls);

  ClientContext(ClientContext&&) noexcept;
  ClientContext& operator=(ClientContext&&) noexcept;
  ClientContext(const ClientContext&) = delete;
  ClientContext& operator=(const ClientContext&) = delete;
  ~ClientContext();

  // A client connection over `fd`, a connected (or connecting) non-blocking socket that the
  // caller keeps owning. It sends the SNI and, with verify on, checks the host name (the
  // configured `sni`, else `name`: a named backend's host name; neither: none); it is
  // in connect state: the caller drives SSL_connect, SSL_read and SSL_write and waits on the
  // socket for SSL_ERROR_WANT_READ/WRITE. Every handshake is a full one. Returns nullptr
  // only when OpenSSL fails to allocate; the reason is then in the error queue (takeErrors).
  UniqueSsl newSsl(int fd, const std::string& name = {}) const;

  // The same, but it offers the session last negotiated with backend number `backend` (any
  // index the caller chooses, e.g. into Pool::backends), and the sessions this connection
  // receives become that backend's. A resumed handshake skips the certificate exchange
  // (SSL_session_reused tells). A session stays resumable only if its connection ends with
  // SSL_shutdown (our close_notify): OpenSSL forgets the sessions of connections freed
  // without one, which it must assume went wrong. Thread-safe.
  UniqueSsl newResumableSsl(int fd, size_t backend, const std::string& name = {});

  // Sessions held for resumption (one per backend at most).
  size_t cachedSessions() const;

  SSL_CTX* get() const { return ctx_.get(); }

private:
  struct CtxFree {
    void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
  };
  struct Sessions;  // the per-backend cache, at a stable address for OpenSSL's callback

  ClientContext(std::unique_ptr<SSL_CTX, CtxFree> ctx, const config::UpstreamTls& tls);
  static int onNewSession(SSL* ssl, SSL_SESSION* session);

  std::unique_ptr<SSL_CTX, CtxFree> ctx_;
  std::unique_ptr<Sessions> sessions_;
  std::string sni_;
  bool verify_ = true;
};

// Why a TLS call on `ssl` failed, for logs and health check results, given the
// SSL_get_error() of the call (not WANT_READ/WANT_WRITE, which are not failures):
// "tls: certificate verify failed (unable to get local issuer certificate)",
// "tls: wrong version number", "tls: Connection reset by peer". Empties the error queue.
std::string failureText(const SSL* ssl, int ssl_error);

}  // namespace weir::tls
