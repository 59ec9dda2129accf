#include "support/cert_builder.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdexcept>

namespace weir::test {
namespace {

void require(bool ok, const char* what) {
  if (!ok) {
    throw std::runtime_error(std::string("test certificates: ") + what + " failed");
  }
}

std::string drain(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

void addExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  require(ext != nullptr, "X509V3_EXT_conf_nid");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

}  // namespace

TestKey::TestKey(EVP_PKEY* key) : key_(key, EVP_PKEY_free) {
  require(key != nullptr, "key generation");
}

TestKey TestKey::ecP256() { return TestKey(EVP_EC_gen("P-256")); }

TestKey TestKey::rsa2048() { return TestKey(EVP_RSA_gen(2048)); }

std::string TestKey::pem(const std::string& passphrase) const {
  BIO* bio = BIO_new(BIO_s_mem());
  const EVP_CIPHER* cipher = passphrase.empty() ? nullptr : EVP_aes_256_cbc();
  require(PEM_write_bio_PKCS8PrivateKey(bio, key_.get(), cipher, passphrase.data(),
                                        static_cast<int>(passphrase.size()), nullptr,
                                        nullptr) == 1,
          "PEM_write_bio_PKCS8PrivateKey");
  return drain(bio);
}

TestCert::TestCert(X509* cert) : cert_(cert, X509_free) {}

TestCert TestCert::make(const CertSpec& spec, const TestKey& key, const TestCert* issuer,
                        const TestKey* issuer_key) {
  TestCert out(X509_new());
  X509* cert = out.get();
  require(cert != nullptr, "X509_new");
  static long serial = 1;
  X509_set_version(cert, 2);  // v3
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
  time_t now = spec.now != 0 ? spec.now : std::time(nullptr);
  require(X509_time_adj_ex(X509_getm_notBefore(cert), 0, static_cast<long>(spec.valid_from),
                           &now) != nullptr,
          "notBefore");
  require(X509_time_adj_ex(X509_getm_notAfter(cert), 0, static_cast<long>(spec.valid_until),
                           &now) != nullptr,
          "notAfter");
  X509_set_pubkey(cert, key.get());
  X509_NAME* name = X509_get_subject_name(cert);
  if (!spec.common_name.empty()) {
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(spec.common_name.c_str()),
                               -1, -1, 0);
  }
  X509* signer = issuer != nullptr ? issuer->get() : cert;
  X509_set_issuer_name(cert, X509_get_subject_name(signer));
  if (spec.ca) {
    addExtension(cert, signer, NID_basic_constraints, "critical,CA:TRUE");
    addExtension(cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    addExtension(cert, signer, NID_basic_constraints, "CA:FALSE");
  }
  if (!spec.dns_names.empty()) {
    std::string san;
    for (const auto& dns : spec.dns_names) {
      san += (san.empty() ? "DNS:" : ",DNS:") + dns;
    }
    addExtension(cert, signer, NID_subject_alt_name, san);
  }
  EVP_PKEY* signing_key = issuer_key != nullptr ? issuer_key->get() : key.get();
  require(X509_sign(cert, signing_key, EVP_sha256()) > 0, "X509_sign");
  return out;
}

std::string TestCert::pem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  require(PEM_write_bio_X509(bio, cert_.get()) == 1, "PEM_write_bio_X509");
  return drain(bio);
}

}  // namespace weir::test
