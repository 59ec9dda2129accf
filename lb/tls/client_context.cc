#include "tls/client_context.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

#include <openssl/x509v3.h>

#include "tls/errors.h"

namespace weir::tls {
namespace {

struct SessionFree {
  void operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }
};
using UniqueSession = std::unique_ptr<SSL_SESSION, SessionFree>;

// Where a context keeps its Sessions and a connection its backend number (plus one, so that
// "no number" is the default nullptr). Indexes are process-wide; created once.
int ctxIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}
int sslIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// Throws "WHERE: what: OpenSSL's reasons"; WHERE is left out when the config did not say.
[[noreturn]] void fail(const config::FileRef& file, const std::string& what) {
  std::string where = file.where.empty() ? "" : file.where + ": ";
  throw std::runtime_error(takeErrors(where + what));
}

[[noreturn]] void failValue(const std::string& what) {
  throw std::runtime_error(takeErrors(what));
}

// The password callback: keys are read unattended, so an encrypted key is an error rather
// than a prompt on whatever terminal the master was started from.
int noPassword(char*, int, int, void*) { return 0; }

bool isIpLiteral(const std::string& name) {
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, name.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

// ALPN's wire format: each protocol name prefixed by its length (1..255).
std::string alpnWire(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const std::string& p : protocols) {
    if (p.empty() || p.size() > 255) {
      throw std::runtime_error("invalid ALPN protocol \"" + p + "\": must be 1 to 255 bytes");
    }
    wire += static_cast<char>(p.size());
    wire += p;
  }
  return wire;
}

void configure(SSL_CTX* ctx, const config::UpstreamTls& tls) {
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  // Partial writes and a moving buffer let the data path write what the socket takes and
  // retry from wherever its buffer has moved; idle connections give their buffers back.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  const int min = tls.min_version == config::TlsVersion::V1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (SSL_CTX_set_min_proto_version(ctx, min) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
    failValue("cannot set the TLS versions");
  }
  const std::string ciphers = tls.ciphers.empty() ? config::kDefaultCiphers : tls.ciphers;
  if (SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1) {
    failValue("invalid ciphers \"" + ciphers + "\"");
  }
  const std::string suites =
      tls.ciphersuites.empty() ? config::kDefaultCiphersuites : tls.ciphersuites;
  if (SSL_CTX_set_ciphersuites(ctx, suites.c_str()) != 1) {
    failValue("invalid ciphersuites \"" + suites + "\"");
  }
  SSL_CTX_set_default_passwd_cb(ctx, noPassword);

  if (tls.verify) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (tls.ca.empty()) {
      if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        failValue("cannot load the system's CA store");
      }
    } else if (SSL_CTX_load_verify_file(ctx, tls.ca.path.c_str()) != 1) {
      fail(tls.ca, "cannot load CA file " + tls.ca.path);
    }
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);  // asked for: any certificate will do
  }

  if (tls.client_certificate) {
    const config::CertKey& ck = *tls.client_certificate;
    if (SSL_CTX_use_certificate_chain_file(ctx, ck.cert.path.c_str()) != 1) {
      fail(ck.cert, "cannot load client certificate " + ck.cert.path);
    }
    // Also refuses a key that does not match the certificate ("key values mismatch").
    if (SSL_CTX_use_PrivateKey_file(ctx, ck.key.path.c_str(), SSL_FILETYPE_PEM) != 1) {
      fail(ck.key, "cannot load client key " + ck.key.path);
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
      fail(ck.key, "client key " + ck.key.path + " does not match certificate " + ck.cert.path);
    }
  }

  if (!tls.alpn.empty()) {
    const std::string wire = alpnWire(tls.alpn);
    // The one OpenSSL setter that returns 0 on success.
    if (SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                                static_cast<unsigned>(wire.size())) != 0) {
      failValue("cannot set the ALPN protocols");
    }
  }
}

}  // namespace

struct ClientContext::Sessions {
  mutable std::mutex mu;
  std::unordered_map<size_t, UniqueSession> by_backend;
};

ClientContext ClientContext::build(const config::UpstreamTls& tls) {
  clearErrors();
  std::unique_ptr<SSL_CTX, CtxFree> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) {
    failValue("SSL_CTX_new");
  }
  configure(ctx.get(), tls);
  return ClientContext(std::move(ctx), tls);
}

