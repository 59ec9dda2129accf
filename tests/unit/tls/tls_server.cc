#include "tls/tls_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <stdexcept>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls/errors.h"

namespace weir::tls {
namespace {

constexpr int kIoTimeoutS = 5;  // bounds a client that stalls mid-handshake

SSL_CTX* sslCtx(void* p) { return static_cast<SSL_CTX*>(p); }

int selectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned inlen, void* arg) {
  const auto* wire = static_cast<const std::string*>(arg);
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen,
                            reinterpret_cast<const unsigned char*>(wire->data()),
                            static_cast<unsigned>(wire->size()), in,
                            inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

std::string commonName(X509* cert) {
  char buf[256] = {};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf,
                                sizeof buf) < 0) {
    return {};
  }
  return buf;
}

}  // namespace

void ignoreSigpipe() { ::signal(SIGPIPE, SIG_IGN); }

TlsTestServer::TlsTestServer(Options options) : options_(std::move(options)) {
  ignoreSigpipe();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  ctx_ = ctx;
  if (ctx == nullptr ||
      SSL_CTX_use_certificate_chain_file(ctx, options_.cert_file.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, options_.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      (options_.max_version != 0 &&
       SSL_CTX_set_max_proto_version(ctx, options_.max_version) != 1)) {
    SSL_CTX_free(ctx);
    throw std::runtime_error(takeErrors("TlsTestServer: " + options_.cert_file));
  }
  // Resumption with client certificates needs a session id context.
  static const unsigned char kSidContext[] = "weir-test";
  SSL_CTX_set_session_id_context(ctx, kSidContext, sizeof kSidContext - 1);
  if (!options_.client_ca_file.empty()) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    if (SSL_CTX_load_verify_file(ctx, options_.client_ca_file.c_str()) != 1) {
      SSL_CTX_free(ctx);
      throw std::runtime_error(takeErrors("TlsTestServer: " + options_.client_ca_file));
    }
  }
  for (const std::string& p : options_.alpn) {
    alpn_wire_ += static_cast<char>(p.size());
    alpn_wire_ += p;
  }
  if (!alpn_wire_.empty()) {
    SSL_CTX_set_alpn_select_cb(ctx, selectAlpn, &alpn_wire_);
  }

  listener_ = net::UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (!listener_ || ::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), len) < 0 ||
      ::listen(listener_.get(), 16) < 0 ||
      ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
    SSL_CTX_free(ctx);
    throw std::runtime_error("TlsTestServer: cannot listen on 127.0.0.1");
  }
  port_ = ntohs(addr.sin_port);
  stop_ = net::UniqueFd(::eventfd(0, EFD_CLOEXEC));
  thread_ = std::thread([this] { serve(); });
}

TlsTestServer::~TlsTestServer() {
  uint64_t one = 1;
  (void)::write(stop_.get(), &one, sizeof one);
  thread_.join();
  SSL_CTX_free(sslCtx(ctx_));
}

std::optional<TlsTestServer::Seen> TlsTestServer::next(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [this] { return !seen_.empty(); })) {
    return std::nullopt;
  }
  Seen s = std::move(seen_.front());
  seen_.pop_front();
  return s;
}

void TlsTestServer::serve() {
  pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
  for (;;) {
    if (::poll(fds, 2, -1) < 0) {
      continue;  // EINTR
    }
    if (fds[1].revents != 0) {
      return;
    }
    net::UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) {
      continue;
    }
    timeval tv{kIoTimeoutS, 0};
    ::setsockopt(conn.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(conn.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    Seen s = handle(conn.get());
    std::lock_guard<std::mutex> lock(mu_);
    seen_.push_back(std::move(s));
    cv_.notify_all();
  }
}

TlsTestServer::Seen TlsTestServer::handle(int fd) {
  Seen s;
  clearErrors();
  SSL* ssl = SSL_new(sslCtx(ctx_));
  SSL_set_fd(ssl, fd);
  const bool ok = SSL_accept(ssl) == 1;
  if (const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) {
    s.sni = name;  // known once the ClientHello was read, even if the handshake failed
  }
  if (!ok) {
    s.error = takeErrors("accept");
    SSL_free(ssl);
    return s;
  }
  s.handshake_ok = true;
  const unsigned char* alpn = nullptr;
  unsigned alpn_len = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
  if (alpn != nullptr) {
    s.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
  }
  if (X509* peer = SSL_get1_peer_certificate(ssl)) {
    s.client_cn = commonName(peer);
    X509_free(peer);
  }
  s.resumed = SSL_session_reused(ssl) == 1;
  // The greeting and close_notify may meet a client that already left: not the server's
  // concern (SIGPIPE is ignored).
  (void)SSL_write(ssl, options_.greeting.data(), static_cast<int>(options_.greeting.size()));
  (void)SSL_shutdown(ssl);
  clearErrors();
  SSL_free(ssl);
  return s;
}

}  // namespace weir::tls
