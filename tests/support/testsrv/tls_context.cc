#include "support/testsrv/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "support/testsrv/tls_stream.h"

namespace weir::testsrv {

namespace {

// Session ids and tickets are only resumed within this context (OpenSSL refuses to resume
// without one once client certificates are verified).
constexpr unsigned char kSessionContext[] = "weir-testsrv";

}  // namespace

std::string takeTlsErrors(const std::string& what) {
  std::string out = what;
  bool first = true;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += first ? ": " : "; ";
    out += buf;
    first = false;
  }
  return out;
}

std::unique_ptr<TlsContext> TlsContext::create(const Options& options, std::string* error) {
  std::unique_ptr<TlsContext> c(new TlsContext());
  c->ctx_ = SSL_CTX_new(TLS_server_method());
  if (c->ctx_ == nullptr) {
    *error = takeTlsErrors("SSL_CTX_new");
    return nullptr;
  }
  SSL_CTX* ctx = c->ctx_;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // A client that closes TCP without close_notify is an EOF like any other, not an error:
  // test clients often just shut down.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  // The write buffer is Conn's output queue, which may move between retries; a partial write
  // is fine (the rest stays queued).
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
  if (SSL_CTX_use_certificate_chain_file(ctx, options.tls_cert.c_str()) != 1) {
    *error = takeTlsErrors("--tls-cert " + options.tls_cert);
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, options.tls_key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    *error = takeTlsErrors("--tls-key " + options.tls_key);
    return nullptr;
  }
  if (!options.tls_client_ca.empty()) {
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.tls_client_ca.c_str());
    if (names == nullptr ||
        SSL_CTX_load_verify_locations(ctx, options.tls_client_ca.c_str(), nullptr) != 1) {
      sk_X509_NAME_pop_free(names, X509_NAME_free);
      *error = takeTlsErrors("--tls-client-ca " + options.tls_client_ca);
      return nullptr;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  for (const std::string& p : options.tls_alpn) {
    c->alpn_wire_ += static_cast<char>(p.size());
    c->alpn_wire_ += p;
  }
  SSL_CTX_set_tlsext_servername_callback(ctx, &TlsContext::onServerName);
  SSL_CTX_set_alpn_select_cb(ctx, &TlsContext::onAlpn, c.get());
  return c;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

int TlsContext::onServerName(SSL* ssl, int*, void*) {
  // Called while the ClientHello is processed, so this is the name the client sent (after
  // the handshake, a resumed TLS 1.2 session would report the session's name instead).
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  static_cast<TlsStream*>(SSL_get_app_data(ssl))->setSni(name == nullptr ? "" : name);
  return SSL_TLSEXT_ERR_OK;
}

int TlsContext::onAlpn(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                       const unsigned char* in, unsigned int inlen, void* arg) {
  std::string offered;
  for (unsigned i = 0; i < inlen;) {
    const unsigned len = in[i];
    if (i + 1 + len > inlen) {
      break;  // OpenSSL validated the list already; never trust a length anyway
    }
    if (!offered.empty()) {
      offered += ',';
    }
    offered.append(reinterpret_cast<const char*>(in + i + 1), len);
    i += 1 + len;
  }
  static_cast<TlsStream*>(SSL_get_app_data(ssl))->setAlpnOffered(offered);
  const auto* self = static_cast<const TlsContext*>(arg);
  unsigned char* selected = nullptr;
  if (self->alpn_wire_.empty() ||
      SSL_select_next_proto(&selected, outlen,
                            reinterpret_cast<const unsigned char*>(self->alpn_wire_.data()),
                            static_cast<unsigned>(self->alpn_wire_.size()), in,
                            inlen) != OPENSSL_NPN_NEGOTIATED) {
    // No common protocol: go on without ALPN (as openssl s_server does) rather than fail.
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace weir::testsrv
