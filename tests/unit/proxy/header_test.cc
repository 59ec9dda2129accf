#include "proxy/header.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace weir::proxy {
namespace {

using Bytes = std::vector<uint8_t>;

// --- Building inputs ---

Bytes text(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

// "0d 0a ..." (spaces ignored) as bytes.
Bytes hex(std::string_view s) {
  Bytes out;
  int high = -1;
  for (char c : s) {
    if (c == ' ') {
      continue;
    }
    const int v = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<uint8_t>(high << 4 | v));
      high = -1;
    }
  }
  return out;
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) {
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

Bytes be16(size_t v) {
  return {static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}

Bytes tlv(uint8_t type, const Bytes& value) {
  return cat({{type}, be16(value.size()), value});
}

const Bytes kSignature = hex("0d0a0d0a 000d0a51 5549540a");

// A v2 header: signature, version/command, family, the length of `rest`, then `rest`.
Bytes v2(uint8_t ver_cmd, uint8_t fam, const Bytes& rest) {
  return cat({kSignature, {ver_cmd, fam}, be16(rest.size()), rest});
}

// 192.0.2.1:51000 -> 198.51.100.2:443, as a v2 TCP4 address block.
const Bytes kTcp4Block = hex("c0000201 c6336402 c738 01bb");

net::SockAddr addr(std::string_view s) {
  return *net::SockAddr::parse(s);
}

std::string asString(const Bytes& b) {
  return {b.begin(), b.end()};
}

// --- Parsing helpers ---

Status parseStatus(const Bytes& bytes) {
  Header h;
  size_t length = 0;
  return parse(bytes, h, length);
}

Status parseStatus(std::string_view s) {
  return parseStatus(text(s));
}

// Parses `bytes`, which must be a whole header of `want_length` bytes (default: all).
Header parseOk(const Bytes& bytes, size_t want_length = 0) {
  Header h;
  size_t length = 0;
  EXPECT_EQ(parse(bytes, h, length), Status::Ok) << asString(bytes);
  EXPECT_EQ(length, want_length != 0 ? want_length : bytes.size());
  return h;
}

Header parseOk(std::string_view s) {
  return parseOk(text(s));
}

void expectSame(const Header& a, const Header& b) {
  EXPECT_EQ(a.local, b.local);
  EXPECT_EQ(a.source, b.source);
  EXPECT_EQ(a.destination, b.destination);
  EXPECT_EQ(a.authority, b.authority);
  EXPECT_EQ(a.alpn, b.alpn);
  ASSERT_EQ(a.ssl.has_value(), b.ssl.has_value());
  if (a.ssl) {
    EXPECT_EQ(a.ssl->version, b.ssl->version);
    EXPECT_EQ(a.ssl->cipher, b.ssl->cipher);
    EXPECT_EQ(a.ssl->sig_alg, b.ssl->sig_alg);
    EXPECT_EQ(a.ssl->key_alg, b.ssl->key_alg);
    EXPECT_EQ(a.ssl->client_cert_conn, b.ssl->client_cert_conn);
    EXPECT_EQ(a.ssl->client_cert_sess, b.ssl->client_cert_sess);
    EXPECT_EQ(a.ssl->verify, b.ssl->verify);
  }
}

// Every proper prefix of `bytes` (a whole header) is NeedMore, and leaves `out` alone.
void expectPrefixesNeedMore(const Bytes& bytes) {
  for (size_t n = 0; n < bytes.size(); ++n) {
    Header h;
    h.alpn = "untouched";
    size_t length = 12345;
    ASSERT_EQ(parse({bytes.data(), n}, h, length), Status::NeedMore)
        << "prefix " << n << " of " << bytes.size() << ": " << asString(bytes);
    EXPECT_EQ(h.alpn, "untouched");
    EXPECT_EQ(length, 12345u);
  }
}

Header tcp4() {
  Header h;
  h.source = addr("192.0.2.1:51000");
  h.destination = addr("198.51.100.2:443");
  return h;
}

Header tcp6() {
  Header h;
  h.source = addr("[2001:db8::1]:1234");
  h.destination = addr("[2001:db8::2]:443");
  return h;
}

std::string v1(const Header& h) {
  std::string out;
  encodeV1(h, out);
  return out;
}

Bytes v2(const Header& h, bool crc) {
  std::string out;
  encodeV2(h, crc, out);
  return text(out);
}

// --- CRC32c ---

TEST(ProxyCrc32c, StandardCheckValue) {
  const Bytes check = text("123456789");
  EXPECT_EQ(crc32c(check), 0xE3069283u);
  EXPECT_EQ(crc32c({}), 0u);
  // Chained over two pieces, the same.
  EXPECT_EQ(crc32c(std::span(check).subspan(4), crc32c(std::span(check).first(4))),
            0xE3069283u);
  // RFC 3720 B.4: 32 bytes of zeros.
  EXPECT_EQ(crc32c(Bytes(32, 0)), 0x8A9136AAu);
}

// --- Encoding v1 ---

TEST(ProxyEncodeV1, SpecExamplesByteForByte) {
  Header h;
  h.source = addr("192.168.0.1:56324");
  h.destination = addr("192.168.0.11:443");
  EXPECT_EQ(v1(h), "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");

  h.source = addr("255.255.255.255:65535");
  h.destination = addr("255.255.255.255:65535");
  EXPECT_EQ(v1(h), "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n");
  EXPECT_EQ(v1(h).size(), 56u);  // the spec's longest TCP4 line

  const std::string max6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  h.source = addr("[" + max6 + "]:65535");
  h.destination = addr("[" + max6 + "]:65535");
  const std::string line = "PROXY TCP6 " + max6 + " " + max6 + " 65535 65535\r\n";
  EXPECT_EQ(v1(h), line);
  EXPECT_EQ(line.size(), 104u);  // the spec's longest TCP6 line

  EXPECT_EQ(v1(tcp6()), "PROXY TCP6 2001:db8::1 2001:db8::2 1234 443\r\n");
}

TEST(ProxyEncodeV1, UnknownWhenLocalOrMixedOrIncomplete) {
  Header local = tcp4();
  local.local = true;
  EXPECT_EQ(v1(local), "PROXY UNKNOWN\r\n");
  EXPECT_EQ(v1(Header{}), "PROXY UNKNOWN\r\n");
  Header mixed = tcp4();
  mixed.destination = addr("[2001:db8::2]:443");
  EXPECT_EQ(v1(mixed), "PROXY UNKNOWN\r\n");
  Header half;
  half.source = addr("192.0.2.1:1");
  EXPECT_EQ(v1(half), "PROXY UNKNOWN\r\n");
}

TEST(ProxyEncodeV1, AppendsToTheBuffer) {
  std::string out = "x";
  encodeV1(Header{.local = true}, out);
  EXPECT_EQ(out, "xPROXY UNKNOWN\r\n");
}

// --- Encoding v2: the bytes written out from the spec's layout (section 2.2) ---

TEST(ProxyEncodeV2, LocalIsSixteenBytes) {
  const Bytes want = hex("0d0a0d0a 000d0a51 5549540a 20 00 0000");
  std::string out;
  encodeV2Local(out);
  EXPECT_EQ(text(out), want);
  EXPECT_EQ(v2(Header{.local = true}, false), want);
  // LOCAL drops the addresses even when it has them.
  Header local = tcp4();
  local.local = true;
  EXPECT_EQ(v2(local, false), want);
}

TEST(ProxyEncodeV2, Tcp4) {
  EXPECT_EQ(v2(tcp4(), false),
            hex("0d0a0d0a 000d0a51 5549540a 21 11 000c"
                "c0000201 c6336402 c738 01bb"));
}

TEST(ProxyEncodeV2, Tcp6) {
  EXPECT_EQ(v2(tcp6(), false),
            hex("0d0a0d0a 000d0a51 5549540a 21 21 0024"
                "20010db8 00000000 00000000 00000001"
                "20010db8 00000000 00000000 00000002"
                "04d2 01bb"));
}

TEST(ProxyEncodeV2, AlpnAuthorityAndCrc32c) {
  Header h = tcp4();
  h.alpn = "h2";
  h.authority = "example.com";
  // 12 address bytes + ALPN (3 + 2) + AUTHORITY (3 + 11) + CRC32C (3 + 4) = 38 = 0x26. The
  // CRC (3e7ab6cc) was computed over these bytes with the value zeroed by a separate bit-wise
  // CRC32c (Python), not by this encoder.
  const Bytes want = hex(
      "0d0a0d0a 000d0a51 5549540a 21 11 0026"
      "c0000201 c6336402 c738 01bb"
      "01 0002 6832"
      "02 000b 6578616d706c652e636f6d"
      "03 0004 3e7ab6cc");
  EXPECT_EQ(v2(h, true), want);
  expectSame(parseOk(want), h);
}

TEST(ProxyEncodeV2, SslWithSubTlvs) {
  Header h = tcp4();
  h.ssl = SslInfo{.version = "TLSv1.3", .cipher = "TLS_AES_128_GCM_SHA256",
                  .client_cert_conn = true, .verify = 0x01020304};
  // SSL value: client 0x03 (SSL, CERT_CONN), verify, VERSION (3 + 7), CIPHER (3 + 22): 40.
  const Bytes want = hex(
      "0d0a0d0a 000d0a51 5549540a 21 11 0037"
      "c0000201 c6336402 c738 01bb"
      "20 0028 03 01020304"
      "21 0007 544c5376312e33"
      "23 0016 544c535f4145535f3132385f47434d5f534841323536");
  EXPECT_EQ(v2(h, false), want);
  expectSame(parseOk(want), h);
  // Empty strings are left out; the flags follow the booleans.
  h.ssl = SslInfo{.client_cert_sess = true};
  EXPECT_EQ(v2(h, false), v2(0x21, 0x11, cat({kTcp4Block, hex("20 0005 05 00000000")})));
}

TEST(ProxyEncodeV2, MixedFamiliesGoAsIpv6WithIpv4Mapped) {
  Header h = tcp6();
  h.destination = addr("198.51.100.2:443");
  const Bytes bytes = v2(h, false);
  EXPECT_EQ(bytes, hex("0d0a0d0a 000d0a51 5549540a 21 21 0024"
                       "20010db8 00000000 00000000 00000001"
                       "00000000 00000000 0000ffff c6336402"
                       "04d2 01bb"));
  EXPECT_EQ(parseOk(bytes).destination, addr("[::ffff:198.51.100.2]:443"));
}

TEST(ProxyEncodeV2, NoAddressesIsProxyUnspec) {
  Header h;
  h.authority = "a";
  EXPECT_EQ(v2(h, false), v2(0x21, 0x00, hex("02 0001 61")));
}

// --- Parsing v1 ---

TEST(ProxyParseV1, SpecExamples) {
  Header h = parseOk("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
  EXPECT_FALSE(h.local);
  EXPECT_EQ(h.source, addr("192.168.0.1:56324"));
  EXPECT_EQ(h.destination, addr("192.168.0.11:443"));

  h = parseOk("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n");
  EXPECT_EQ(h.source, addr("255.255.255.255:65535"));

  const std::string max6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  h = parseOk("PROXY TCP6 " + max6 + " " + max6 + " 65535 65535\r\n");
  EXPECT_EQ(h.source, addr("[" + max6 + "]:65535"));
  EXPECT_EQ(h.destination, addr("[" + max6 + "]:65535"));

  h = parseOk("PROXY UNKNOWN\r\n");
  EXPECT_TRUE(h.local);
  EXPECT_FALSE(h.source);
  EXPECT_FALSE(h.destination);

  // The spec's worst case: exactly 107 bytes, and local whatever follows UNKNOWN.
  const std::string worst = "PROXY UNKNOWN " + max6 + " " + max6 + " 65535 65535\r\n";
  ASSERT_EQ(worst.size(), kV1MaxLength);
  EXPECT_TRUE(parseOk(worst).local);
  EXPECT_TRUE(parseOk("PROXY UNKNOWN anything\tat\rall\n\x01\r\n").local);
}

TEST(ProxyParseV1, AddressForms) {
  EXPECT_EQ(parseOk("PROXY TCP6 2001:DB8::1 ::1 0 1\r\n").source, addr("[2001:db8::1]:0"));
  EXPECT_EQ(parseOk("PROXY TCP6 ::ffff:1.2.3.4 :: 1 0\r\n").source, addr("[::ffff:1.2.3.4]:1"));
  EXPECT_EQ(parseOk("PROXY TCP4 0.0.0.0 10.0.0.1 0 0\r\n").destination, addr("10.0.0.1:0"));
}

TEST(ProxyParseV1, Malformed) {
  for (std::string_view line : {
           "PROXY TCP5 1.2.3.4 1.2.3.4 1 1\r\n",
           "PROXY tcp4 1.2.3.4 1.2.3.4 1 1\r\n",
           "PROXY  TCP4 1.2.3.4 1.2.3.4 1 1\r\n",
           "PROXY TCP4  1.2.3.4 1.2.3.4 1 1\r\n",
           "PROXY TCP4 1.2.3.4  1.2.3.4 1 1\r\n",
           "PROXY TCP4 1.2.3.4 1.2.3.4 1  1\r\n",
           "PROXY TCP4 1.2.3.4 1.2.3.4 1 1 \r\n",
           "PROXY TCP4 1.2.3.4 1.2.3.4 1 1 2\r\n",
           "PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n",
           "PROXY TCP4 1.2.3.4\t1.2.3.4 1 1\r\n",
           "PROXY TCP4 01.2.3.4 1.2.3.4 1 1\r\n",     // leading zero
           "PROXY TCP4 1.2.3 1.2.3.4 1 1\r\n",        // three parts
           "PROXY TCP4 1.2.3.256 1.2.3.4 1 1\r\n",
           "PROXY TCP4 1.2.3.4.5 1.2.3.4 1 1\r\n",
           "PROXY TCP4 ::1 1.2.3.4 1 1\r\n",          // IPv6 in TCP4
           "PROXY TCP6 1.2.3.4 ::1 1 1\r\n",          // IPv4 in TCP6
           "PROXY TCP6 ::1::2 ::1 1 1\r\n",
           "PROXY TCP6 12345::1 ::1 1 1\r\n",
           "PROXY TCP4 1.2.3.4 1.2.3.4 01 1\r\n",     // leading zero
           "PROXY TCP4 1.2.3.4 1.2.3.4 65536 1\r\n",
           "PROXY TCP4 1.2.3.4 1.2.3.4 1 100000\r\n",
           "PROXY TCP4 1.2.3.4 1.2.3.4 -1 1\r\n",
           "PROXY TCP4 1.2.3.4 1.2.3.4 1 1\n",        // LF alone
           "PROXY TCP4 1.2.3.4 1.2.3.4 1 1\rx",       // CR alone
           "PROXY TCP4 1.2.3.4 1.2.3.4 1 1\r\r\n",
           "PROXY UNKNOWNX\r\n",
           "PROXY UNKNOW\r\n",
           "PROXY \r\n",
       }) {
    EXPECT_EQ(parseStatus(line), Status::V1Malformed) << line;
  }
}

TEST(ProxyParseV1, MalformedAsSoonAsItShows) {
  EXPECT_EQ(parseStatus("PROXY X"), Status::V1Malformed);
  EXPECT_EQ(parseStatus("PROXY TCP4 1.2.3.4 "), Status::NeedMore);
  EXPECT_EQ(parseStatus("PROXY TCP4 1.2.3 "), Status::V1Malformed);
  EXPECT_EQ(parseStatus("PROXY TCP4 1.2.3.4 1.2.3.4 6553"), Status::NeedMore);
  EXPECT_EQ(parseStatus("PROXY TCP4 1.2.3.4 1.2.3.4 65536"), Status::V1Malformed);
  EXPECT_EQ(parseStatus("PROXY TCP4 1.2.3.4 1.2.3.4 0"), Status::NeedMore);
  EXPECT_EQ(parseStatus("PROXY TCP4 1.2.3.4 1.2.3.4 00"), Status::V1Malformed);
  EXPECT_EQ(parseStatus("PROXY TCP4 1234567890123456"), Status::V1Malformed);  // > 15
  EXPECT_EQ(parseStatus("PROXY UNKNOWN"), Status::NeedMore);
  EXPECT_EQ(parseStatus("PROXY UNKNOWN\r"), Status::NeedMore);
}

TEST(ProxyParseV1, NoCrlfIn107BytesIsTooLong) {
  // A valid start that needs more than 107 bytes: an UNKNOWN line, and a TCP6 line whose
  // IPv4-tailed addresses inet_pton takes but do not fit.
  const std::string unknown = "PROXY UNKNOWN " + std::string(200, 'x') + "\r\n";
  EXPECT_EQ(parseStatus(unknown.substr(0, 106)), Status::NeedMore);
  EXPECT_EQ(parseStatus(unknown.substr(0, 107)), Status::V1TooLong);
  EXPECT_EQ(parseStatus(unknown), Status::V1TooLong);
  const std::string a = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
  const std::string tcp6 = "PROXY TCP6 " + a + " " + a + " 65535 65535\r\n";
  EXPECT_EQ(parseStatus(tcp6.substr(0, 106)), Status::NeedMore);
  EXPECT_EQ(parseStatus(tcp6.substr(0, 107)), Status::V1TooLong);
  EXPECT_EQ(parseStatus(tcp6), Status::V1TooLong);
  // A 108th byte that would have been the LF does not count.
  const std::string max6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  const std::string longer = "PROXY UNKNOWN " + max6 + " " + max6 + " 65535 655355\r\n";
  EXPECT_EQ(parseStatus(longer), Status::V1TooLong);
}

TEST(ProxyParseV1, NotProxy) {
  for (std::string_view s : {"GET / HTTP/1.1\r\n", "PROXZ", "P ", "PROXY\r\n", "proxy ",
                             "\x16\x03\x01"}) {
    EXPECT_EQ(parseStatus(s), Status::NotProxy) << s;
  }
}

// --- Parsing v2 ---

TEST(ProxyParseV2, Tcp4AndTcp6) {
  Header h = parseOk(v2(0x21, 0x11, kTcp4Block));
  EXPECT_FALSE(h.local);
  EXPECT_EQ(h.source, addr("192.0.2.1:51000"));
  EXPECT_EQ(h.destination, addr("198.51.100.2:443"));
  h = parseOk(v2(0x21, 0x21,
                 hex("20010db8 00000000 00000000 00000001"
                     "20010db8 00000000 00000000 00000002 04d2 01bb")));
  EXPECT_EQ(h.source, addr("[2001:db8::1]:1234"));
  EXPECT_EQ(h.destination, addr("[2001:db8::2]:443"));
}

TEST(ProxyParseV2, LocalAndUnspec) {
  Header h = parseOk(hex("0d0a0d0a 000d0a51 5549540a 20 00 0000"));
  EXPECT_TRUE(h.local);
  EXPECT_FALSE(h.source);
  // LOCAL ignores the addresses it carries, but reads the TLVs after them.
  h = parseOk(v2(0x20, 0x11, cat({kTcp4Block, tlv(kTlvAuthority, text("a.test"))})));
  EXPECT_TRUE(h.local);
  EXPECT_FALSE(h.source);
  EXPECT_EQ(h.authority, "a.test");
  // LOCAL of a family the spec does not define: skipped unread, whatever it holds.
  EXPECT_TRUE(parseOk(v2(0x20, 0x44, hex("ff ffff 00"))).local);
  // LOCAL with UDP and UNIX families are fine too.
  EXPECT_TRUE(parseOk(v2(0x20, 0x12, kTcp4Block)).local);
  EXPECT_TRUE(parseOk(v2(0x20, 0x32, Bytes(216, 0))).local);
  // PROXY with UNSPEC: the connection's own addresses, and the TLVs.
  h = parseOk(v2(0x21, 0x00, tlv(kTlvAlpn, text("h2"))));
  EXPECT_TRUE(h.local);
  EXPECT_EQ(h.alpn, "h2");
}

TEST(ProxyParseV2, Tlvs) {
  const Bytes ssl = cat({hex("07 00000000"), tlv(kTlvSslVersion, text("TLSv1.2")),
                         tlv(kTlvSslCn, text("client \xc3\xa9")),
                         tlv(kTlvSslCipher, text("ECDHE-RSA-AES128-GCM-SHA256")),
                         tlv(kTlvSslSigAlg, text("RSA-SHA256")),
                         tlv(kTlvSslKeyAlg, text("RSA2048")), tlv(0x2f, hex("00"))});
  const Header h = parseOk(v2(
      0x21, 0x11,
      cat({kTcp4Block, tlv(kTlvNoop, {}), tlv(kTlvAlpn, text("http/1.1")),
           tlv(kTlvAuthority, text("caf\xc3\xa9.example")), tlv(kTlvUniqueId, Bytes(128, 7)),
           tlv(kTlvNetns, text("blue")), tlv(kTlvSsl, ssl), tlv(0xe0, text("custom")),
           tlv(kTlvNoop, hex("000000")), tlv(0xe0, {})})));
  EXPECT_EQ(h.alpn, "http/1.1");
  EXPECT_EQ(h.authority, "caf\xc3\xa9.example");
  EXPECT_EQ(h.unique_id, std::string(128, 7));
  ASSERT_TRUE(h.ssl);
  EXPECT_EQ(h.ssl->version, "TLSv1.2");
  EXPECT_EQ(h.ssl->cipher, "ECDHE-RSA-AES128-GCM-SHA256");
  EXPECT_EQ(h.ssl->sig_alg, "RSA-SHA256");
  EXPECT_EQ(h.ssl->key_alg, "RSA2048");
  EXPECT_TRUE(h.ssl->client_cert_conn);
  EXPECT_TRUE(h.ssl->client_cert_sess);
  EXPECT_EQ(h.ssl->verify, 0u);
}

TEST(ProxyParseV2, SslWithoutClientSslSaysNothing) {
  const Header h = parseOk(v2(
      0x21, 0x11, cat({kTcp4Block, tlv(kTlvSsl, cat({hex("00 00000001"),
                                                     tlv(kTlvSslVersion, text("x"))}))})));
  EXPECT_FALSE(h.ssl);
}

TEST(ProxyParseV2, FollowedByPayload) {
  const Bytes header = v2(tcp4(), true);
  const Bytes bytes = cat({header, text("GET / HTTP/1.1\r\n\r\n")});
  parseOk(bytes, header.size());
  const std::string line = "PROXY TCP4 192.0.2.1 198.51.100.2 51000 443\r\n";
  parseOk(text(line + "GET / HTTP/1.1\r\n\r\n"), line.size());
  parseOk(text("PROXY UNKNOWN\r\n\r\n"), 15);
}

TEST(ProxyParseV2, LargestHeader) {
  // The address block and a NOOP that fill kV2MaxPayload exactly.
  const Bytes noop = tlv(kTlvNoop, Bytes(kV2MaxPayload - 12 - 3, 0));
  const Bytes bytes = v2(0x21, 0x11, cat({kTcp4Block, noop}));
  ASSERT_EQ(bytes.size(), kMaxLength);
  parseOk(bytes);
}

// One minimal input for each error.
TEST(ProxyParseV2, EveryError) {
  const auto with = [](uint8_t ver_cmd, uint8_t fam, const Bytes& rest) {
    return parseStatus(v2(ver_cmd, fam, rest));
  };
  EXPECT_EQ(parseStatus(hex("0d0a0d0a 00")), Status::NeedMore);
  EXPECT_EQ(parseStatus(hex("0d0a0d0a 01")), Status::NotProxy);
  EXPECT_EQ(parseStatus(hex("0d0a0d0a 000d0a51 5549540b")), Status::NotProxy);
  EXPECT_EQ(parseStatus(cat({kSignature, {0x11}})), Status::V2BadVersion);
  EXPECT_EQ(parseStatus(cat({kSignature, {0x31}})), Status::V2BadVersion);
  EXPECT_EQ(parseStatus(cat({kSignature, {0x22}})), Status::V2BadVersion);
  EXPECT_EQ(parseStatus(cat({kSignature, {0x2f}})), Status::V2BadVersion);
  for (uint8_t fam : {0x01, 0x10, 0x12, 0x22, 0x31, 0x32, 0x41, 0xff}) {
    EXPECT_EQ(parseStatus(cat({kSignature, {0x21, fam}})), Status::V2BadFamily) << int{fam};
  }
  EXPECT_EQ(parseStatus(cat({kSignature, {0x21, 0x11}, be16(kV2MaxPayload + 1)})),
            Status::V2TooLarge);
  EXPECT_EQ(parseStatus(cat({kSignature, {0x20, 0x00}, be16(0xffff)})), Status::V2TooLarge);
  EXPECT_EQ(parseStatus(cat({kSignature, {0x21, 0x11}, be16(kV2MaxPayload)})),
            Status::NeedMore);
  EXPECT_EQ(parseStatus(cat({kSignature, {0x21, 0x11}, be16(11)})), Status::V2BadLength);
  EXPECT_EQ(parseStatus(cat({kSignature, {0x21, 0x21}, be16(35)})), Status::V2BadLength);
  EXPECT_EQ(parseStatus(cat({kSignature, {0x20, 0x21}, be16(12)})), Status::V2BadLength);

  // TLVs: overrunning, or known ones with a bad length or value.
  const Bytes a = kTcp4Block;
  EXPECT_EQ(with(0x21, 0x11, cat({a, hex("01 00")})), Status::V2BadTlv);
  EXPECT_EQ(with(0x21, 0x11, cat({a, hex("e0 0002 00")})), Status::V2BadTlv);
  EXPECT_EQ(with(0x21, 0x11, cat({a, tlv(kTlvAlpn, {})})), Status::V2BadTlv);
  EXPECT_EQ(with(0x21, 0x11, cat({a, tlv(kTlvAlpn, text("a")), tlv(kTlvAlpn, text("b"))})),
            Status::V2BadTlv);
  EXPECT_EQ(with(0x21, 0x11, cat({a, tlv(kTlvAuthority, {})})), Status::V2BadTlv);
  EXPECT_EQ(with(0x21, 0x11, cat({a, tlv(kTlvAuthority, hex("6100"))})), Status::V2BadTlv);
  EXPECT_EQ(with(0x21, 0x11, cat({a, tlv(kTlvAuthority, text("a\nb"))})), Status::V2BadTlv);
  EXPECT_EQ(with(0x21, 0x11, cat({a, tlv(kTlvCrc32c, hex("000000"))})), Status::V2BadTlv);
  EXPECT_EQ(with(0x21, 0x11, cat({a, tlv(kTlvUniqueId, Bytes(129, 1))})), Status::V2BadTlv);
  EXPECT_EQ(with(0x21, 0x11, cat({a, tlv(kTlvNetns, hex("ff"))})), Status::V2BadTlv);
  EXPECT_EQ(with(0x21, 0x11, cat({a, tlv(kTlvSsl, hex("01 000000"))})), Status::V2BadTlv);
  EXPECT_EQ(with(0x21, 0x11, cat({a, tlv(kTlvSsl, hex("01 00000000 21 0005 41"))})),
            Status::V2BadTlv);
  EXPECT_EQ(with(0x21, 0x11, cat({a, tlv(kTlvSsl, hex("01 00000000 21 0001 80"))})),
            Status::V2BadTlv);
  EXPECT_EQ(with(0x21, 0x11,
                 cat({a, tlv(kTlvSsl, hex("01 00000000 23 0001 41 23 0001 41"))})),
            Status::V2BadTlv);
  EXPECT_EQ(with(0x21, 0x11, cat({a, tlv(kTlvSsl, hex("01 00000000 22 0001 0a"))})),
            Status::V2BadTlv);
  // ... also in a LOCAL or UNSPEC header.
  EXPECT_EQ(with(0x20, 0x00, hex("01 0005 00")), Status::V2BadTlv);
  EXPECT_EQ(with(0x21, 0x00, hex("01 0005 00")), Status::V2BadTlv);

  // A wrong CRC, and the CRC TLV moved before others: still over the whole header.
  Bytes bad = v2(tcp4(), true);
  bad[17] ^= 1;
  EXPECT_EQ(parseStatus(bad), Status::V2BadCrc);
  bad = v2(tcp4(), true);
  bad.back() ^= 0x80;
  EXPECT_EQ(parseStatus(bad), Status::V2BadCrc);
}

TEST(ProxyParseV2, CrcAnywhereInTheTlvs) {
  // The CRC computed by hand here over the header with its field zero, then put in.
  Bytes bytes = v2(0x21, 0x11, cat({kTcp4Block, tlv(kTlvCrc32c, Bytes(4, 0)),
                                    tlv(kTlvAlpn, text("h2"))}));
  const uint32_t crc = crc32c(bytes);
  const size_t at = 16 + 12 + 3;
  for (int i = 0; i < 4; ++i) {
    bytes[at + i] = static_cast<uint8_t>(crc >> (24 - 8 * i));
  }
  EXPECT_EQ(parseOk(bytes).alpn, "h2");
  EXPECT_EQ(parseStatus(cat({bytes, text("payload")})), Status::Ok);
}

// --- Prefixes and round trips ---

TEST(ProxyParse, EveryProperPrefixNeedsMore) {
  Header full = tcp4();
  full.alpn = "h2";
  full.authority = "example.com";
  full.ssl = SslInfo{.version = "TLSv1.3", .cipher = "TLS_AES_256_GCM_SHA384",
                     .sig_alg = "ECDSA-SHA256", .key_alg = "EC256"};
  const std::string max6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  for (const Bytes& bytes : {
           text("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"),
           text("PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n"),
           text("PROXY TCP6 " + max6 + " " + max6 + " 65535 65535\r\n"),
           text("PROXY TCP6 ::ffff:1.2.3.4 :: 1 0\r\n"),
           text("PROXY UNKNOWN\r\n"),
           text("PROXY UNKNOWN " + max6 + " " + max6 + " 65535 65535\r\n"),
           v2(Header{.local = true}, false),
           v2(tcp4(), false),
           v2(tcp6(), true),
           v2(full, true),
       }) {
    parseOk(bytes);
    expectPrefixesNeedMore(bytes);
  }
}

TEST(ProxyParse, EmptyNeedsMore) {
  EXPECT_EQ(parseStatus(Bytes{}), Status::NeedMore);
}

TEST(ProxyParse, RoundTrips) {
  Header full = tcp6();
  full.alpn = "http/1.1";
  full.authority = "api.example.com";
  full.ssl = SslInfo{.version = "TLSv1.2", .cipher = "ECDHE-RSA-AES128-GCM-SHA256",
                     .sig_alg = "RSA-SHA256", .key_alg = "RSA2048", .client_cert_conn = true,
                     .client_cert_sess = true, .verify = 19};
  Header local_tlvs{.local = true, .authority = "b.example"};
  for (const Header& h : {tcp4(), tcp6(), full, local_tlvs, Header{.local = true}}) {
    for (bool crc : {false, true}) {
      expectSame(parseOk(v2(h, crc)), h);
    }
    Header line = parseOk(v1(h));
    EXPECT_EQ(line.local, h.local);
    EXPECT_EQ(line.source, h.source);
    EXPECT_EQ(line.destination, h.destination);
  }
}

TEST(ProxyParse, StatusNames) {
  std::set<std::string> names;
  for (Status s : {Status::Ok, Status::NeedMore, Status::NotProxy, Status::V1TooLong,
                   Status::V1Malformed, Status::V2BadVersion, Status::V2BadFamily,
                   Status::V2TooLarge, Status::V2BadLength, Status::V2BadTlv,
                   Status::V2BadCrc}) {
    names.insert(toString(s));
  }
  EXPECT_EQ(names.size(), 11u);
}

}  // namespace
}  // namespace weir::proxy
