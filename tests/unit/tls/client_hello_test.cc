#include "tls/client_hello.h"

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "tls/openssl_hello.h"

namespace weir::tls {
namespace {

using testing::ClientOptions;
using testing::handshakeMessage;
using testing::intoRecords;
using testing::opensslClientHello;
using Bytes = std::vector<uint8_t>;

HelloStatus parse(const Bytes& bytes) {
  ClientHello hello;
  return parseClientHello(bytes, hello);
}

HelloStatus parse(std::string_view text) {
  ClientHello hello;
  return parseClientHello({reinterpret_cast<const uint8_t*>(text.data()), text.size()}, hello);
}

// Parses `bytes`, which must be a whole hello.
ClientHello parseOk(const Bytes& bytes) {
  ClientHello hello;
  EXPECT_EQ(parseClientHello(bytes, hello), HelloStatus::Ok);
  return hello;
}

void expectSame(const ClientHello& a, const ClientHello& b) {
  EXPECT_EQ(a.sni, b.sni);
  EXPECT_EQ(a.alpn, b.alpn);
  EXPECT_EQ(a.legacy_version, b.legacy_version);
  EXPECT_EQ(a.has_supported_versions, b.has_supported_versions);
  EXPECT_EQ(a.offers_tls13, b.offers_tls13);
}

// --- Synthetic hellos: the fields written out, for the cases no real client sends. ---

Bytes u16(size_t v) {
  return {static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) {
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

Bytes text(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

Bytes vec8(const Bytes& v) {
  return cat({{static_cast<uint8_t>(v.size())}, v});
}

Bytes vec16(const Bytes& v) {
  return cat({u16(v.size()), v});
}

Bytes ext(uint16_t type, const Bytes& data) {
  return cat({u16(type), vec16(data)});
}

Bytes serverName(std::string_view name) {
  return ext(0, vec16(cat({{0}, vec16(text(name))})));
}

Bytes alpnExt(const std::vector<std::string>& names) {
  Bytes list;
  for (const std::string& n : names) {
    list = cat({list, vec8(text(n))});
  }
  return ext(16, vec16(list));
}

Bytes versionsExt(std::vector<uint16_t> versions) {
  Bytes list;
  for (uint16_t v : versions) {
    list = cat({list, u16(v)});
  }
  return ext(43, vec8(list));
}

// version, random, 32-byte session id, two suites, null compression, then `tail` (the
// extensions block, or nothing).
Bytes body(const Bytes& tail, uint16_t version = 0x0303) {
  return cat({u16(version), Bytes(32, 0xab), vec8(Bytes(32, 0xcd)),
              vec16({0x13, 0x01, 0x13, 0x02}), vec8({0}), tail});
}

Bytes message(const Bytes& hello_body, uint8_t type = 1) {
  const size_t n = hello_body.size();
  return cat({{type, static_cast<uint8_t>(n >> 16), static_cast<uint8_t>(n >> 8),
               static_cast<uint8_t>(n)},
              hello_body});
}

Bytes record(const Bytes& payload, uint8_t type = 22) {
  return cat({{type, 3, 1}, u16(payload.size()), payload});
}

// One record holding a hello with these extensions.
Bytes helloWith(std::initializer_list<Bytes> exts) {
  return record(message(body(vec16(cat(exts)))));
}

// --- Real hellos from OpenSSL. ---

TEST(ClientHello, Tls13WithSniAndAlpn) {
  Bytes bytes = opensslClientHello({.sni = "api.example.com", .alpn = {"h2", "http/1.1"}});
  ClientHello hello = parseOk(bytes);
  EXPECT_EQ(hello.sni, "api.example.com");
  EXPECT_EQ(hello.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_EQ(hello.legacy_version, 0x0303);
  EXPECT_TRUE(hello.has_supported_versions);
  EXPECT_TRUE(hello.offers_tls13);
  EXPECT_EQ(hello.record_bytes, bytes.size());
}

TEST(ClientHello, Tls12Only) {
  Bytes bytes = opensslClientHello({.sni = "legacy.example.net", .tls12_only = true});
  ClientHello hello = parseOk(bytes);
  EXPECT_EQ(hello.sni, "legacy.example.net");
  EXPECT_TRUE(hello.alpn.empty());
  EXPECT_EQ(hello.legacy_version, 0x0303);
  EXPECT_FALSE(hello.has_supported_versions);
  EXPECT_FALSE(hello.offers_tls13);
}

TEST(ClientHello, WithoutSni) {
  ClientHello hello = parseOk(opensslClientHello({.alpn = {"h2"}}));
  EXPECT_EQ(hello.sni, "");
  EXPECT_EQ(hello.alpn, std::vector<std::string>{"h2"});
  EXPECT_TRUE(hello.offers_tls13);
}

TEST(ClientHello, SniIsLowerCasedWithoutTrailingDot) {
  EXPECT_EQ(parseOk(opensslClientHello({.sni = "API.Example.COM"})).sni, "api.example.com");
  EXPECT_EQ(parseOk(opensslClientHello({.sni = "www.example.org."})).sni, "www.example.org");
  EXPECT_EQ(parseOk(opensslClientHello({.sni = "x-1.a9.Example"})).sni, "x-1.a9.example");
  // Underscores are outside RFC 1123 but common in internal names: accepted.
  EXPECT_EQ(parseOk(opensslClientHello({.sni = "My_Service.internal"})).sni,
            "my_service.internal");
}

TEST(ClientHello, InvalidHostNamesFromOpenSslAreMalformed) {
  for (const char* name : {"bad+name.example.com", "a..b", ".example.com", "example.com..",
                           "*.example.com", "a b.example", "caf\xc3\xa9.example", "."}) {
    EXPECT_EQ(parse(opensslClientHello({.sni = name})), HelloStatus::Malformed) << name;
  }
  std::string label63(63, 'a');
  EXPECT_EQ(parseOk(opensslClientHello({.sni = label63 + ".com"})).sni, label63 + ".com");
  EXPECT_EQ(parse(opensslClientHello({.sni = label63 + "a.com"})), HelloStatus::Malformed);
  // 255 bytes is the most (OpenSSL sends no more either).
  std::string longest = label63 + "." + label63 + "." + label63 + "." + std::string(63, 'b');
  ASSERT_EQ(longest.size(), 255u);
  EXPECT_EQ(parseOk(opensslClientHello({.sni = longest})).sni, longest);
}

TEST(ClientHello, EveryPrefixNeedsMoreUntilTheWholeHello) {
  for (const ClientOptions& options :
       {ClientOptions{.sni = "a.example.com", .alpn = {"h2"}},
        ClientOptions{.sni = "b.example.com", .tls12_only = true},
        ClientOptions{.sni = "c.example.com", .alpn = {"http/1.1"}, .padding = 1500,
                      .max_fragment = 512}}) {
    Bytes bytes = opensslClientHello(options);
    ClientHello full = parseOk(bytes);
    EXPECT_EQ(full.sni, options.sni);
    for (size_t n = 0; n < bytes.size(); ++n) {
      ClientHello hello;
      ASSERT_EQ(parseClientHello({bytes.data(), n}, hello), HelloStatus::NeedMore)
          << options.sni << " prefix " << n << " of " << bytes.size();
      EXPECT_TRUE(hello.sni.empty());  // untouched
    }
    // What follows the hello (early data, garbage) is not looked at.
    Bytes more = cat({bytes, {23, 3, 3, 0, 1, 0xff}, text("GET / HTTP/1.1\r\n")});
    ClientHello with_more = parseOk(more);
    expectSame(with_more, full);
    EXPECT_EQ(with_more.record_bytes, bytes.size());
  }
}

TEST(ClientHello, OpenSslSplitsAHelloOverRecords) {
  ClientOptions options{.sni = "split.example.com", .alpn = {"h2", "http/1.1"}, .padding = 2000};
  Bytes whole = opensslClientHello(options);
  options.max_fragment = 512;
  Bytes split = opensslClientHello(options);
  ASSERT_GT(split.size(), whole.size() + 5 * 3);  // at least 4 records
  ASSERT_EQ(handshakeMessage(split).size(), handshakeMessage(whole).size());
  expectSame(parseOk(split), parseOk(whole));
}

TEST(ClientHello, OneBytePayloadRecords) {
  Bytes bytes = opensslClientHello({.sni = "tiny.example.com", .alpn = {"h2", "http/1.1"}});
  ClientHello want = parseOk(bytes);
  Bytes msg = handshakeMessage(bytes);
  Bytes ones = intoRecords(msg, {1});
  ASSERT_EQ(ones.size(), msg.size() * 6);
  ASSERT_LE(ones.size(), kMaxClientHello);
  ClientHello got = parseOk(ones);
  expectSame(got, want);
  EXPECT_EQ(got.record_bytes, ones.size());
  for (size_t n = 0; n < ones.size(); ++n) {
    ASSERT_EQ(parseClientHello({ones.data(), n}, got), HelloStatus::NeedMore) << n;
  }
}

TEST(ClientHello, RandomRecordSizes) {
  Bytes bytes = opensslClientHello({.sni = "random.example.com", .alpn = {"h2"}, .padding = 700});
  ClientHello want = parseOk(bytes);
  Bytes msg = handshakeMessage(bytes);
  std::mt19937 rng(1234);
  for (int round = 0; round < 200; ++round) {
    std::vector<size_t> sizes;
    for (int i = 0; i < 64; ++i) {
      sizes.push_back(std::uniform_int_distribution<size_t>(1, round % 2 ? 9 : 400)(rng));
    }
    Bytes stream = intoRecords(msg, sizes);
    ASSERT_LE(stream.size(), kMaxClientHello);
    expectSame(parseOk(stream), want);
    size_t cut = std::uniform_int_distribution<size_t>(0, stream.size() - 1)(rng);
    EXPECT_EQ(parse(Bytes(stream.begin(), stream.begin() + cut)), HelloStatus::NeedMore) << cut;
  }
}

// A real hello padded to `stream_size` bytes in one record.
Bytes paddedHello(size_t stream_size) {
  ClientOptions options{.sni = "big.example.com", .alpn = {"h2"}, .padding = 1000};
  size_t base = opensslClientHello(options).size();  // the same size every time
  options.padding += stream_size - base;
  return opensslClientHello(options);
}

TEST(ClientHello, LargestHelloParses) {
  Bytes bytes = paddedHello(kMaxClientHello);
  ASSERT_EQ(bytes.size(), kMaxClientHello);
  ClientHello hello = parseOk(bytes);
  EXPECT_EQ(hello.sni, "big.example.com");
  EXPECT_EQ(hello.record_bytes, kMaxClientHello);
  EXPECT_EQ(parse(Bytes(bytes.begin(), bytes.end() - 1)), HelloStatus::NeedMore);
}

TEST(ClientHello, OneByteOverTheLimitIsTooLarge) {
  Bytes bytes = paddedHello(kMaxClientHello + 1);
  ASSERT_EQ(bytes.size(), kMaxClientHello + 1);
  EXPECT_EQ(parse(bytes), HelloStatus::TooLarge);
  // Known from the record header already: no need to wait for 16 KiB.
  EXPECT_EQ(parse(Bytes(bytes.begin(), bytes.begin() + 5)), HelloStatus::TooLarge);
  EXPECT_EQ(parse(Bytes(bytes.begin(), bytes.begin() + 4)), HelloStatus::NeedMore);
}

TEST(ClientHello, HelloLongerThanTheLimitIsTooLarge) {
  // OpenSSL splits this one over two records; the first, of 2^14 bytes, cannot fit.
  Bytes bytes = opensslClientHello({.sni = "huge.example.com", .padding = 20000});
  ASSERT_GT(bytes.size(), 20000u);
  EXPECT_EQ(parse(bytes), HelloStatus::TooLarge);
  EXPECT_EQ(parse(Bytes(bytes.begin(), bytes.begin() + 5)), HelloStatus::TooLarge);
  // In small records, the handshake header gives its length away.
  Bytes small = intoRecords(handshakeMessage(bytes), {100});
  EXPECT_EQ(parse(Bytes(small.begin(), small.begin() + 9)), HelloStatus::TooLarge);
  EXPECT_EQ(parse(Bytes(small.begin(), small.begin() + 8)), HelloStatus::NeedMore);
}

TEST(ClientHello, TooManyRecordBytesIsTooLarge) {
  // A 3 KB hello fits, but in 1-byte records it needs 18 KB of stream.
  Bytes msg = handshakeMessage(paddedHello(3000));
  Bytes ones = intoRecords(msg, {1});
  ASSERT_GT(ones.size(), kMaxClientHello);
  EXPECT_EQ(parse(ones), HelloStatus::TooLarge);
  // Decided well before the limit: after record k (ending at byte 6k) the other M - k message
  // bytes need at least one more record header, so 6k + 5 + M - k stream bytes in all. The
  // header of the first record k for which that is over the limit gives it away.
  const size_t m = msg.size();
  size_t k = 1;
  while (6 * k + 5 + m - k <= kMaxClientHello) {
    ++k;
  }
  const size_t decided = 6 * (k - 1) + 5;
  EXPECT_LT(decided, kMaxClientHello - 200);
  EXPECT_EQ(parse(Bytes(ones.begin(), ones.begin() + decided)), HelloStatus::TooLarge);
  EXPECT_EQ(parse(Bytes(ones.begin(), ones.begin() + decided - 1)), HelloStatus::NeedMore);
  // Never NeedMore once kMaxClientHello bytes are there.
  EXPECT_EQ(parse(Bytes(ones.begin(), ones.begin() + kMaxClientHello)), HelloStatus::TooLarge);
}

// --- Not TLS, and broken TLS. ---

TEST(ClientHello, NotTls) {
  EXPECT_EQ(parse(std::string_view("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")),
            HelloStatus::NotTls);
  EXPECT_EQ(parse(std::string_view("G")), HelloStatus::NotTls);
  EXPECT_EQ(parse(std::string_view("SSH-2.0-OpenSSH_9.2\r\n")), HelloStatus::NotTls);
  // An SSLv2-compatible hello: a 2-byte length with the top bit set, then type 1.
  EXPECT_EQ(parse(Bytes{0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15}), HelloStatus::NotTls);
  EXPECT_EQ(parse(Bytes{22, 2}), HelloStatus::NotTls);            // major version 2
  EXPECT_EQ(parse(Bytes{22, 3, 0}), HelloStatus::NotTls);         // SSL 3.0
  EXPECT_EQ(parse(Bytes{22, 3, 5}), HelloStatus::NotTls);         // no such version
  EXPECT_EQ(parse(Bytes{21, 3, 1, 0, 2, 2, 40}), HelloStatus::NotTls);  // an alert first
  EXPECT_EQ(parse(Bytes{23, 3, 3, 0, 1, 0}), HelloStatus::NotTls);      // application data
  // The first bytes of a real hello are not enough to tell.
  EXPECT_EQ(parse(Bytes{}), HelloStatus::NeedMore);
  EXPECT_EQ(parse(Bytes{22}), HelloStatus::NeedMore);
  EXPECT_EQ(parse(Bytes{22, 3}), HelloStatus::NeedMore);
  EXPECT_EQ(parse(Bytes{22, 3, 1}), HelloStatus::NeedMore);
}

TEST(ClientHello, SyntheticHelloParses) {
  // The baseline the malformed cases below change one thing of.
  ClientHello hello =
      parseOk(helloWith({serverName("Syn.Example"), alpnExt({"h2"}), versionsExt({0x0304})}));
  EXPECT_EQ(hello.sni, "syn.example");
  EXPECT_TRUE(hello.offers_tls13);
  // No extensions block at all (TLS 1.2 allows it), and an empty one.
  hello = parseOk(record(message(body({}))));
  EXPECT_FALSE(hello.has_supported_versions);
  EXPECT_EQ(hello.sni, "");
  EXPECT_EQ(parse(record(message(body(u16(0))))), HelloStatus::Ok);
  // supported_versions without 1.3.
  hello = parseOk(helloWith({versionsExt({0x0303, 0x0302})}));
  EXPECT_TRUE(hello.has_supported_versions);
  EXPECT_FALSE(hello.offers_tls13);
  // pre_shared_key last is fine.
  EXPECT_EQ(parse(helloWith({serverName("a.b"), ext(41, {1, 2, 3})})), HelloStatus::Ok);
}

TEST(ClientHello, RecordLayerErrorsAreMalformed) {
  Bytes msg = message(body(vec16(serverName("r.example"))));
  Bytes good = intoRecords(msg, {10});
  ASSERT_EQ(parse(good), HelloStatus::Ok);

  Bytes bad = good;
  bad[15] = 23;  // the second record is application data
  EXPECT_EQ(parse(bad), HelloStatus::Malformed);
  EXPECT_EQ(parse(Bytes(bad.begin(), bad.begin() + 20)), HelloStatus::Malformed);
  bad = good;
  bad[15] = 21;  // an alert
  EXPECT_EQ(parse(bad), HelloStatus::Malformed);
  bad = good;
  bad[16] = 2;  // record version 0x0203
  EXPECT_EQ(parse(bad), HelloStatus::Malformed);
  bad = good;
  bad[17] = 5;  // record version 0x0305
  EXPECT_EQ(parse(bad), HelloStatus::Malformed);

  // A zero-length record, first or later.
  EXPECT_EQ(parse(cat({{22, 3, 1, 0, 0}, good})), HelloStatus::Malformed);
  EXPECT_EQ(parse(cat({Bytes(good.begin(), good.begin() + 15), {22, 3, 3, 0, 0},
                       Bytes(good.begin() + 15, good.end())})),
            HelloStatus::Malformed);
  // A record longer than 2^14 is an error whatever it holds.
  EXPECT_EQ(parse(Bytes{22, 3, 1, 0x40, 0x01}), HelloStatus::Malformed);
  // The record that ends the hello goes on past it (another message, or junk).
  EXPECT_EQ(parse(record(cat({msg, {1}}))), HelloStatus::Malformed);
  EXPECT_EQ(parse(record(cat({msg, message(body({}))}))), HelloStatus::Malformed);
  Bytes longer = intoRecords(msg, {10});
  longer.insert(longer.end(), {22, 3, 3, 0, 1, 0});  // one more record: fine, not looked at
  EXPECT_EQ(parse(longer), HelloStatus::Ok);
}

TEST(ClientHello, WrongHandshakeMessageIsMalformed) {
  Bytes body_bytes = body(vec16(serverName("h.example")));
  EXPECT_EQ(parse(record(message(body_bytes, 2))), HelloStatus::Malformed);  // ServerHello
  EXPECT_EQ(parse(record(message(body_bytes, 0))), HelloStatus::Malformed);  // HelloRequest
  // Known from the first message byte, even in a 1-byte record.
  EXPECT_EQ(parse(Bytes{22, 3, 1, 0, 1, 2}), HelloStatus::Malformed);
  EXPECT_EQ(parse(Bytes{22, 3, 1, 0, 1, 1}), HelloStatus::NeedMore);
  // A body too short to hold the fixed fields.
  EXPECT_EQ(parse(record(message(Bytes(40, 0)))), HelloStatus::Malformed);
  EXPECT_EQ(parse(Bytes{22, 3, 1, 0, 4, 1, 0, 0, 40}), HelloStatus::Malformed);
  // The message claims more than its records carry: the next record is awaited.
  Bytes msg = message(body_bytes);
  msg[3] += 1;
  EXPECT_EQ(parse(record(msg)), HelloStatus::NeedMore);
  EXPECT_EQ(parse(cat({record(msg), {23, 3, 3, 0, 1, 0}})), HelloStatus::Malformed);
}

TEST(ClientHello, BodyErrorsAreMalformed) {
  const Bytes sni = serverName("b.example");
  // legacy_version must be 3.x.
  EXPECT_EQ(parse(record(message(body(vec16(sni), 0x0203)))), HelloStatus::Malformed);
  EXPECT_EQ(parse(record(message(body(vec16(sni), 0x0301)))), HelloStatus::Ok);
  // Session id longer than 32; odd and empty cipher suites; no compression method.
  auto custom = [](const Bytes& session, const Bytes& suites, const Bytes& compression) {
    return record(message(cat({u16(0x0303), Bytes(32, 1), vec8(session), vec16(suites),
                               vec8(compression), u16(0)})));
  };
  EXPECT_EQ(parse(custom(Bytes(32, 0), {0, 1}, {0})), HelloStatus::Ok);
  EXPECT_EQ(parse(custom({}, {0, 1}, {0})), HelloStatus::Ok);
  EXPECT_EQ(parse(custom(Bytes(33, 0), {0, 1}, {0})), HelloStatus::Malformed);
  EXPECT_EQ(parse(custom(Bytes(32, 0), {0, 1, 2}, {0})), HelloStatus::Malformed);
  EXPECT_EQ(parse(custom(Bytes(32, 0), {}, {0, 0, 0})), HelloStatus::Malformed);
  EXPECT_EQ(parse(custom(Bytes(32, 0), {0, 1}, {})), HelloStatus::Malformed);
  // The extensions block's length must be exact, with nothing after it.
  Bytes exts = sni;
  EXPECT_EQ(parse(record(message(body(cat({u16(exts.size() + 1), exts}))))),
            HelloStatus::Malformed);
  EXPECT_EQ(parse(record(message(body(cat({u16(exts.size() - 1), exts}))))),
            HelloStatus::Malformed);
  EXPECT_EQ(parse(record(message(body(cat({vec16(exts), {0}}))))), HelloStatus::Malformed);
  EXPECT_EQ(parse(record(message(body({0})))), HelloStatus::Malformed);  // half a length
  // An extension whose length runs past the block, or a lone type.
  EXPECT_EQ(parse(record(message(body(vec16(cat({sni, u16(99), u16(5), {1, 2}})))))),
            HelloStatus::Malformed);
  EXPECT_EQ(parse(record(message(body(vec16(cat({sni, u16(99)})))))), HelloStatus::Malformed);
}

TEST(ClientHello, ExtensionRulesAreEnforced) {
  const Bytes sni = serverName("e.example");
  // Each extension once, known or not.
  EXPECT_EQ(parse(helloWith({sni, sni})), HelloStatus::Malformed);
  EXPECT_EQ(parse(helloWith({ext(99, {}), sni, ext(99, {1})})), HelloStatus::Malformed);
  EXPECT_EQ(parse(helloWith({ext(99, {}), sni, ext(98, {1})})), HelloStatus::Ok);
  // pre_shared_key must come last.
  EXPECT_EQ(parse(helloWith({ext(41, {1}), sni})), HelloStatus::Malformed);
  // ALPN: a non-empty list of non-empty names, lengths exact.
  EXPECT_EQ(parseOk(helloWith({alpnExt({"h2", "x"})})).alpn, (std::vector<std::string>{"h2", "x"}));
  EXPECT_EQ(parse(helloWith({alpnExt({"h2", ""})})), HelloStatus::Malformed);
  EXPECT_EQ(parse(helloWith({alpnExt({})})), HelloStatus::Malformed);
  EXPECT_EQ(parse(helloWith({ext(16, {})})), HelloStatus::Malformed);
  EXPECT_EQ(parse(helloWith({ext(16, {0, 3, 2, 'h', '2'})})), HelloStatus::Ok);
  EXPECT_EQ(parse(helloWith({ext(16, {0, 4, 2, 'h', '2'})})), HelloStatus::Malformed);
  EXPECT_EQ(parse(helloWith({ext(16, {0, 3, 2, 'h', '2', 0})})), HelloStatus::Malformed);
  EXPECT_EQ(parse(helloWith({ext(16, {0, 3, 3, 'h', '2'})})), HelloStatus::Malformed);
  // supported_versions: an even count of bytes, at least one version, length exact.
  EXPECT_EQ(parse(helloWith({ext(43, {3, 3, 4, 3})})), HelloStatus::Malformed);
  EXPECT_EQ(parse(helloWith({ext(43, {0})})), HelloStatus::Malformed);
  EXPECT_EQ(parse(helloWith({ext(43, {2, 3, 4, 0})})), HelloStatus::Malformed);
  EXPECT_EQ(parse(helloWith({ext(43, {})})), HelloStatus::Malformed);
}

TEST(ClientHello, ServerNameRules) {
  auto names = [](std::initializer_list<std::pair<uint8_t, std::string_view>> entries) {
    Bytes list;
    for (const auto& [type, name] : entries) {
      list = cat({list, {type}, vec16(text(name))});
    }
    return ext(0, vec16(list));
  };
  EXPECT_EQ(parseOk(helloWith({names({{0, "one.example"}})})).sni, "one.example");
  // Unknown name types are skipped; the host_name is used wherever it is.
  EXPECT_EQ(parseOk(helloWith({names({{7, "opaque\x01"}, {0, "two.example"}})})).sni,
            "two.example");
  EXPECT_EQ(parseOk(helloWith({names({{7, "x"}})})).sni, "");
  // At most one host_name (RFC 6066 3).
  EXPECT_EQ(parse(helloWith({names({{0, "a.example"}, {0, "b.example"}})})),
            HelloStatus::Malformed);
  EXPECT_EQ(parse(helloWith({names({})})), HelloStatus::Malformed);  // an empty list
  EXPECT_EQ(parse(helloWith({ext(0, {})})), HelloStatus::Malformed);
  EXPECT_EQ(parse(helloWith({ext(0, {0, 4, 0, 0, 2, 'a'})})), HelloStatus::Malformed);
  EXPECT_EQ(parse(helloWith({ext(0, {0, 5, 0, 0, 1, 'a'})})), HelloStatus::Malformed);
  EXPECT_EQ(parse(helloWith({ext(0, {0, 4, 0, 0, 1, 'a', 0})})), HelloStatus::Malformed);
  // Names that are no DNS host name.
  EXPECT_EQ(parse(helloWith({serverName("")})), HelloStatus::Malformed);
  EXPECT_EQ(parse(helloWith({serverName(std::string_view("evil.com\0.example", 17))})),
            HelloStatus::Malformed);
  EXPECT_EQ(parse(helloWith({serverName("a." + std::string(64, 'b'))})), HelloStatus::Malformed);
  std::string label(63, 'c');
  std::string longest = label + "." + label + "." + label + "." + label;  // 255
  EXPECT_EQ(parseOk(helloWith({serverName(longest)})).sni, longest);
  EXPECT_EQ(parseOk(helloWith({serverName(longest + ".")})).sni, longest);
  EXPECT_EQ(parse(helloWith({serverName(longest + "d")})), HelloStatus::Malformed);
  EXPECT_EQ(parse(helloWith({serverName("1.2.3.4:443")})), HelloStatus::Malformed);
}

TEST(ClientHello, OutIsUntouchedUnlessOk) {
  ClientHello hello;
  hello.sni = "before";
  Bytes bytes = helloWith({serverName("after.example")});
  EXPECT_EQ(parseClientHello({bytes.data(), bytes.size() - 1}, hello), HelloStatus::NeedMore);
  EXPECT_EQ(hello.sni, "before");
  EXPECT_EQ(parseClientHello(helloWith({serverName("bad name")}), hello), HelloStatus::Malformed);
  EXPECT_EQ(hello.sni, "before");
  EXPECT_EQ(parseClientHello(bytes, hello), HelloStatus::Ok);
  EXPECT_EQ(hello.sni, "after.example");
}

TEST(ClientHello, StatusNames) {
  EXPECT_STREQ(toString(HelloStatus::NeedMore), "need more");
  EXPECT_STREQ(toString(HelloStatus::Ok), "ok");
  EXPECT_STREQ(toString(HelloStatus::NotTls), "not TLS");
  EXPECT_STREQ(toString(HelloStatus::Malformed), "malformed");
  EXPECT_STREQ(toString(HelloStatus::TooLarge), "too large");
}

}  // namespace
}  // namespace weir::tls
