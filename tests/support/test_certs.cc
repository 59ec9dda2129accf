#include "support/test_certs.h"

#include <sys/stat.h>

#include <memory>
#include <stdexcept>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace weir::test {
namespace {

template <typename T, void (*Free)(T*)>
struct Freer {
  void operator()(T* p) const { Free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Freer<X509, X509_free>>;
using Bio = std::unique_ptr<BIO, Freer<BIO, BIO_free_all>>;
using Bn = std::unique_ptr<BIGNUM, Freer<BIGNUM, BN_free>>;
using Ext = std::unique_ptr<X509_EXTENSION, Freer<X509_EXTENSION, X509_EXTENSION_free>>;

[[noreturn]] void fail(const std::string& what) {
  std::string text = "test_certs: " + what;
  unsigned long code = ERR_get_error();
  if (code != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    text += std::string(": ") + buf;
  }
  ERR_clear_error();
  throw std::runtime_error(text);
}

template <typename T>
T check(T p, const char* what) {
  if (!p) {
    fail(what);
  }
  return p;
}

Key generate(KeyType type) {
  EVP_PKEY* k = type == KeyType::EcP256 ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048);
  return Key(check(k, "key generation"));
}

std::string toPem(const Bio& bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string certPem(X509* cert) {
  Bio bio(check(BIO_new(BIO_s_mem()), "BIO_new"));
  if (PEM_write_bio_X509(bio.get(), cert) != 1) {
    fail("PEM_write_bio_X509");
  }
  return toPem(bio);
}

std::string keyPem(EVP_PKEY* key) {
  Bio bio(check(BIO_new(BIO_s_mem()), "BIO_new"));
  if (PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    fail("PEM_write_bio_PrivateKey");
  }
  return toPem(bio);
}

Cert readCert(const std::string& pem) {
  Bio bio(check(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), "BIO_new_mem_buf"));
  return Cert(check(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), "read CA cert"));
}

Key readKey(const std::string& pem) {
  Bio bio(check(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), "BIO_new_mem_buf"));
  return Key(
      check(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), "read CA key"));
}

void addExt(X509* cert, X509V3_CTX& ctx, int nid, const std::string& value) {
  Ext ext(check(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()), "X509V3_EXT_conf_nid"));
  if (X509_add_ext(cert, ext.get(), -1) != 1) {
    fail("X509_add_ext " + value);
  }
}

std::string subjectAltName(const CertOptions& o) {
  std::string san;
  for (const std::string& d : o.dns_names) {
    san += (san.empty() ? "DNS:" : ",DNS:") + d;
  }
  for (const std::string& ip : o.ip_addresses) {
    san += (san.empty() ? "IP:" : ",IP:") + ip;
  }
  return san;
}

enum class Role { Root, Intermediate, Leaf };

// A certificate for `key` named options.common_name, signed by issuer_key; issuer == nullptr
// means self-signed.
Cert makeCert(const CertOptions& o, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
              Role role) {
  Cert cert(check(X509_new(), "X509_new"));
  X509* x = cert.get();
  Bn serial(check(BN_new(), "BN_new"));
  // 63 random bits: unique enough that no two test certificates of one issuer collide.
  if (X509_set_version(x, X509_VERSION_3) != 1 ||
      BN_rand(serial.get(), 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(x)) == nullptr ||
      X509_gmtime_adj(X509_getm_notBefore(x), static_cast<long>(o.not_before.count())) ==
          nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(x), static_cast<long>(o.not_after.count())) ==
          nullptr) {
    fail("certificate fields");
  }
  X509_NAME* name = X509_get_subject_name(x);
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(o.common_name.c_str()),
                                 -1, -1, 0) != 1 ||
      X509_set_issuer_name(x, issuer != nullptr ? X509_get_subject_name(issuer) : name) != 1 ||
      X509_set_pubkey(x, key) != 1) {
    fail("certificate names");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : x, x, nullptr, nullptr, 0);
  addExt(x, ctx, NID_subject_key_identifier, "hash");
  if (role != Role::Root) {
    addExt(x, ctx, NID_authority_key_identifier, "keyid:always");
  }
  if (role == Role::Leaf) {
    addExt(x, ctx, NID_basic_constraints, "critical,CA:FALSE");
    const bool rsa = EVP_PKEY_is_a(key, "RSA") == 1;
    addExt(x, ctx, NID_key_usage,
           rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature");
    addExt(x, ctx, NID_ext_key_usage, "serverAuth,clientAuth");
    if (std::string san = subjectAltName(o); !san.empty()) {
      addExt(x, ctx, NID_subject_alt_name, san);
    }
  } else {
    addExt(x, ctx, NID_basic_constraints, "critical,CA:TRUE");
    addExt(x, ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
  }
  if (X509_sign(x, issuer_key, EVP_sha256()) == 0) {
    fail("X509_sign");
  }
  return cert;
}

CertOptions rootOptions(const std::string& common_name, KeyType key_type) {
  CertOptions o;
  o.common_name = common_name;
  o.key_type = key_type;
  o.not_after = std::chrono::hours(24 * 3650);
  return o;
}

}  // namespace

TestCa::TestCa(const std::string& common_name, KeyType key_type) {
  Key key = generate(key_type);
  Cert cert = makeCert(rootOptions(common_name, key_type), key.get(), nullptr, key.get(),
                       Role::Root);
  pem_ = Pem{certPem(cert.get()), keyPem(key.get())};
}

Pem TestCa::issue(const CertOptions& options) const {
  Cert ca_cert = readCert(pem_.cert);
  Key ca_key = readKey(pem_.key);
  Key key = generate(options.key_type);
  Cert cert = makeCert(options, key.get(), ca_cert.get(), ca_key.get(), Role::Leaf);
  return Pem{certPem(cert.get()), keyPem(key.get())};
}

TestCa TestCa::intermediate(const CertOptions& options) const {
  Cert ca_cert = readCert(pem_.cert);
  Key ca_key = readKey(pem_.key);
  Key key = generate(options.key_type);
  Cert cert = makeCert(options, key.get(), ca_cert.get(), ca_key.get(), Role::Intermediate);
  std::string own = certPem(cert.get());
  // Our issuer's chain follows, unless the issuer is the root (chain_ empty, not sent).
  return TestCa(Pem{own, keyPem(key.get())}, own + chain_);
}

PemFiles writePem(const TempDir& dir, const std::string& stem, const Pem& pem) {
  PemFiles files;
  files.cert = dir.write(stem + ".crt", pem.cert);
  files.key = dir.write(stem + ".key", pem.key);
  if (::chmod(files.key.c_str(), 0600) != 0) {
    throw std::runtime_error("test_certs: chmod " + files.key);
  }
  return files;
}

std::string writeBundle(const TempDir& dir, const std::string& name,
                        const std::vector<std::string>& certs) {
  std::string all;
  for (const std::string& c : certs) {
    all += c;
  }
  return dir.write(name, all);
}

}  // namespace weir::test
