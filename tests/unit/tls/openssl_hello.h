#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace weir::tls::testing {

// What the OpenSSL client sends first, for tests of the ClientHello parser on real bytes.
struct ClientOptions {
  std::string sni;                // empty: no server_name extension
  std::vector<std::string> alpn;  // empty: no ALPN extension
  bool tls12_only = false;        // max version TLS 1.2: no supported_versions extension
  size_t padding = 0;             // > 0: a private extension with this many bytes of data
  size_t max_fragment = 0;        // > 0: OpenSSL splits the hello into records this large
};

// Runs SSL_connect once on a client with memory BIOs and returns the bytes it wrote: its
// ClientHello records. Fails the current test (and returns nothing) if OpenSSL refuses.
std::vector<uint8_t> opensslClientHello(const ClientOptions& options);

// The handshake message carried by the records of `stream` (record headers removed), assuming
// well-formed records; for re-fragmenting a real hello.
std::vector<uint8_t> handshakeMessage(const std::vector<uint8_t>& stream);

// `message` cut into handshake records of the given payload sizes (the last repeats until the
// message is used up), record version 0x0301 first and 0x0303 after.
std::vector<uint8_t> intoRecords(const std::vector<uint8_t>& message,
                                 const std::vector<size_t>& sizes);

}  // namespace weir::tls::testing
