#pragma once

#include <openssl/types.h>

#include <memory>
#include <string>

#include "support/testsrv/options.h"

namespace weir::testsrv {

// The server-side SSL_CTX built from the --tls-* options: TLS 1.2 and 1.3, OpenSSL's default
// session tickets (so clients can resume), optional client-certificate checking and ALPN
// selection. Its callbacks record the client's SNI and ALPN offer in the connection's
// TlsStream (the SSL's app data), so a test can read back what the client sent.
class TlsContext {
public:
  // Returns null with the reason in `*error` when a file cannot be loaded.
  static std::unique_ptr<TlsContext> create(const Options& options, std::string* error);
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  ~TlsContext();

  SSL_CTX* get() const { return ctx_; }

private:
  TlsContext() = default;
  static int onServerName(SSL* ssl, int* alert, void* arg);
  static int onAlpn(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                    const unsigned char* in, unsigned int inlen, void* arg);

  SSL_CTX* ctx_ = nullptr;
  std::string alpn_wire_;  // --tls-alpn in wire format (length-prefixed names)
};

// OpenSSL's error queue of this thread as "what: reason; reason", emptied.
std::string takeTlsErrors(const std::string& what);

}  // namespace weir::testsrv