ClientContext::ClientContext(std::unique_ptr<SSL_CTX, CtxFree> ctx,
                             const config::UpstreamTls& tls)
    : ctx_(std::move(ctx)),
      sessions_(std::make_unique<Sessions>()),
      sni_(tls.sni),
      verify_(tls.verify) {
  // A client's sessions only reach the cache through the callback: OpenSSL cannot know which
  // server a later connection goes to, so it never looks sessions up by itself.
  SSL_CTX_set_session_cache_mode(ctx_.get(),
                                 SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx_.get(), onNewSession);
  SSL_CTX_set_ex_data(ctx_.get(), ctxIndex(), sessions_.get());
}

ClientContext::ClientContext(ClientContext&&) noexcept = default;
ClientContext& ClientContext::operator=(ClientContext&&) noexcept = default;
ClientContext::~ClientContext() = default;

UniqueSsl ClientContext::newSsl(int fd, const std::string& name) const {
  UniqueSsl ssl(SSL_new(ctx_.get()));
  if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) {
    return nullptr;
  }
  const std::string& server = sni_.empty() ? name : sni_;  // no copy per connection
  if (!server.empty()) {
    // RFC 6066: an address is never sent as a server name, but it is what the certificate
    // must then name (an IP subjectAltName).
    const bool ip = isIpLiteral(server);
    if (!ip && SSL_set_tlsext_host_name(ssl.get(), server.c_str()) != 1) {
      return nullptr;
    }
    if (verify_) {
      int ok = 1;
      if (ip) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), server.c_str());
      } else {
        SSL_set_hostflags(ssl.get(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set1_host(ssl.get(), server.c_str());
      }
      if (ok != 1) {
        return nullptr;
      }
    }
  }
  SSL_set_connect_state(ssl.get());
  return ssl;
}

UniqueSsl ClientContext::newResumableSsl(int fd, size_t backend, const std::string& name) {
  UniqueSsl ssl = newSsl(fd, name);
  if (!ssl) {
    return nullptr;
  }
  // backend + 1 fits: no caller has SIZE_MAX backends.
  SSL_set_ex_data(ssl.get(), sslIndex(), reinterpret_cast<void*>(backend + 1));
  std::lock_guard<std::mutex> lock(sessions_->mu);
  auto it = sessions_->by_backend.find(backend);
  if (it != sessions_->by_backend.end()) {
    // Takes its own reference. Its failure, like a session the backend no longer accepts,
    // only costs a full handshake.
    (void)SSL_set_session(ssl.get(), it->second.get());
  }
  return ssl;
}

size_t ClientContext::cachedSessions() const {
  std::lock_guard<std::mutex> lock(sessions_->mu);
  return sessions_->by_backend.size();
}

int ClientContext::onNewSession(SSL* ssl, SSL_SESSION* session) {
  auto key = reinterpret_cast<uintptr_t>(SSL_get_ex_data(ssl, sslIndex()));
  auto* sessions =
      static_cast<Sessions*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctxIndex()));
  if (key == 0 || sessions == nullptr) {
    return 0;  // made by newSsl: not kept; OpenSSL drops its reference
  }
  std::lock_guard<std::mutex> lock(sessions->mu);
  // TLS 1.3 servers often send two tickets; the last one wins.
  sessions->by_backend[key - 1] = UniqueSession(session);
  return 1;  // we keep the reference OpenSSL handed over
}

std::string failureText(const SSL* ssl, int ssl_error) {
  const int err = errno;  // before anything below can change it
  switch (ssl_error) {
    case SSL_ERROR_SSL: {
      std::string text = takeErrors("tls");
      // "certificate verify failed" alone does not say what to fix; the chain check does.
      const long verify = SSL_get_verify_result(ssl);
      if (verify != X509_V_OK) {
        text += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
      }
      return text;
    }
    case SSL_ERROR_SYSCALL:
      // OpenSSL 3 reports an EOF amid a record as SSL_ERROR_SSL ("unexpected eof while
      // reading"); what is left here is a socket error, or none for an EOF elsewhere.
      clearErrors();
      return err != 0 ? std::string("tls: ") + std::strerror(err)
                      : std::string("tls: connection closed");
    case SSL_ERROR_ZERO_RETURN:
      clearErrors();
      return "tls: closed by the peer (close_notify)";
    default:
      return takeErrors("tls: SSL_get_error " + std::to_string(ssl_error));
  }
}

}  // namespace weir::tls
