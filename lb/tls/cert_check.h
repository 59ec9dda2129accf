#pragma once

#include <ctime>
#include <string>
#include <vector>

#include <openssl/types.h>

#include "config/config.h"

namespace weir::tls {

// A certificate whose leaf has fewer days than this left draws a warning.
inline constexpr int kExpiryWarningDays = 14;

// What the files a config names hold. Every line starts with the `where` of the value that
// named the file: "FILE:LINE:COL: key.path: /etc/weir/a.key: cannot read: No such file or
// directory".
struct CertReport {
  std::vector<std::string> errors;    // the config cannot serve: `weir -t` and reloads fail
  std::vector<std::string> warnings;  // it can, but someone should look (expiry in < 14 days)
  std::vector<std::string> info;      // the names each certificate serves, and until when
  bool ok() const { return errors.empty(); }
};

// Reads every file the config's TLS keys name: each CertKey of the listeners' [tls] and of
// the pools' [tls] client_certificate (chain parses, leaf first; key parses and matches the
// leaf; the leaf is valid at `now`), and each pool's `ca` (parses, holds at least one
// certificate). Never throws for a bad file: each problem becomes one line of the report.
// Encrypted keys are errors (weir cannot ask for a passphrase).
CertReport checkCertificates(const config::Config& cfg, time_t now);

// The names `cert` serves: its subjectAltName DNS entries, or, when it has none, its subject
// common name; lower-cased, in certificate order. Empty if it names nothing.
std::vector<std::string> certificateNames(X509* cert);

}  // namespace weir::tls
