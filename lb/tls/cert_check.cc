#include "tls/cert_check.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>

#include "tls/errors.h"

namespace weir::tls {
namespace {

// Far beyond any chain or CA bundle (Debian's whole bundle is 200 KiB); stops a path that
// names a disk image from being read whole.
constexpr size_t kMaxFile = 16 << 20;

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using TimePtr = std::unique_ptr<ASN1_TIME, Deleter<ASN1_TIME, ASN1_TIME_free>>;
using NamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES, GENERAL_NAMES_free>>;

// One file the config names, and where its problems go: "WHERE: PATH: what".
struct Site {
  const config::FileRef& file;
  CertReport& report;

  std::string line(const std::string& what) const {
    return file.where + ": " + file.path + ": " + what;
  }
  void error(const std::string& what) const { report.errors.push_back(line(what)); }
  void warning(const std::string& what) const { report.warnings.push_back(line(what)); }
  void info(const std::string& what) const { report.info.push_back(line(what)); }
};

std::string errnoText(int err) { return std::strerror(err); }

// The whole file, or nullopt after recording why not.
std::optional<std::string> readWhole(const Site& site) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(site.file.path.c_str(), "rbe"),
                                                       &std::fclose);
  if (!file) {
    site.error("cannot read: " + errnoText(errno));
    return std::nullopt;
  }
  std::string text;
  char buf[16384];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, file.get())) > 0) {
    text.append(buf, n);
    if (text.size() > kMaxFile) {
      site.error("larger than 16 MiB: not a certificate, key or CA bundle");
      return std::nullopt;
    }
  }
  if (std::ferror(file.get())) {
    site.error("cannot read: " + errnoText(errno));  // EISDIR for a directory, EIO
    return std::nullopt;
  }
  return text;
}

BioPtr memoryBio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string lowerCase(std::string text) {
  for (char& c : text) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return text;
}

bool hasControls(const std::string& text) {
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return true;
    }
  }
  return false;
}

std::string formatTime(const ASN1_TIME* time) {
  struct tm tm = {};
  if (ASN1_TIME_to_tm(time, &tm) != 1) {
    clearErrors();
    return "an unreadable date";
  }
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

// Every certificate of a PEM file, in file order (other PEM blocks, such as a key in the same
// file, are skipped). Empty after recording why.
std::vector<X509Ptr> readCertificates(const Site& site, const std::string& text) {
  BioPtr bio = memoryBio(text);
  std::vector<X509Ptr> certs;
  clearErrors();
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certs.emplace_back(cert);
  }
  unsigned long err = ERR_peek_last_error();
  if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE) {
    clearErrors();  // how the loop ends: no further certificate in the file
    err = 0;
  }
  if (err != 0) {
    site.error(takeErrors(certs.empty() ? std::string("not a PEM certificate")
                                        : "certificate " + std::to_string(certs.size() + 1) +
                                              " of the file does not parse"));
    return {};
  }
  if (certs.empty()) {
    site.error("holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")");
  }
  return certs;
}

// Called by OpenSSL for an encrypted key: weir runs unattended and asks nobody.
int refusePassphrase(char*, int, int, void* asked) {
  *static_cast<bool*>(asked) = true;
  return -1;
}

KeyPtr readKey(const Site& site, const std::string& text) {
  BioPtr bio = memoryBio(text);
  bool asked = false;
  clearErrors();
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, refusePassphrase, &asked));
  if (asked) {
    clearErrors();
    site.error("the key is encrypted, and weir cannot ask for a passphrase; store it "
               "decrypted (openssl pkey -in KEY -out PLAIN) and readable only by root");
    return nullptr;
  }
  if (!key) {
    site.error(takeErrors("not a PEM private key"));
  }
  return key;
}

// Records whether `leaf` is valid at `now`, and a warning when it soon will not be.
void checkValidity(const Site& site, X509* leaf, time_t now) {
  const ASN1_TIME* not_before = X509_get0_notBefore(leaf);
  const ASN1_TIME* not_after = X509_get0_notAfter(leaf);
  // X509_cmp_time: -1 if the time is at or before `now`, 1 if after, 0 if unreadable.
  const int starts = X509_cmp_time(not_before, &now);
  const int ends = X509_cmp_time(not_after, &now);
  if (starts == 0 || ends == 0) {
    clearErrors();
    site.error("the certificate's validity dates do not parse");
    return;
  }
  if (starts > 0) {
    site.error("not valid before " + formatTime(not_before));
    return;
  }
  if (ends < 0) {
    site.error("expired on " + formatTime(not_after));
    return;
  }
  TimePtr at(ASN1_TIME_set(nullptr, now));
  int days = 0;
  int seconds = 0;
  if (!at || ASN1_TIME_diff(&days, &seconds, at.get(), not_after) != 1) {
    clearErrors();
    return;  // both dates parsed above; only an allocation can fail here
  }
  if (days < kExpiryWarningDays) {
    std::string when = days == 0   ? "less than a day"
                       : days == 1 ? "1 day"
                                   : std::to_string(days) + " days";
    site.warning("expires in " + when + ", on " + formatTime(not_after));
  }
}

