#include "tls/server_context.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <stdexcept>

#include "net/unique_fd.h"
#include "tls/cert_check.h"
#include "tls/errors.h"

namespace weir::tls {
namespace {

int versionOf(config::TlsVersion v) {
  return v == config::TlsVersion::V1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
}

std::string at(const config::FileRef& f) {
  return (f.where.empty() ? std::string() : f.where + ": ") + f.path;
}

}  // namespace

bool kernelHasKtls() {
  // Asked once per process, by the master (root: the kernel may load the tls module for it):
  // can a connected TCP socket take the "tls" upper-layer protocol?
  static const bool has = [] {
    net::UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    net::UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!listener || !client) {
      return false;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener.get(), 1) != 0 ||
        ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
        ::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      return false;
    }
    return ::setsockopt(client.get(), IPPROTO_TCP, TCP_ULP, "tls", 3) == 0;
  }();
  return has;
}

int serverContextIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

ServerContext::ServerContext(const config::ServerTls& cfg, std::shared_ptr<TicketKeys> keys)
    : keys_(std::move(keys)) {
  ticket_cipher_ = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  if (ticket_cipher_ == nullptr) {
    throw std::runtime_error(takeErrors("tls: no AES-256-CBC for session tickets"));
  }
  for (const std::string& p : cfg.alpn) {
    alpn_.push_back(static_cast<char>(p.size()));
    alpn_ += p;
  }
  try {
    for (const config::CertKey& pair : cfg.certificates) {
      ctxs_.push_back(makeCtx(cfg, pair));
    }
  } catch (...) {
    for (SSL_CTX* c : ctxs_) {
      SSL_CTX_free(c);
    }
    EVP_CIPHER_free(ticket_cipher_);
    throw;
  }
  if (ctxs_.empty()) {
    EVP_CIPHER_free(ticket_cipher_);
    throw std::runtime_error("tls: no certificate configured");
  }
  std::vector<SniTable::Entry> entries;
  for (size_t i = 0; i < names_.size(); ++i) {
    for (const std::string& n : names_[i]) {
      entries.push_back({n, i});
    }
  }
  by_name_ = SniTable(std::move(entries));
}

ServerContext::~ServerContext() {
  for (SSL_CTX* c : ctxs_) {
    SSL_CTX_free(c);
  }
  EVP_CIPHER_free(ticket_cipher_);
}

SSL_CTX* ServerContext::makeCtx(const config::ServerTls& cfg, const config::CertKey& pair) {
  clearErrors();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) {
    throw std::runtime_error(takeErrors("tls: SSL_CTX_new"));
  }
  auto fail = [&](const std::string& what) {
    SSL_CTX_free(ctx);
    throw std::runtime_error(takeErrors(what));
  };
  SSL_CTX_set_min_proto_version(ctx, versionOf(cfg.min_version));
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  uint64_t options = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                     SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF |
                     SSL_OP_ENABLE_KTLS | SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION;
  if (!cfg.session_tickets) {
    options |= SSL_OP_NO_TICKET;
  }
  if (!kernelHasKtls()) {
    // OpenSSL would try (and fail) two setsockopt calls per handshake to find out.
    options &= ~static_cast<uint64_t>(SSL_OP_ENABLE_KTLS);
  }
  SSL_CTX_set_options(ctx, options);
  // Read-ahead: one read() fetches a record's header and body (and whatever follows) instead
  // of two reads per record. Bytes it buffers beyond a record are seen through
  // SSL_has_pending by the worker.
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  // Stateless tickets only: a session cache would be per worker, so useless across workers.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  static const unsigned char kSidCtx[] = "weir";
  SSL_CTX_set_session_id_context(ctx, kSidCtx, sizeof kSidCtx - 1);
  const std::string ciphers = cfg.ciphers.empty() ? config::kDefaultCiphers : cfg.ciphers;
  if (SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1) {
    fail("tls: ciphers \"" + ciphers + "\" names no usable TLS 1.2 suite");
  }
  const std::string suites =
      cfg.ciphersuites.empty() ? config::kDefaultCiphersuites : cfg.ciphersuites;
  if (SSL_CTX_set_ciphersuites(ctx, suites.c_str()) != 1) {
    fail("tls: ciphersuites \"" + suites + "\" is not a valid TLS 1.3 suite list");
  }
  const std::string groups = cfg.groups.empty() ? config::kDefaultGroups : cfg.groups;
  if (SSL_CTX_set1_groups_list(ctx, groups.c_str()) != 1) {
    fail("tls: groups \"" + groups + "\" is not a valid group list");
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, pair.cert.path.c_str()) != 1) {
    fail(at(pair.cert) + ": cannot load the certificate chain");
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, pair.key.path.c_str(), SSL_FILETYPE_PEM) != 1) {
    fail(at(pair.key) + ": cannot load the private key");
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    fail(at(pair.key) + ": the private key does not match the certificate " + pair.cert.path);
  }
  names_.push_back(certificateNames(SSL_CTX_get0_certificate(ctx)));
  SSL_CTX_set_ex_data(ctx, serverContextIndex(), this);
  SSL_CTX_set_tlsext_servername_callback(ctx, &ServerContext::onServerName);
  SSL_CTX_set_tlsext_servername_arg(ctx, this);
  if (!alpn_.empty()) {
    SSL_CTX_set_alpn_select_cb(ctx, &ServerContext::onAlpn, this);
  }
  if (cfg.session_tickets && keys_) {
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_timeout(ctx, static_cast<long>(keys_->rotation()));
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &ServerContext::onTicket);
  }
  return ctx;
}

