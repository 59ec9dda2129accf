// libFuzzer target: the first bytes a client sends on a tls-passthrough listener ->
// lb/tls/client_hello.h's parseClientHello, then the server name -> lb/tls/sni.h's SniTable.
//
// The input is the client's stream from its first byte. Beyond crashes and UB it checks the
// parser's contract: a verdict other than NeedMore is final (every prefix of the input gives
// NeedMore or the same verdict and hello); an Ok hello is exactly as long as it says, and one
// byte less is NeedMore; nothing past kMaxClientHello is read and that many bytes never give
// NeedMore; NotTls depends on the first three bytes only; an Ok hello cut into other records
// (1-byte ones, sizes taken from the input) parses to the same hello, or TooLarge when the
// records outgrow the limit; a parsed name is a lower-case DNS host name; and SniTable::lookup
// agrees with a naive matcher on that name and on raw input bytes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "tls/client_hello.h"
#include "tls/sni.h"

namespace weir::fuzz {
namespace {

using tls::ClientHello;
using tls::HelloStatus;
using tls::kMaxClientHello;
using Bytes = std::span<const uint8_t>;

// All prefixes of inputs up to this long are checked; of longer ones, a sample.
constexpr size_t kAllPrefixes = 1024;
constexpr size_t kSampledPrefixes = 512;

std::string_view asText(Bytes bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), std::min<size_t>(bytes.size(), 64)};
}

bool same(const ClientHello& a, const ClientHello& b) {
  return a.sni == b.sni && a.alpn == b.alpn && a.legacy_version == b.legacy_version &&
         a.has_supported_versions == b.has_supported_versions &&
         a.offers_tls13 == b.offers_tls13;
}

HelloStatus parse(Bytes bytes, ClientHello& hello) {
  hello = {};
  return tls::parseClientHello(bytes, hello);
}

void checkHello(const ClientHello& hello, Bytes input) {
  check(hello.record_bytes <= std::min(input.size(), kMaxClientHello) &&
            hello.record_bytes >= 5 + 4 + 41,
        "record_bytes lies within the input and the limit", asText(input));
  check((hello.legacy_version >> 8) == 3, "legacy_version is 3.x", asText(input));
  check(hello.has_supported_versions || !hello.offers_tls13,
        "TLS 1.3 is offered only in supported_versions", asText(input));
  for (const std::string& name : hello.alpn) {
    check(!name.empty() && name.size() <= 255, "ALPN names are 1..255 bytes", name);
  }
  const std::string& sni = hello.sni;
  check(sni.size() <= 255, "a server name is at most 255 bytes", sni);
  size_t label = 0;
  for (char c : sni) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              c == '_';
    check(ok, "a server name is lower-case letters, digits, '-', '_' and '.'", sni);
    if (c == '.') {
      check(label > 0, "no empty label", sni);
      label = 0;
    } else {
      check(++label <= 63, "labels are at most 63 bytes", sni);
    }
  }
  check(sni.empty() || label > 0, "no empty last label (nor trailing dot)", sni);
}

void checkPrefix(Bytes input, size_t n, HelloStatus full, const ClientHello& full_hello) {
  ClientHello hello;
  HelloStatus s = parse(input.first(n), hello);
  check(s == HelloStatus::NeedMore || s == full, "a verdict other than NeedMore is final",
        asText(input));
  if (s == HelloStatus::Ok) {
    check(same(hello, full_hello) && hello.record_bytes == full_hello.record_bytes,
          "an Ok prefix gives the same hello", asText(input));
  }
}

// The handshake bytes carried by the records in stream[0, end), for a stream that parsed.
std::vector<uint8_t> messageOf(Bytes stream, size_t end) {
  std::vector<uint8_t> message;
  for (size_t off = 0; off < end;) {
    size_t len = size_t{stream[off + 3]} << 8 | stream[off + 4];
    message.insert(message.end(), stream.begin() + off + 5, stream.begin() + off + 5 + len);
    off += 5 + len;
  }
  return message;
}

// `message` in records whose payload sizes cycle through `sizes` (each 1..).
std::vector<uint8_t> recordsOf(const std::vector<uint8_t>& message, Bytes sizes, size_t scale) {
  std::vector<uint8_t> stream;
  for (size_t off = 0, i = 0; off < message.size(); ++i) {
    size_t want = sizes.empty() ? 1 : 1 + sizes[i % sizes.size()] * scale;
    size_t len = std::min({want, message.size() - off, size_t{1} << 14});
    const uint8_t version = i == 0 ? 1 : 3;
    stream.insert(stream.end(), {22, 3, version, static_cast<uint8_t>(len >> 8),
                                 static_cast<uint8_t>(len)});
    stream.insert(stream.end(), message.begin() + off, message.begin() + off + len);
    off += len;
  }
  return stream;
}

void checkRefragmented(const std::vector<uint8_t>& stream, const ClientHello& want,
                       Bytes input) {
  ClientHello hello;
  HelloStatus s = parse(stream, hello);
  if (stream.size() > kMaxClientHello) {
    check(s == HelloStatus::TooLarge, "records over the limit are TooLarge", asText(input));
    return;
  }
  check(s == HelloStatus::Ok && same(hello, want) && hello.record_bytes == stream.size(),
        "the same hello in other records parses the same", asText(input));
}

