#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "tls/sni.h"
#include "tls/ticket_keys.h"

namespace weir::tls {

// The OpenSSL server side of one tls-terminate listener, built by the master from
// [listeners.NAME.tls] before it forks the workers (so keys are read while the master still
// has its privileges, and no worker ever builds or changes a context per connection).
//
// One SSL_CTX per configured certificate, configured alike. The first is the default; when a
// client's SNI names a host that another certificate serves (its SAN DNS names, or its CN
// when it has none; "*.example.com" covers one label), the handshake switches to that one.
// ALPN picks by the listener's order of preference. Session resumption is by stateless
// tickets under the listener's TicketKeys (shared by every worker, rotated); there is no
// per-process session cache, which would not be shared.
class ServerContext {
public:
  // Throws std::runtime_error naming the file (and where the config names it) when a
  // certificate or key cannot be loaded or do not match, or a cipher/group list is invalid.
  // `keys` may be null when session_tickets is off.
  ServerContext(const config::ServerTls& cfg, std::shared_ptr<TicketKeys> keys);
  ~ServerContext();
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  // A new server-side SSL for an accepted socket, or nullptr (OpenSSL out of memory).
  SSL* newSsl(int fd) const;
  // The names each certificate serves, in config order (for logs and `weir -t`).
  const std::vector<std::vector<std::string>>& names() const { return names_; }

private:
  static int onServerName(SSL* ssl, int* alert, void* arg);
  static int onAlpn(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                    const unsigned char* in, unsigned int inlen, void* arg);
  static int onTicket(SSL* ssl, unsigned char key_name[16], unsigned char* iv,
                      EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int enc);
  SSL_CTX* makeCtx(const config::ServerTls& cfg, const config::CertKey& pair);

  std::vector<SSL_CTX*> ctxs_;
  std::vector<std::vector<std::string>> names_;
  SniTable by_name_;  // certificate name -> index into ctxs_ (exact names over wildcards)
  std::string alpn_;  // wire format: length-prefixed names
  std::shared_ptr<TicketKeys> keys_;
  EVP_CIPHER* ticket_cipher_ = nullptr;  // AES-256-CBC, fetched once
};

// Whether this kernel offers kTLS (the "tls" TCP upper-layer protocol). Probed once per
// process; without it contexts leave SSL_OP_ENABLE_KTLS off, sparing two failing setsockopt
// calls per handshake.
bool kernelHasKtls();

// Index for SSL_CTX ex_data that points back at the owning ServerContext.
int serverContextIndex();

}  // namespace weir::tls
