#include "proxy/header.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <bitset>
#include <cassert>
#include <cstring>
#include <string_view>
#include <utility>

namespace weir::proxy {
namespace {

constexpr uint8_t kV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::string_view kV1Signature = "PROXY ";
constexpr uint8_t kVersion2 = 0x20;  // high nibble of the 13th byte
constexpr uint8_t kCmdLocal = 0x0;
constexpr uint8_t kCmdProxy = 0x1;
constexpr uint8_t kFamUnspec = 0x00;
constexpr uint8_t kFamTcp4 = 0x11;
constexpr uint8_t kFamTcp6 = 0x21;
constexpr size_t kLengthOffset = 14;
constexpr size_t kSslFixed = 5;       // pp2_tlv_ssl: client flags (1), verify (4)
constexpr size_t kMaxUniqueId = 128;  // spec 2.2.5
// The longest v1 address texts inet_pton takes: a dotted quad, and IPv6 with an IPv4 tail
// ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", INET6_ADDRSTRLEN - 1).
constexpr size_t kMaxV1Ipv4 = 15;
constexpr size_t kMaxV1Ipv6 = 45;
constexpr size_t kMaxV1Port = 5;

uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

uint32_t be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

// --- Encoding ---

void appendBe16(std::string& out, size_t v) {
  out += static_cast<char>(v >> 8 & 0xff);
  out += static_cast<char>(v & 0xff);
}

void appendBe32(std::string& out, uint32_t v) {
  appendBe16(out, v >> 16);
  appendBe16(out, v & 0xffff);
}

void appendTlv(std::string& out, uint8_t type, std::string_view value) {
  // Values are host names, protocol names and OpenSSL's names of versions and algorithms:
  // far below what a TLV's 16-bit length holds.
  assert(value.size() <= 0xffff);
  out += static_cast<char>(type);
  appendBe16(out, value.size());
  out += value;
}

const in_addr& ipv4(const net::SockAddr& a) {
  return reinterpret_cast<const sockaddr_in*>(a.get())->sin_addr;
}

const in6_addr& ipv6(const net::SockAddr& a) {
  return reinterpret_cast<const sockaddr_in6*>(a.get())->sin6_addr;
}

// The family both addresses go in: AF_INET or AF_INET6, AF_INET6 too when they differ (the
// IPv4 one then goes IPv4-mapped); AF_UNSPEC when the header is local or lacks one.
int addressFamily(const Header& h) {
  if (h.local || !h.source || !h.destination) {
    return AF_UNSPEC;
  }
  const int s = h.source->family();
  const int d = h.destination->family();
  if ((s != AF_INET && s != AF_INET6) || (d != AF_INET && d != AF_INET6)) {
    return AF_UNSPEC;
  }
  return s == d ? s : AF_INET6;
}

// The address in network order: 4 bytes, or 16 when `as_ipv6` (IPv4 as ::ffff:a.b.c.d).
void appendAddress(std::string& out, const net::SockAddr& a, bool as_ipv6) {
  if (a.family() == AF_INET6) {
    out.append(reinterpret_cast<const char*>(ipv6(a).s6_addr), 16);
    return;
  }
  if (as_ipv6) {
    out.append(10, '\0');
    out.append(2, '\xff');
  }
  out.append(reinterpret_cast<const char*>(&ipv4(a).s_addr), 4);
}

// The address as inet_ntop writes it: "192.0.2.1", "2001:db8::1".
void appendHost(std::string& out, const net::SockAddr& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.family() == AF_INET6) {
    inet_ntop(AF_INET6, &ipv6(a), buf, sizeof buf);
  } else {
    inet_ntop(AF_INET, &ipv4(a), buf, sizeof buf);
  }
  out += buf;
}

void appendSsl(std::string& out, const SslInfo& ssl) {
  std::string value;
  value += static_cast<char>(kClientSsl | (ssl.client_cert_conn ? kClientCertConn : 0) |
                             (ssl.client_cert_sess ? kClientCertSess : 0));
  appendBe32(value, ssl.verify);
  const std::pair<uint8_t, const std::string*> subs[] = {{kTlvSslVersion, &ssl.version},
                                                         {kTlvSslCipher, &ssl.cipher},
                                                         {kTlvSslSigAlg, &ssl.sig_alg},
                                                         {kTlvSslKeyAlg, &ssl.key_alg}};
  for (const auto& [type, text] : subs) {
    if (!text->empty()) {
      appendTlv(value, type, *text);
    }
  }
  appendTlv(out, kTlvSsl, value);
}

// --- Parsing, common ---

// The socket address of `family` with the address bytes at `addr` (4 or 16) and `port`.
net::SockAddr sockAddr(int family, const uint8_t* addr, uint16_t port) {
  if (family == AF_INET6) {
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    std::memcpy(sin6.sin6_addr.s6_addr, addr, 16);
    return net::SockAddr(reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6);
  }
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  std::memcpy(&sin.sin_addr.s_addr, addr, 4);
  return net::SockAddr(reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
}

// --- Parsing v1 ---

enum class Step { Done, More, Bad };

// `word` at `pos`, compared on the bytes there are: Done (and `pos` moves past it), More if
// the text ends inside a match, Bad at a difference.
Step literal(std::string_view text, size_t& pos, std::string_view word) {
  const std::string_view have = text.substr(pos, word.size());
  if (have != word.substr(0, have.size())) {
    return Step::Bad;
  }
  if (have.size() < word.size()) {
    return Step::More;
  }
  pos += word.size();
  return Step::Done;
}

// One field at `pos`, ended by `end` (consumed): Done with the field in `value`; More if the
// text ends first; Bad at the first byte after which `fits(field so far)` fails, or at an
// empty field. Deciding byte by byte keeps the verdict of a prefix final.
template <typename Fits>
Step field(std::string_view text, size_t& pos, char end, Fits fits, std::string_view& value) {
  const size_t start = pos;
  for (; pos < text.size(); ++pos) {
    if (text[pos] == end && pos > start) {
      value = text.substr(start, pos - start);
      ++pos;
      return Step::Done;
    }
    if (!fits(text.substr(start, pos + 1 - start))) {
      return Step::Bad;
    }
  }
  return Step::More;
}

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

bool isHex(char c) {
  return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// A prefix of a v1 address: its characters, no longer than the longest inet_pton takes.
// Whether it is an address is decided at its end, by inet_pton.
bool addressFits(std::string_view s, bool ipv6) {
  const char c = s.back();
  if (ipv6) {
    return s.size() <= kMaxV1Ipv6 && (isHex(c) || c == ':' || c == '.');
  }
  return s.size() <= kMaxV1Ipv4 && (isDigit(c) || c == '.');
}

// A prefix of a v1 port, which is then a port already: decimal, no leading zero, <= 65535.
bool portFits(std::string_view s) {
  if (!isDigit(s.back()) || s.size() > kMaxV1Port || (s.size() > 1 && s[0] == '0')) {
    return false;
  }
  uint32_t v = 0;
  for (char c : s) {
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  return v <= 0xffff;
}

uint16_t portValue(std::string_view s) {
  uint32_t v = 0;
  for (char c : s) {
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  return static_cast<uint16_t>(v);
}

// inet_pton of a field addressFits let through (so at most kMaxV1Ipv6 bytes) into `addr`.
// glibc's inet_pton refuses leading zeros in a dotted quad, as the spec does.
bool parseAddress(int family, std::string_view text, uint8_t* addr) {
  char buf[kMaxV1Ipv6 + 1];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  return inet_pton(family, buf, addr) == 1;
}

// "TCP4 "/"TCP6 " was read; the rest of the line from `pos`.
Status parseV1Tcp(std::string_view text, size_t pos, bool ipv6, Status more, Header& out,
                  size_t& length) {
  const int family = ipv6 ? AF_INET6 : AF_INET;
  const auto address = [ipv6](std::string_view s) { return addressFits(s, ipv6); };
  uint8_t src[16];
  uint8_t dst[16];
  std::string_view src_text, dst_text, src_port, dst_port;
  Step step = field(text, pos, ' ', address, src_text);
  if (step == Step::Done && !parseAddress(family, src_text, src)) {
    step = Step::Bad;
  }
  if (step == Step::Done) {
    step = field(text, pos, ' ', address, dst_text);
  }
  if (step == Step::Done && !parseAddress(family, dst_text, dst)) {
    step = Step::Bad;
  }
  if (step == Step::Done) {
    step = field(text, pos, ' ', portFits, src_port);
  }
  if (step == Step::Done) {
    step = field(text, pos, '\r', portFits, dst_port);
  }
  if (step == Step::Done) {
    step = literal(text, pos, "\n");  // a CR alone does not end the line (spec 2.1)
  }
  if (step != Step::Done) {
    return step == Step::Bad ? Status::V1Malformed : more;
  }
  Header h;
  h.source = sockAddr(family, src, portValue(src_port));
  h.destination = sockAddr(family, dst, portValue(dst_port));
  out = std::move(h);
  length = pos;
  return Status::Ok;
}

Status parseV1(std::span<const uint8_t> data, Header& out, size_t& length) {
  // Nothing past kV1MaxLength is looked at: a line that needs more is too long.
  const std::string_view text(reinterpret_cast<const char*>(data.data()),
                              std::min(data.size(), kV1MaxLength));
  const Status more = data.size() >= kV1MaxLength ? Status::V1TooLong : Status::NeedMore;
  size_t pos = 0;
  switch (literal(text, pos, kV1Signature)) {
    case Step::Bad:
      return Status::NotProxy;
    case Step::More:
      return more;
    case Step::Done:
      break;
  }
  // The protocol word: "TCP" is still both TCP4 and TCP6.
  bool any_more = false;
  for (std::string_view word : {"TCP4 ", "TCP6 ", "UNKNOWN"}) {
    size_t after = pos;
    const Step step = literal(text, after, word);
    any_more = any_more || step == Step::More;
    if (step != Step::Done) {
      continue;
    }
    if (word != "UNKNOWN") {
      return parseV1Tcp(text, after, word == "TCP6 ", more, out, length);
    }
    // "UNKNOWN", then the end of the line or a space and anything up to the CRLF.
    if (after == text.size()) {
      return more;
    }
    if (text[after] != ' ' && text[after] != '\r') {
      return Status::V1Malformed;
    }
    const size_t crlf = text.find("\r\n", after);
    if (crlf == std::string_view::npos) {
      return more;
    }
    out = Header{.local = true};
    length = crlf + 2;
    return Status::Ok;
  }
  return any_more ? more : Status::V1Malformed;
}

// --- Parsing v2 ---

// Bounds-checked reads from a byte span; every read fails once the span is short.
class Reader {
public:
  explicit Reader(std::span<const uint8_t> bytes) : bytes_(bytes) {}

  bool empty() const { return bytes_.empty(); }

  // One TLV: type, 16-bit length, value.
  bool tlv(uint8_t& type, std::span<const uint8_t>& value) {
    if (bytes_.size() < 3 || bytes_.size() - 3 < be16(&bytes_[1])) {
      return false;
    }
    type = bytes_[0];
    value = bytes_.subspan(3, be16(&bytes_[1]));
    bytes_ = bytes_.subspan(3 + value.size());
    return true;
  }

private:
  std::span<const uint8_t> bytes_;
};

std::string asString(std::span<const uint8_t> v) {
  return {reinterpret_cast<const char*>(v.data()), v.size()};
}

// The spec's US-ASCII strings (SSL version, cipher, algorithms; NETNS): printable only.
bool isAscii(std::span<const uint8_t> v) {
  return std::all_of(v.begin(), v.end(), [](uint8_t c) { return c >= 0x20 && c < 0x7f; });
}

// The spec's UTF-8 strings (AUTHORITY, SSL CN): no control characters, so that no NUL cuts
// them short and no CR or LF splits a log line. The UTF-8 itself is not checked.
bool isText(std::span<const uint8_t> v) {
  return std::all_of(v.begin(), v.end(), [](uint8_t c) { return c >= 0x20 && c != 0x7f; });
}

// The size of the address block of a family/transport byte the spec defines (section 2.2's
// list): UNSPEC, TCP and UDP over IPv4 and IPv6, UNIX stream and datagram.
std::optional<size_t> addressLength(uint8_t fam) {
  switch (fam) {
    case 0x00:
      return 0;
    case 0x11:
    case 0x12:
      return 12;
    case 0x21:
    case 0x22:
      return 36;
    case 0x31:
    case 0x32:
      return 216;
    default:
      return std::nullopt;
  }
}

// PP2_TYPE_SSL: client flags, verify, then sub-TLVs that tile the rest. Known sub-TLVs appear
// at most once and hold text; unknown ones are skipped. `ssl` is set only with PP2_CLIENT_SSL:
// without it the client did not use TLS and the rest says nothing.
bool parseSsl(std::span<const uint8_t> value, std::optional<SslInfo>& ssl) {
  if (value.size() < kSslFixed) {
    return false;
  }
  SslInfo info;
  const uint8_t client = value[0];
  info.client_cert_conn = (client & kClientCertConn) != 0;
  info.client_cert_sess = (client & kClientCertSess) != 0;
  info.verify = be32(&value[1]);
  std::bitset<256> seen;
  Reader subs(value.subspan(kSslFixed));
  while (!subs.empty()) {
    uint8_t type;
    std::span<const uint8_t> sub;
    if (!subs.tlv(type, sub)) {
      return false;
    }
    std::string* text = nullptr;
    switch (type) {
      case kTlvSslVersion:
        text = &info.version;
        break;
      case kTlvSslCipher:
        text = &info.cipher;
        break;
      case kTlvSslSigAlg:
        text = &info.sig_alg;
        break;
      case kTlvSslKeyAlg:
        text = &info.key_alg;
        break;
      case kTlvSslCn:
        if (seen[type] || !isText(sub)) {
          return false;
        }
        seen[type] = true;
        continue;  // validated; weir has no use for the client's CN
      default:
        continue;
    }
    if (seen[type] || !isAscii(sub)) {
      return false;
    }
    seen[type] = true;
    *text = asString(sub);
  }
  if ((client & kClientSsl) != 0) {
    ssl = std::move(info);
  }
  return true;
}

// The TLVs of `header` from `offset` to its end, into `h`. They must tile the rest exactly;
// known types appear at most once (NOOP any number of times) and are checked; unknown types
// are skipped, as the spec allows. A CRC32c TLV must match the whole header.
Status parseTlvs(std::span<const uint8_t> header, size_t offset, Header& h) {
  std::bitset<256> seen;
  std::optional<size_t> crc_at;  // offset of the CRC32c value in `header`
  Reader tlvs(header.subspan(offset));
  while (!tlvs.empty()) {
    uint8_t type;
    std::span<const uint8_t> value;
    if (!tlvs.tlv(type, value)) {
      return Status::V2BadTlv;
    }
    bool ok = true;
    switch (type) {
      case kTlvAlpn:
        ok = !value.empty();
        h.alpn = asString(value);
        break;
      case kTlvAuthority:
        ok = !value.empty() && isText(value);
        h.authority = asString(value);
        break;
      case kTlvCrc32c:
        ok = value.size() == 4;
        crc_at = static_cast<size_t>(value.data() - header.data());
        break;
      case kTlvUniqueId:
        ok = value.size() <= kMaxUniqueId;
        h.unique_id = asString(value);
        break;
      case kTlvSsl:
        ok = parseSsl(value, h.ssl);
        break;
      case kTlvNetns:
        ok = isAscii(value);
        break;
      default:
        continue;  // NOOP (padding, any number of times) and types weir does not know
    }
    if (!ok || seen[type]) {
      return Status::V2BadTlv;
    }
    seen[type] = true;
  }
  if (crc_at) {
    // Spec 2.2.3: the CRC of the whole header with the CRC's own 4 bytes zeroed.
    static constexpr uint8_t kZeros[4] = {};
    uint32_t crc = crc32c(header.first(*crc_at));
    crc = crc32c(kZeros, crc);
    crc = crc32c(header.subspan(*crc_at + 4), crc);
    if (crc != be32(&header[*crc_at])) {
      return Status::V2BadCrc;
    }
  }
  return Status::Ok;
}

Status parseV2(std::span<const uint8_t> data, Header& out, size_t& length) {
  // Each check looks only at bytes before the point where it decides, so a verdict other than
  // NeedMore holds for every longer input.
  if (std::memcmp(data.data(), kV2Signature, std::min(data.size(), sizeof kV2Signature)) != 0) {
    return Status::NotProxy;
  }
  if (data.size() <= sizeof kV2Signature) {
    return Status::NeedMore;
  }
  const uint8_t ver_cmd = data[12];
  if ((ver_cmd & 0xf0) != kVersion2 || (ver_cmd & 0x0f) > kCmdProxy) {
    return Status::V2BadVersion;
  }
  const bool proxy = (ver_cmd & 0x0f) == kCmdProxy;
  if (data.size() <= 13) {
    return Status::NeedMore;
  }
  // LOCAL: the spec says the family is ignored. PROXY: TCP, or UNSPEC (use the connection's
  // own addresses); UDP and UNIX have no meaning for weir's TCP listeners.
  const uint8_t fam = data[13];
  if (proxy && fam != kFamUnspec && fam != kFamTcp4 && fam != kFamTcp6) {
    return Status::V2BadFamily;
  }
  if (data.size() < kV2FixedLength) {
    return Status::NeedMore;
  }
  const size_t payload = be16(&data[kLengthOffset]);
  if (payload > kV2MaxPayload) {
    return Status::V2TooLarge;
  }
  const std::optional<size_t> addresses = addressLength(fam);
  if (addresses && payload < *addresses) {
    return Status::V2BadLength;
  }
  const size_t total = kV2FixedLength + payload;
  if (data.size() < total) {
    return Status::NeedMore;
  }
  const std::span<const uint8_t> header = data.first(total);
  Header h;
  if (proxy && fam != kFamUnspec) {
    const bool ipv6 = fam == kFamTcp6;
    const size_t addr = ipv6 ? 16 : 4;
    const uint8_t* block = &header[kV2FixedLength];
    const int family = ipv6 ? AF_INET6 : AF_INET;
    h.source = sockAddr(family, block, be16(block + 2 * addr));
    h.destination = sockAddr(family, block + addr, be16(block + 2 * addr + 2));
  } else {
    h.local = true;
  }
  // A LOCAL header of a family the spec does not define: where its addresses end is unknown,
  // so the whole block is skipped, TLVs and all.
  if (addresses) {
    const Status s = parseTlvs(header, kV2FixedLength + *addresses, h);
    if (s != Status::Ok) {
      return s;
    }
  }
  out = std::move(h);
  length = total;
  return Status::Ok;
}

}  // namespace

void encodeV1(const Header& header, std::string& out) {
  const int family = addressFamily(header);
  if (family == AF_UNSPEC || header.source->family() != header.destination->family()) {
    out += "PROXY UNKNOWN\r\n";
    return;
  }
  out += family == AF_INET ? "PROXY TCP4 " : "PROXY TCP6 ";
  appendHost(out, *header.source);
  out += ' ';
  appendHost(out, *header.destination);
  out += ' ';
  out += std::to_string(header.source->port());
  out += ' ';
  out += std::to_string(header.destination->port());
  out += "\r\n";
}

void encodeV2(const Header& header, bool crc32c_tlv, std::string& out) {
  const size_t start = out.size();
  out.append(reinterpret_cast<const char*>(kV2Signature), sizeof kV2Signature);
  const int family = addressFamily(header);
  out += static_cast<char>(kVersion2 | (header.local ? kCmdLocal : kCmdProxy));
  out += static_cast<char>(family == AF_INET    ? kFamTcp4
                           : family == AF_INET6 ? kFamTcp6
                                                : kFamUnspec);
  appendBe16(out, 0);  // the length, known at the end
  if (family != AF_UNSPEC) {
    const bool as_ipv6 = family == AF_INET6;
    appendAddress(out, *header.source, as_ipv6);
    appendAddress(out, *header.destination, as_ipv6);
    appendBe16(out, header.source->port());
    appendBe16(out, header.destination->port());
  }
  if (!header.alpn.empty()) {
    appendTlv(out, kTlvAlpn, header.alpn);
  }
  if (!header.authority.empty()) {
    appendTlv(out, kTlvAuthority, header.authority);
  }
  if (header.ssl) {
    appendSsl(out, *header.ssl);
  }
  if (crc32c_tlv) {
    appendTlv(out, kTlvCrc32c, std::string_view("\0\0\0\0", 4));
  }
  const size_t payload = out.size() - start - kV2FixedLength;
  assert(payload <= 0xffff);  // a few short TLVs, as appendTlv says
  out[start + kLengthOffset] = static_cast<char>(payload >> 8);
  out[start + kLengthOffset + 1] = static_cast<char>(payload & 0xff);
  if (crc32c_tlv) {
    // Spec 2.2.3: over the whole header with the CRC field zero, which it still is.
    const auto* bytes = reinterpret_cast<const uint8_t*>(out.data()) + start;
    const uint32_t crc = crc32c({bytes, out.size() - start});
    out.resize(out.size() - 4);
    appendBe32(out, crc);
  }
}

void encodeV2Local(std::string& out) {
  out.append(reinterpret_cast<const char*>(kV2Signature), sizeof kV2Signature);
  out += static_cast<char>(kVersion2 | kCmdLocal);
  out += static_cast<char>(kFamUnspec);
  appendBe16(out, 0);
}

Status parse(std::span<const uint8_t> data, Header& out, size_t& length) {
  if (data.empty()) {
    return Status::NeedMore;
  }
  if (data[0] == kV2Signature[0]) {
    return parseV2(data, out, length);
  }
  return parseV1(data, out, length);
}

const char* toString(Status status) {
  switch (status) {
    case Status::Ok:
      return "ok";
    case Status::NeedMore:
      return "need more";
    case Status::NotProxy:
      return "not a PROXY protocol header";
    case Status::V1TooLong:
      return "v1 line without CRLF in 107 bytes";
    case Status::V1Malformed:
      return "malformed v1 line";
    case Status::V2BadVersion:
      return "v2 version or command unknown";
    case Status::V2BadFamily:
      return "v2 family not TCP over IPv4/IPv6 or UNSPEC";
    case Status::V2TooLarge:
      return "v2 header too large";
    case Status::V2BadLength:
      return "v2 length shorter than the addresses";
    case Status::V2BadTlv:
      return "malformed v2 TLV";
    case Status::V2BadCrc:
      return "v2 CRC32c mismatch";
  }
  return "unknown";
}

}  // namespace weir::proxy