// What SniTable promises, the slow way: exact names first, then "*.rest" for "label.rest",
// the first entry of a name winning; case and one trailing dot ignored.
std::string canonical(std::string_view name) {
  if (!name.empty() && name.back() == '.') {
    name.remove_suffix(1);
  }
  std::string out(name);
  for (char& c : out) {
    c = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

std::optional<size_t> naiveLookup(const std::vector<tls::SniTable::Entry>& entries,
                                  std::string_view server_name) {
  std::string name = canonical(server_name);
  if (name.empty() || name.size() > 255) {
    return std::nullopt;
  }
  for (const auto& e : entries) {
    if (canonical(e.name) == name) {
      return e.index;
    }
  }
  for (const auto& e : entries) {
    std::string pattern = canonical(e.name);
    if (pattern.size() <= 2 || pattern.substr(0, 2) != "*.") {
      continue;
    }
    std::string_view rest = std::string_view(pattern).substr(1);  // ".example.com"
    if (name.size() > rest.size() && name.ends_with(rest) &&
        name.substr(0, name.size() - rest.size()).find('.') == std::string::npos) {
      return e.index;
    }
  }
  return std::nullopt;
}

void checkLookup(const std::vector<tls::SniTable::Entry>& entries, std::string_view name) {
  tls::SniTable table(entries);
  check(table.lookup(name) == naiveLookup(entries, name), "SniTable agrees with a naive matcher",
        name);
}

void fuzzSni(std::string_view sni, std::string_view raw) {
  std::vector<tls::SniTable::Entry> entries = {
      {"example.com", 0},   {"*.example.com", 1}, {"a.example.com", 2}, {"*.a.example.com", 3},
      {"*.com", 4},         {"localhost", 5},     {"A.Example.COM", 6}, {"*.example.com.", 7}};
  for (std::string_view name : {sni, raw}) {
    checkLookup(entries, name);
  }
  if (sni.empty()) {
    return;
  }
  std::string upper = canonical(sni);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; });
  size_t dot = sni.find('.');
  entries.push_back({std::string(sni), 8});
  entries.push_back({"*." + std::string(sni), 9});
  if (dot != std::string_view::npos) {
    entries.push_back({"*" + std::string(sni.substr(dot)), 10});
  }
  for (const std::string& name : {std::string(sni), upper + ".", "x." + std::string(sni),
                                  "x.y." + std::string(sni), std::string(sni.substr(dot + 1))}) {
    checkLookup(entries, name);
  }
}

}  // namespace
}  // namespace weir::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace weir::fuzz;
  const Bytes input(data, size);
  ClientHello hello;
  const HelloStatus status = parse(input, hello);

  // NotTls is about the first three bytes, and only those.
  const bool tls_start = (size < 1 || data[0] == 22) && (size < 2 || data[1] == 3) &&
                         (size < 3 || (data[2] >= 1 && data[2] <= 4));
  check((status == HelloStatus::NotTls) == !tls_start, "NotTls iff the first bytes are not TLS",
        asText(input));
  // Never NeedMore at the limit, and nothing past it is read.
  if (size >= kMaxClientHello) {
    check(status != HelloStatus::NeedMore, "no NeedMore at kMaxClientHello bytes", asText(input));
    ClientHello cut;
    check(parse(input.first(kMaxClientHello), cut) == status && same(cut, hello),
          "bytes past kMaxClientHello change nothing", asText(input));
  }
  // Every prefix (or a sample of them) gives NeedMore or this verdict.
  if (size <= kAllPrefixes) {
    for (size_t n = 0; n < size; ++n) {
      checkPrefix(input, n, status, hello);
    }
  } else {
    for (size_t i = 0; i < kSampledPrefixes; ++i) {
      checkPrefix(input, i * size / kSampledPrefixes, status, hello);
    }
    for (size_t n = size - 16; n < size; ++n) {
      checkPrefix(input, n, status, hello);
    }
  }
  if (status != HelloStatus::Ok) {
    fuzzSni({}, asText(input));
    return 0;
  }
  checkHello(hello, input);
  const size_t end = hello.record_bytes;
  ClientHello exact;
  check(parse(input.first(end), exact) == HelloStatus::Ok && same(exact, hello),
        "the hello's own records are enough", asText(input));
  check(parse(input.first(end - 1), exact) == HelloStatus::NeedMore,
        "one byte less than the hello is NeedMore", asText(input));

  // The same message in other records: 1-byte ones, the largest, sizes from the input.
  const std::vector<uint8_t> message = messageOf(input, end);
  static constexpr uint8_t kLargest[] = {255};
  checkRefragmented(recordsOf(message, {}, 0), hello, input);
  checkRefragmented(recordsOf(message, kLargest, 65), hello, input);
  checkRefragmented(recordsOf(message, input.subspan(end), 1), hello, input);
  checkRefragmented(recordsOf(message, input.first(std::min<size_t>(end, 32)), 64), hello,
                    input);
  fuzzSni(hello.sni, asText(input));
  return 0;
}
