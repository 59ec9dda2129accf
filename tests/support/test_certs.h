#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace weir::test {

// Certificates for TLS tests, made in-process with OpenSSL (no openssl(1), no fixtures that
// expire in the repository). Typical use:
//
//   TestCa ca("test CA");
//   Pem leaf = ca.issue({.common_name = "app", .dns_names = {"app.internal"}});
//   TempDir dir;
//   PemFiles files = writePem(dir, "app", leaf);          // dir/app.crt, dir/app.key
//   std::string ca_file = writeBundle(dir, "ca.crt", {ca.pem().cert});
//
// Every function throws std::runtime_error (with OpenSSL's reason) if OpenSSL fails.

enum class KeyType { EcP256, Rsa2048 };

// A certificate and its private key (PKCS#8, unencrypted), both PEM.
struct Pem {
  std::string cert;
  std::string key;
};

// Where writePem put them.
struct PemFiles {
  std::string cert;
  std::string key;
};

struct CertOptions {
  std::string common_name = "weir test";
  std::vector<std::string> dns_names;     // subjectAltName DNS:... entries
  std::vector<std::string> ip_addresses;  // subjectAltName IP:... entries ("127.0.0.1", "::1")
  KeyType key_type = KeyType::EcP256;
  // The validity window, relative to now. A negative not_after makes an expired certificate,
  // a positive not_before one that is not valid yet, a small not_after one about to expire.
  std::chrono::seconds not_before = std::chrono::hours(-1);
  std::chrono::seconds not_after = std::chrono::hours(24 * 30);
};

// A certificate authority: a self-signed root, or an intermediate issued by another TestCa.
// Copyable (it is only PEM text).
class TestCa {
public:
  // A new root CA with a fresh key, valid from an hour ago for ten years.
  explicit TestCa(const std::string& common_name = "weir test CA",
                  KeyType key_type = KeyType::EcP256);

  // A new end-entity certificate signed by this CA, for server and client authentication
  // (extendedKeyUsage serverAuth, clientAuth), with a fresh key of options.key_type. Its
  // `cert` is the leaf alone; append chain() for a server that must send its intermediates.
  Pem issue(const CertOptions& options) const;
  // A new intermediate CA signed by this one (options.dns_names and ip_addresses ignored).
  TestCa intermediate(const CertOptions& options) const;

  // This CA's own certificate and key.
  const Pem& pem() const { return pem_; }
  // The certificates a server sends after a leaf this CA issued: "" for a root; for an
  // intermediate, its own certificate then its issuers' up to (not including) the root.
  const std::string& chain() const { return chain_; }

private:
  TestCa(Pem pem, std::string chain) : pem_(std::move(pem)), chain_(std::move(chain)) {}

  Pem pem_;
  std::string chain_;
};

// Writes pem.cert to dir/STEM.crt and pem.key to dir/STEM.key (mode 0600); returns both paths.
PemFiles writePem(const TempDir& dir, const std::string& stem, const Pem& pem);
// Writes the concatenated PEM certificates to dir/NAME (a CA bundle, a leaf with its chain)
// and returns the path.
std::string writeBundle(const TempDir& dir, const std::string& name,
                        const std::vector<std::string>& certs);

}  // namespace weir::test
