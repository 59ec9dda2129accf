#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "support/deadline.h"
#include <utility>
#include <vector>

// The line weir-testsrv's `identify` mode sends first on every connection, so a test can see
// which backend answered and what it saw of the client (its address, and over TLS the SNI,
// the ALPN offered and chosen, the version, resumption, the client certificate):
//
//   ID name=web1 peer=127.0.0.1:40000 tls=TLSv1.3 sni=a.test alpn=h2 alpn-offered=h2,http/1.1
//      resumed=0 client-cert=-
//
// (one line, ending in '\n'). Without TLS only name, peer and tls=none are present. Values
// never contain spaces: "-" means absent, and bytes outside printable ASCII, spaces and '%'
// are written as %XX. One format, written and parsed here, so the two sides cannot drift.
//
// Then what a PROXY protocol header said (weir-testsrv --proxy-protocol), or proxy=none
// without that flag; peer is then the header's source. Only what the header carried:
//
//   ... proxy=v2 src=192.0.2.1:51000 dst=198.51.100.2:443 authority=a.test proxy_alpn=h2
//      ssl=1 ssl_version=TLSv1.3 ssl_cipher=TLS_AES_128_GCM_SHA256
//
// src and dst are absent for a local header (v1 UNKNOWN, v2 LOCAL or UNSPEC); ssl (0 or 1)
// is there for every v2 header, the others when not empty. (proxy_alpn is not "alpn",
// which over TLS is the protocol weir-testsrv selected.)
namespace weir::test {

struct IdentifyLine {
  std::map<std::string, std::string> fields;  // decoded values, "-" kept as "-"

  // The decoded value of `key`, or "" if the line has no such key.
  std::string get(const std::string& key) const;
  std::string name() const { return get("name"); }
  std::string peer() const { return get("peer"); }
  std::string tls() const { return get("tls"); }  // "none", "TLSv1.2", "TLSv1.3"
  std::string sni() const { return get("sni"); }  // "-" when the client sent none
  std::string alpn() const { return get("alpn"); }
  std::string alpnOffered() const { return get("alpn-offered"); }  // comma-separated
  bool resumed() const { return get("resumed") == "1"; }
  std::string clientCert() const { return get("client-cert"); }  // subject CN or "-"
  // The PROXY header: "v1", "v2", "none" (no --proxy-protocol); "" from an older testsrv.
  std::string proxy() const { return get("proxy"); }
  std::string proxySource() const { return get("src"); }       // "IP:PORT"; "" when local
  std::string proxyDestination() const { return get("dst"); }  // "IP:PORT"; "" when local
  std::string proxyAuthority() const { return get("authority"); }
  std::string proxyAlpn() const { return get("proxy_alpn"); }
  std::string proxySsl() const { return get("ssl"); }  // "0", "1"; "" for v1
  std::string proxySslVersion() const { return get("ssl_version"); }
  std::string proxySslCipher() const { return get("ssl_cipher"); }
};

// Formats `fields` (in the given order) as "ID k=v k=v...\n", encoding each value.
std::string formatIdentifyLine(
    const std::vector<std::pair<std::string_view, std::string_view>>& fields);

// Parses one line (with or without its trailing newline). nullopt unless it starts with
// "ID " and every word after it is key=value.
std::optional<IdentifyLine> parseIdentifyLine(std::string_view line);

// Reads one identify line from a plain TCP socket, byte by byte (nothing after the line is
// consumed), before `deadline`; nullopt on EOF, timeout or a malformed line.
std::optional<IdentifyLine> readIdentifyLine(int fd, Deadline deadline);

// %XX-encoding used for values (empty becomes "-"), and its inverse.
std::string encodeIdentifyValue(std::string_view value);
std::string decodeIdentifyValue(std::string_view value);

}  // namespace weir::test
