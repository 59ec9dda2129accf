#include "support/testsrv/tls_stream.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "support/testsrv/tls_context.h"

namespace weir::testsrv {

void TlsStreamDeleter::operator()(TlsStream* stream) const { delete stream; }

TlsStream::TlsStream(SSL_CTX* ctx, int fd) {
  ssl_ = SSL_new(ctx);
  if (ssl_ != nullptr && SSL_set_fd(ssl_, fd) != 1) {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (ssl_ == nullptr) {
    ERR_clear_error();
    return;
  }
  SSL_set_app_data(ssl_, this);
  SSL_set_accept_state(ssl_);
}

TlsStream::~TlsStream() { SSL_free(ssl_); }

TlsStream::Step TlsStream::handshake(std::string* error) {
  ERR_clear_error();
  const int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    want_write_ = false;
    return Step::Done;
  }
  const int err = SSL_get_error(ssl_, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    want_write_ = err == SSL_ERROR_WANT_WRITE;
    return Step::Again;
  }
  const int saved = errno;
  if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    // No TLS error: the socket failed, or the client closed in the middle.
    *error = saved == 0 ? "client closed the connection during the TLS handshake"
                        : std::string("TLS handshake: ") + std::strerror(saved);
    return Step::Failed;
  }
  *error = takeTlsErrors("TLS handshake failed");
  return Step::Failed;
}

ssize_t TlsStream::fail(int rc, int hard_errno) {
  const int err = SSL_get_error(ssl_, rc);
  const int saved = errno;
  ERR_clear_error();
  want_write_ = err == SSL_ERROR_WANT_WRITE;
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    errno = EAGAIN;
  } else if (err == SSL_ERROR_SYSCALL && saved != 0 && saved != EAGAIN) {
    errno = saved;  // ECONNRESET, EPIPE: what the socket said
  } else {
    errno = hard_errno;
  }
  return -1;
}

ssize_t TlsStream::read(char* buf, size_t len) {
  ERR_clear_error();
  errno = 0;
  const int n = SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(len, 1 << 30)));
  if (n > 0) {
    want_write_ = false;
    return n;
  }
  // With SSL_OP_IGNORE_UNEXPECTED_EOF a bare TCP EOF also ends up here.
  if (SSL_get_error(ssl_, n) == SSL_ERROR_ZERO_RETURN) {
    ERR_clear_error();
    return 0;
  }
  return fail(n, ECONNRESET);
}

ssize_t TlsStream::write(const char* buf, size_t len) {
  ERR_clear_error();
  errno = 0;
  const int n = SSL_write(ssl_, buf, static_cast<int>(std::min<size_t>(len, 16 * 1024)));
  if (n > 0) {
    want_write_ = false;
    return n;
  }
  return fail(n, EPIPE);
}

void TlsStream::sendCloseNotify() {
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

TlsInfo TlsStream::info() const {
  TlsInfo i;
  i.version = SSL_get_version(ssl_);
  i.sni = sni_;
  const unsigned char* alpn = nullptr;
  unsigned alpn_len = 0;
  SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
  i.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
  i.alpn_offered = alpn_offered_;
  i.resumed = SSL_session_reused(ssl_) == 1;
  if (X509* cert = SSL_get0_peer_certificate(ssl_)) {
    char cn[256] = {};
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn,
                                  sizeof cn) > 0) {
      i.client_cert = cn;
    }
  }
  return i;
}

}  // namespace weir::testsrv