SSL* ServerContext::newSsl(int fd) const {
  SSL* ssl = SSL_new(ctxs_[0]);
  if (ssl == nullptr) {
    clearErrors();
    return nullptr;
  }
  if (SSL_set_fd(ssl, fd) != 1) {
    clearErrors();
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  return ssl;
}

int ServerContext::onServerName(SSL* ssl, int* /*alert*/, void* arg) {
  auto* self = static_cast<ServerContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr || self->ctxs_.size() < 2) {
    return SSL_TLSEXT_ERR_OK;  // no SNI, or one certificate: the default serves
  }
  const std::optional<size_t> i = self->by_name_.lookup(name);
  if (i && *i != 0) {
    SSL_set_SSL_CTX(ssl, self->ctxs_[*i]);
  }
  return SSL_TLSEXT_ERR_OK;
}

int ServerContext::onAlpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* outlen,
                          const unsigned char* in, unsigned int inlen, void* arg) {
  auto* self = static_cast<ServerContext*>(arg);
  const auto* ours = reinterpret_cast<const unsigned char*>(self->alpn_.data());
  // Server preference: the first of our protocols that the client offers.
  for (size_t i = 0; i < self->alpn_.size(); i += 1 + ours[i]) {
    const unsigned len = ours[i];
    for (unsigned j = 0; j < inlen;) {
      const unsigned clen = in[j];
      if (j + 1 + clen > inlen) {
        break;  // OpenSSL validated the list already; belt and braces
      }
      if (clen == len && std::equal(ours + i + 1, ours + i + 1 + len, in + j + 1)) {
        *out = in + j + 1;
        *outlen = static_cast<unsigned char>(clen);
        return SSL_TLSEXT_ERR_OK;
      }
      j += 1 + clen;
    }
  }
  return SSL_TLSEXT_ERR_NOACK;  // no common protocol: go on without ALPN
}

int ServerContext::onTicket(SSL* ssl, unsigned char key_name[16], unsigned char* iv,
                            EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int enc) {
  auto* self = static_cast<ServerContext*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), serverContextIndex()));
  if (self == nullptr || !self->keys_) {
    return 0;
  }
  TicketKeys& keys = *self->keys_;
  keys.advance(::time(nullptr));
  const TicketKeys::Key* key = nullptr;
  int result = 1;
  // Fetched once: EVP_aes_256_cbc() would make OpenSSL 3 look the algorithm up by name in its
  // provider tables on every ticket.
  EVP_CIPHER* aes = self->ticket_cipher_;
  if (enc != 0) {
    key = &keys.current();
    std::copy(key->name, key->name + 16, key_name);
    if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(aes)) != 1) {
      return -1;
    }
    if (EVP_EncryptInit_ex2(cipher, aes, key->aes, iv, nullptr) != 1) {
      return -1;
    }
  } else {
    result = keys.find(key_name, &key);
    if (result == 0) {
      return 0;  // not ours, or older than the previous period: full handshake
    }
    if (EVP_DecryptInit_ex2(cipher, aes, key->aes, iv, nullptr) != 1) {
      return -1;
    }
  }
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<uint8_t*>(key->hmac),
                                        sizeof key->hmac),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end()};
  if (EVP_MAC_CTX_set_params(mac, params) != 1) {
    return -1;
  }
  // 2 = "valid, renew it": a resumed handshake also hands out a fresh ticket. Without that,
  // OpenSSL sends no ticket on a TLS 1.3 resumption, and a client that uses each ticket once
  // (as RFC 8446 advises, and browsers do) falls back to a full handshake every other time.
  return enc != 0 ? result : 2;
}

}  // namespace weir::tls
