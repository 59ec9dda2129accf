#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

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
};

// Formats `fields` (in the given order) as "ID k=v k=v...\n", encoding each value.
std::string formatIdentifyLine(
    const std::initializer_list<std::pair<std::string_view, std::string_view>>& fields);

// Parses one line (with or without its trailing newline). nullopt unless it starts with
// "ID " and every word after it is key=value.
std::optional<IdentifyLine> parseIdentifyLine(std::string_view line);

// %XX-encoding used for values (empty becomes "-"), and its inverse.
std::string encodeIdentifyValue(std::string_view value);
std::string decodeIdentifyValue(std::string_view value);

}  // namespace weir::test
