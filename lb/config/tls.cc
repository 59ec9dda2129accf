// [listeners.NAME.tls] and [pools.NAME.tls]. Only paths are recorded here: reading the files
// is lb/tls's (cert_check.h), so that parsing a config never touches the file system.
#include <algorithm>

#include "config/readers.h"

namespace weir::config::detail {
namespace {

constexpr size_t kMaxAlpn = 16;
constexpr size_t kMaxAlpnId = 255;  // RFC 7301: a protocol name is 1..255 bytes
constexpr Duration kMinTicketRotation{60000};  // 1m

constexpr std::string_view kCertKeyExample = "{ cert = \"a.pem\", key = \"a.key\" }";

std::optional<CertKey> readCertKey(const toml::node& node, const std::string& path,
                                   Diagnostics& diag) {
  auto* table = node.as_table();
  if (table == nullptr) {
    diag.add(node, path,
             "expected a table such as " + std::string(kCertKeyExample) + ", got " +
                 describe(node));
    return std::nullopt;
  }
  Section section(*table, path, diag);
  section.checkKeys({"cert", "key"});
  for (std::string_view key : {"cert", "key"}) {
    if (section.get(key) == nullptr) {
      section.missing(key);
    }
  }
  auto cert = readFilePath(section, "cert");
  auto key = readFilePath(section, "key");
  if (!cert || !key) {
    return std::nullopt;
  }
  return CertKey{std::move(*cert), std::move(*key)};
}

void readCertificates(const Section& section, ServerTls& tls) {
  const toml::node* node = section.get("certificates");
  if (node == nullptr) {
    section.missing("certificates");
    return;
  }
  auto* array = node->as_array();
  if (array == nullptr || array->empty()) {
    section.problem(*node, "certificates",
                    "expected a non-empty array such as [" + std::string(kCertKeyExample) +
                        "], got " + describe(*node));
    return;
  }
  std::vector<size_t> index_of;  // tls.certificates[k] came from certificates[index_of[k]]
  for (size_t i = 0; i < array->size(); ++i) {
    std::string path = section.pathOf("certificates") + "[" + std::to_string(i) + "]";
    auto pair = readCertKey(*array->get(i), path, section.diag());
    if (!pair) {
      continue;
    }
    auto same = std::find_if(tls.certificates.begin(), tls.certificates.end(),
                             [&](const CertKey& c) { return c.cert.path == pair->cert.path; });
    if (same != tls.certificates.end()) {
      // readCertKey succeeded, so the cert key exists.
      section.diag().add(*array->get(i)->as_table()->get("cert"), path + ".cert",
                         quote(pair->cert.path) + " is already listed as certificates[" +
                             std::to_string(index_of[same - tls.certificates.begin()]) + "]");
      continue;
    }
    tls.certificates.push_back(std::move(*pair));
    index_of.push_back(i);
  }
}

std::optional<TlsVersion> readMinVersion(const Section& section) {
  const toml::node* node = section.get("min_version");
  if (node == nullptr) {
    return std::nullopt;
  }
  if (auto* text = node->as_string(); text && (text->get() == "1.0" || text->get() == "1.1")) {
    section.problem(*node, "min_version",
                    "TLS " + text->get() + " is not supported: weir speaks TLS 1.2 and 1.3 only "
                    "(\"1.2\" or \"1.3\")");
    return std::nullopt;
  }
  if (node->is_floating_point()) {
    section.problem(*node, "min_version",
                    "expected \"1.2\" or \"1.3\" (a string, in quotes), got " + describe(*node));
    return std::nullopt;
  }
  constexpr TlsVersion kVersions[] = {TlsVersion::V1_2, TlsVersion::V1_3};
  if (auto version = section.oneOf("min_version", {"1.2", "1.3"})) {
    return kVersions[*version];
  }
  return std::nullopt;
}

// An OpenSSL list string (ciphers, ciphersuites, groups): OpenSSL judges its content when the
// contexts are built; here it only has to be a non-empty string.
void readOpenSslList(const Section& section, std::string_view key, std::string& out) {
  auto text = section.string(key, "an OpenSSL list such as \"A:B:C\"");
  if (!text) {
    return;
  }
  if (text->empty()) {
    section.problem(*section.get(key), key,
                    "must not be empty; leave the key out for weir's default");
    return;
  }
  out = *text;
}

bool isPrintable(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

void readAlpn(const Section& section, std::vector<std::string>& out) {
  const toml::node* node = section.get("alpn");
  if (node == nullptr) {
    return;
  }
  auto* array = node->as_array();
  if (array == nullptr || array->empty()) {
    section.problem(*node, "alpn",
                    "expected a non-empty array of protocol names such as [\"h2\", "
                    "\"http/1.1\"], got " + describe(*node));
    return;
  }
  if (array->size() > kMaxAlpn) {
    section.problem(*node, "alpn",
                    "at most " + std::to_string(kMaxAlpn) + " protocols, got " +
                        std::to_string(array->size()));
    return;
  }
  std::vector<std::string> protocols;
  for (size_t i = 0; i < array->size(); ++i) {
    const toml::node& item = *array->get(i);
    std::string path = section.pathOf("alpn") + "[" + std::to_string(i) + "]";
    auto* text = item.as_string();
    if (text == nullptr) {
      section.diag().add(item, path, "expected a protocol name such as \"h2\", got " +
                                         describe(item));
      continue;
    }
    const std::string& id = text->get();
    if (id.empty() || id.size() > kMaxAlpnId || !isPrintable(id)) {
      section.diag().add(item, path,
                         "a protocol name is 1.." + std::to_string(kMaxAlpnId) +
                             " printable characters without spaces, got " + describe(item));
      continue;
    }
    auto earlier = std::find(protocols.begin(), protocols.end(), id);
    if (earlier != protocols.end()) {
      section.diag().add(item, path,
                         quote(id) + " is already listed as alpn[" +
                             std::to_string(earlier - protocols.begin()) + "]");
      continue;
    }
    protocols.push_back(id);
  }
  out = std::move(protocols);
}

}  // namespace

std::string resolvePath(std::string_view config_path, std::string_view path) {
  if (path.empty() || path.front() == '/') {
    return std::string(path);
  }
  const size_t slash = config_path.rfind('/');
  if (slash == std::string_view::npos) {
    return std::string(path);  // the config is in the current directory, and so is the file
  }
  return std::string(config_path.substr(0, slash + 1)) + std::string(path);
}

ServerTls readServerTls(const Section& section) {
  section.checkKeys({"certificates", "min_version", "ciphers", "ciphersuites", "groups", "alpn",
                     "handshake_timeout", "session_tickets", "ticket_key_rotation"});
  ServerTls tls;
  readCertificates(section, tls);
  if (auto version = readMinVersion(section)) {
    tls.min_version = *version;
  }
  readOpenSslList(section, "ciphers", tls.ciphers);
  readOpenSslList(section, "ciphersuites", tls.ciphersuites);
  readOpenSslList(section, "groups", tls.groups);
  readAlpn(section, tls.alpn);
  if (auto timeout = section.duration("handshake_timeout", kMaxDuration)) {
    tls.handshake_timeout = *timeout;
  }
  if (auto tickets = section.boolean("session_tickets")) {
    tls.session_tickets = *tickets;
  }
  if (auto rotation = section.duration("ticket_key_rotation", kMaxDuration)) {
    const toml::node& node = *section.get("ticket_key_rotation");
    if (*rotation < kMinTicketRotation) {
      section.problem(node, "ticket_key_rotation",
                      "must be at least \"1m\", got " + describe(node));
    } else if (!tls.session_tickets) {
      section.problem(node, "ticket_key_rotation", "only used with session_tickets = true");
    } else {
      tls.ticket_key_rotation = *rotation;
    }
  }
  return tls;
}

UpstreamTls readUpstreamTls(const Section& section) {
  section.checkKeys({"verify", "ca", "sni", "client_certificate", "min_version", "ciphers",
                     "ciphersuites", "alpn"});
  UpstreamTls tls;
  if (auto verify = section.boolean("verify")) {
    tls.verify = *verify;
  }
  if (auto ca = readFilePath(section, "ca")) {
    if (!tls.verify) {
      section.problem(*section.get("ca"), "ca",
                      "only used with verify = true (verify = false trusts any certificate)");
    }
    tls.ca = std::move(*ca);
  }
  if (auto sni = readHostName(section, "sni")) {
    tls.sni = std::move(*sni);
  }
  if (const toml::node* node = section.get("client_certificate")) {
    tls.client_certificate =
        readCertKey(*node, section.pathOf("client_certificate"), section.diag());
  }
  if (auto version = readMinVersion(section)) {
    tls.min_version = *version;
  }
  readOpenSslList(section, "ciphers", tls.ciphers);
  readOpenSslList(section, "ciphersuites", tls.ciphersuites);
  readAlpn(section, tls.alpn);
  return tls;
}

}  // namespace weir::config::detail