std::string joinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) {
    out += out.empty() ? "" : ", ";
    out += name;
  }
  return out;
}

// A certificate and its key. `serves` is true for a listener's certificate, which clients
// check against the name they asked for.
void checkPair(const config::CertKey& pair, bool serves, time_t now, CertReport& report) {
  const Site cert_site{pair.cert, report};
  const Site key_site{pair.key, report};
  std::vector<X509Ptr> chain;
  if (auto text = readWhole(cert_site)) {
    chain = readCertificates(cert_site, *text);
  }
  KeyPtr key;
  if (auto text = readWhole(key_site)) {
    key = readKey(key_site, *text);
  }
  if (chain.empty()) {
    return;
  }
  X509* leaf = chain.front().get();
  checkValidity(cert_site, leaf, now);
  if (key && X509_check_private_key(leaf, key.get()) != 1) {
    clearErrors();
    key_site.error("does not match the certificate " + pair.cert.path +
                   " (the key must belong to the first certificate in the file)");
  }
  std::vector<std::string> names = certificateNames(leaf);
  if (names.empty() && serves) {
    cert_site.warning("names no host (no subjectAltName DNS entry, no common name): clients "
                      "that check the name will refuse it");
  }
  cert_site.info((serves ? "serves " : "names ") +
                 (names.empty() ? std::string("no host") : joinNames(names)) + "; valid until " +
                 formatTime(X509_get0_notAfter(leaf)));
}

void checkCa(const config::FileRef& ca, CertReport& report) {
  const Site site{ca, report};
  auto text = readWhole(site);
  if (!text) {
    return;
  }
  std::vector<X509Ptr> certs = readCertificates(site, *text);
  if (!certs.empty()) {
    site.info("trusts " + std::to_string(certs.size()) + " CA certificate" +
              (certs.size() == 1 ? "" : "s"));
  }
}

}  // namespace

CertReport checkCertificates(const config::Config& cfg, time_t now) {
  CertReport report;
  for (const config::Listener& listener : cfg.listeners) {
    if (!listener.tls) {
      continue;
    }
    for (const config::CertKey& pair : listener.tls->certificates) {
      checkPair(pair, /*serves=*/true, now, report);
    }
  }
  for (const config::Pool& pool : cfg.pools) {
    if (!pool.tls) {
      continue;
    }
    if (!pool.tls->ca.empty()) {
      checkCa(pool.tls->ca, report);
    }
    if (pool.tls->client_certificate) {
      checkPair(*pool.tls->client_certificate, /*serves=*/false, now, report);
    }
  }
  return report;
}

std::vector<std::string> certificateNames(X509* cert) {
  std::vector<std::string> names;
  NamesPtr sans(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans.get()); ++i) {
    const GENERAL_NAME* san = sk_GENERAL_NAME_value(sans.get(), i);
    if (san->type != GEN_DNS) {
      continue;
    }
    const ASN1_STRING* dns = san->d.dNSName;
    std::string name(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                     static_cast<size_t>(ASN1_STRING_length(dns)));
    // A NUL or control character makes a name no client can ask for (and one that C string
    // comparisons would cut short).
    if (!name.empty() && !hasControls(name)) {
      names.push_back(lowerCase(std::move(name)));
    }
  }
  if (names.empty()) {
    // RFC 6125 6.4.4: the common name counts only when there is no DNS name.
    X509_NAME* subject = X509_get_subject_name(cert);
    const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    unsigned char* utf8 = nullptr;
    const int n = index < 0 ? -1
                            : ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(
                                                             X509_NAME_get_entry(subject, index)));
    if (n > 0) {
      std::string name(reinterpret_cast<const char*>(utf8), static_cast<size_t>(n));
      if (!hasControls(name)) {
        names.push_back(lowerCase(std::move(name)));
      }
    }
    OPENSSL_free(utf8);
  }
  clearErrors();  // X509_get_ext_d2i and friends may leave entries for absent or odd fields
  return names;
}

}  // namespace weir::tls
