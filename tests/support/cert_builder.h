#pragma once

// Keys and certificates made in-process with OpenSSL, for tests that need real PEM files: a
// CA, leaves it signs, expired or expiring ones. Nothing here is fit for production use.

#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include <openssl/types.h>

namespace weir::test {

class TestKey {
public:
  // A fresh EC P-256 or RSA 2048 key. Throws std::runtime_error if OpenSSL fails.
  static TestKey ecP256();
  static TestKey rsa2048();

  EVP_PKEY* get() const { return key_.get(); }
  // PKCS#8 PEM; encrypted with AES-256-CBC when `passphrase` is not empty.
  std::string pem(const std::string& passphrase = "") const;

private:
  explicit TestKey(EVP_PKEY* key);
  std::shared_ptr<EVP_PKEY> key_;
};

struct CertSpec {
  std::string common_name = "weir test";  // empty: a subject without a common name
  std::vector<std::string> dns_names;     // subjectAltName DNS entries; none: no extension
  time_t now = 0;                         // what valid_from/until count from; 0: the clock
  int64_t valid_from = -3600;             // seconds from now (negative: in the past)
  int64_t valid_until = 30 * 86400;       // seconds from now
  bool ca = false;                        // basicConstraints CA:TRUE, keyCertSign
};

class TestCert {
public:
  // A certificate for `key`, signed by `issuer_key` under `issuer`'s name; self-signed when
  // issuer is null. Throws std::runtime_error if OpenSSL fails.
  static TestCert make(const CertSpec& spec, const TestKey& key, const TestCert* issuer = nullptr,
                       const TestKey* issuer_key = nullptr);

  X509* get() const { return cert_.get(); }
  std::string pem() const;

private:
  explicit TestCert(X509* cert);
  std::shared_ptr<X509> cert_;
};

}  // namespace weir::test
