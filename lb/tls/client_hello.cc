#include "tls/client_hello.h"

#include <algorithm>
#include <cstring>

namespace weir::tls {
namespace {

constexpr uint8_t kContentHandshake = 22;
constexpr uint8_t kHandshakeClientHello = 1;
constexpr size_t kRecordHeader = 5;
constexpr size_t kHandshakeHeader = 4;
constexpr size_t kMaxRecordPayload = size_t{1} << 14;  // RFC 8446 5.1, RFC 5246 6.2.1
// legacy_version, random, session id <0..32>, cipher suites <2..>, compression methods <1..>.
constexpr size_t kMinHelloBody = 2 + 32 + 1 + 2 + 2 + 1 + 1;
constexpr size_t kMaxSessionId = 32;
constexpr size_t kMaxHostName = 255;
constexpr size_t kMaxLabel = 63;

constexpr uint16_t kExtServerName = 0;
constexpr uint16_t kExtAlpn = 16;
constexpr uint16_t kExtPreSharedKey = 41;
constexpr uint16_t kExtSupportedVersions = 43;
constexpr uint8_t kNameTypeHostName = 0;
constexpr uint16_t kTls13 = 0x0304;

uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

// 0x0301..0x0304: what clients put in a record header (TLS 1.3 clients send 0x0301 first).
bool recordVersionOk(const uint8_t* p) {
  return p[0] == 3 && p[1] >= 1 && p[1] <= 4;
}

// The first bytes that decide whether the stream is TLS at all; only those present are looked
// at, so "\x16" alone is not (yet) NotTls.
bool looksLikeTls(std::span<const uint8_t> bytes) {
  return (bytes.size() < 1 || bytes[0] == kContentHandshake) &&
         (bytes.size() < 2 || bytes[1] == 3) &&
         (bytes.size() < 3 || (bytes[2] >= 1 && bytes[2] <= 4));
}

// Where the whole handshake message lies, once walkRecords returns Ok.
struct Message {
  size_t length = 0;      // handshake header included
  size_t records = 0;     // records that carry it
  size_t stream_end = 0;  // end of the last of them
};

// Walks the handshake records from the start of `bytes` until they hold one whole message.
// Every decision depends only on bytes before the point where it is taken, so a verdict other
// than NeedMore holds for every longer input too. Reads record headers and the first 4 payload
// bytes only.
HelloStatus walkRecords(std::span<const uint8_t> bytes, Message& msg) {
  if (!looksLikeTls(bytes)) {
    return HelloStatus::NotTls;
  }
  uint8_t header[kHandshakeHeader];
  size_t header_have = 0;
  size_t carried = 0;  // message bytes in the records walked so far (declared lengths)
  size_t off = 0;
  for (;;) {
    if (bytes.size() - off < kRecordHeader) {
      return HelloStatus::NeedMore;
    }
    const uint8_t* rec = bytes.data() + off;
    if (rec[0] != kContentHandshake || !recordVersionOk(rec + 1)) {
      return HelloStatus::Malformed;
    }
    const size_t len = be16(rec + 3);
    if (len == 0 || len > kMaxRecordPayload) {
      return HelloStatus::Malformed;  // RFC 8446 5.1: no empty handshake fragments
    }
    const size_t end = off + kRecordHeader + len;
    if (end > kMaxClientHello) {
      return HelloStatus::TooLarge;
    }
    ++msg.records;
    // The handshake header, which may itself be split over records.
    const size_t avail = std::min(len, bytes.size() - off - kRecordHeader);
    for (size_t i = 0; header_have < kHandshakeHeader && i < len; ++i) {
      if (i == avail) {
        return HelloStatus::NeedMore;
      }
      header[header_have++] = rec[kRecordHeader + i];
      if (header_have == 1 && header[0] != kHandshakeClientHello) {
        return HelloStatus::Malformed;
      }
      if (header_have == kHandshakeHeader) {
        const size_t body = size_t{header[1]} << 16 | size_t{header[2]} << 8 | header[3];
        if (body < kMinHelloBody) {
          return HelloStatus::Malformed;
        }
        msg.length = kHandshakeHeader + body;
        if (msg.length > kMaxClientHello) {
          return HelloStatus::TooLarge;
        }
      }
    }
    carried += len;
    if (msg.length != 0 && carried > msg.length) {
      return HelloStatus::Malformed;  // the record goes on past the hello (RFC 8446 5.1)
    }
    if (carried == msg.length) {
      if (end > bytes.size()) {
        return HelloStatus::NeedMore;
      }
      msg.stream_end = end;
      return HelloStatus::Ok;
    }
    // At least one more record, with at least one more byte, must follow.
    const size_t still = msg.length != 0 ? msg.length - carried : 1;
    if (end + kRecordHeader + still > kMaxClientHello) {
      return HelloStatus::TooLarge;
    }
    if (end > bytes.size()) {
      return HelloStatus::NeedMore;
    }
    off = end;
  }
}

// Bounds-checked reads from a byte span; every read fails once the span is short.
class Reader {
public:
  explicit Reader(std::span<const uint8_t> bytes) : bytes_(bytes) {}

  bool empty() const { return bytes_.empty(); }

  bool u8(uint8_t& v) {
    if (bytes_.empty()) {
      return false;
    }
    v = bytes_[0];
    bytes_ = bytes_.subspan(1);
    return true;
  }

  bool u16(uint16_t& v) {
    if (bytes_.size() < 2) {
      return false;
    }
    v = be16(bytes_.data());
    bytes_ = bytes_.subspan(2);
    return true;
  }

  bool take(size_t n, std::span<const uint8_t>& v) {
    if (bytes_.size() < n) {
      return false;
    }
    v = bytes_.first(n);
    bytes_ = bytes_.subspan(n);
    return true;
  }

  // A vector with a 1- or 2-byte length prefix.
  bool vec8(std::span<const uint8_t>& v) {
    uint8_t n;
    return u8(n) && take(n, v);
  }

  bool vec16(std::span<const uint8_t>& v) {
    uint16_t n;
    return u16(n) && take(n, v);
  }

private:
  std::span<const uint8_t> bytes_;
};

// Letters, digits, '-', '.', and '_': underscores are not in RFC 1123 host names but are
// common in internal names, and clients send them; refusing them would close real clients.
bool isHostChar(uint8_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_';
}

// RFC 6066 3: a DNS host name in ASCII. Returns it lower-cased without a trailing dot, or
// false.
bool hostName(std::span<const uint8_t> name, std::string& out) {
  if (!name.empty() && name.back() == '.') {
    name = name.first(name.size() - 1);
  }
  if (name.empty() || name.size() > kMaxHostName) {
    return false;
  }
  size_t label = 0;
  for (uint8_t c : name) {
    if (!isHostChar(c)) {
      return false;  // NUL, '*', spaces, non-ASCII, ...
    }
    if (c == '.') {
      if (label == 0) {
        return false;
      }
      label = 0;
    } else if (++label > kMaxLabel) {
      return false;
    }
  }
  if (label == 0) {
    return false;
  }
  out.resize(name.size());
  for (size_t i = 0; i < name.size(); ++i) {
    uint8_t c = name[i];
    out[i] = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  }
  return true;
}

// server_name (RFC 6066 3): a list of (name_type, opaque<1..2^16-1>); every name type starts
// with a 16-bit length, so the unknown ones are skipped. At most one host_name.
bool serverName(std::span<const uint8_t> data, ClientHello& hello) {
  Reader ext(data);
  std::span<const uint8_t> list;
  if (!ext.vec16(list) || !ext.empty() || list.empty()) {
    return false;
  }
  Reader names(list);
  bool have_host = false;
  while (!names.empty()) {
    uint8_t type;
    std::span<const uint8_t> name;
    if (!names.u8(type) || !names.vec16(name)) {
      return false;
    }
    if (type == kNameTypeHostName) {
      if (have_host || !hostName(name, hello.sni)) {
        return false;
      }
      have_host = true;
    }
  }
  return true;
}

// application_layer_protocol_negotiation (RFC 7301 3.1): a non-empty list of non-empty names.
bool alpn(std::span<const uint8_t> data, ClientHello& hello) {
  Reader ext(data);
  std::span<const uint8_t> list;
  if (!ext.vec16(list) || !ext.empty() || list.empty()) {
    return false;
  }
  Reader names(list);
  while (!names.empty()) {
    std::span<const uint8_t> name;
    if (!names.vec8(name) || name.empty()) {
      return false;
    }
    hello.alpn.emplace_back(reinterpret_cast<const char*>(name.data()), name.size());
  }
  return true;
}

// supported_versions in a ClientHello (RFC 8446 4.2.1): versions<2..254>.
bool supportedVersions(std::span<const uint8_t> data, ClientHello& hello) {
  Reader ext(data);
  std::span<const uint8_t> list;
  if (!ext.vec8(list) || !ext.empty() || list.size() < 2 || list.size() % 2 != 0) {
    return false;
  }
  hello.has_supported_versions = true;
  for (size_t i = 0; i < list.size(); i += 2) {
    hello.offers_tls13 = hello.offers_tls13 || be16(&list[i]) == kTls13;
  }
  return true;
}

bool extensions(std::span<const uint8_t> data, ClientHello& hello) {
  // At most one per type: sort the types seen. Each takes 4 bytes, so this holds at most
  // kMaxClientHello / 4 of them.
  std::vector<uint16_t> seen;
  Reader exts(data);
  bool after_psk = false;
  while (!exts.empty()) {
    uint16_t type;
    std::span<const uint8_t> body;
    if (!exts.u16(type) || !exts.vec16(body) || after_psk) {
      return false;  // RFC 8446 4.2.11: pre_shared_key must be the last extension
    }
    seen.push_back(type);
    bool ok = true;
    switch (type) {
      case kExtServerName:
        ok = serverName(body, hello);
        break;
      case kExtAlpn:
        ok = alpn(body, hello);
        break;
      case kExtSupportedVersions:
        ok = supportedVersions(body, hello);
        break;
      case kExtPreSharedKey:
        after_psk = true;
        break;
      default:
        break;
    }
    if (!ok) {
      return false;
    }
  }
  std::sort(seen.begin(), seen.end());
  return std::adjacent_find(seen.begin(), seen.end()) == seen.end();
}

// The ClientHello body (RFC 8446 4.1.2, RFC 5246 7.4.1.2), exactly: no bytes left over.
bool helloBody(std::span<const uint8_t> body, ClientHello& hello) {
  Reader r(body);
  std::span<const uint8_t> random, session_id, suites, compression, exts;
  if (!r.u16(hello.legacy_version) || (hello.legacy_version >> 8) != 3 || !r.take(32, random) ||
      !r.vec8(session_id) || session_id.size() > kMaxSessionId || !r.vec16(suites) ||
      suites.size() < 2 || suites.size() % 2 != 0 || !r.vec8(compression) ||
      compression.empty()) {
    return false;
  }
  if (r.empty()) {
    return true;  // a TLS 1.2 hello may carry no extensions at all
  }
  return r.vec16(exts) && r.empty() && extensions(exts, hello);
}

}  // namespace

HelloStatus parseClientHello(std::span<const uint8_t> bytes, ClientHello& out) {
  // walkRecords never reads past kMaxClientHello; cutting here makes that plain.
  bytes = bytes.first(std::min(bytes.size(), kMaxClientHello));
  Message msg;
  HelloStatus status = walkRecords(bytes, msg);
  if (status == HelloStatus::NeedMore && bytes.size() == kMaxClientHello) {
    return HelloStatus::TooLarge;  // unreachable: walkRecords saw it coming; kept as a guard
  }
  if (status != HelloStatus::Ok) {
    return status;
  }
  std::span<const uint8_t> message;
  std::vector<uint8_t> joined;
  if (msg.records == 1) {
    message = bytes.subspan(kRecordHeader, msg.length);
  } else {
    // Already validated by walkRecords: every record is whole and carries only message bytes.
    joined.resize(msg.length);
    size_t have = 0;
    for (size_t off = 0; have < msg.length;) {
      const size_t len = be16(&bytes[off + 3]);
      std::memcpy(joined.data() + have, &bytes[off + kRecordHeader], len);
      have += len;
      off += kRecordHeader + len;
    }
    message = joined;
  }
  ClientHello hello;
  if (!helloBody(message.subspan(kHandshakeHeader), hello)) {
    return HelloStatus::Malformed;
  }
  hello.record_bytes = msg.stream_end;
  out = std::move(hello);
  return HelloStatus::Ok;
}

const char* toString(HelloStatus status) {
  switch (status) {
    case HelloStatus::NeedMore:
      return "need more";
    case HelloStatus::Ok:
      return "ok";
    case HelloStatus::NotTls:
      return "not TLS";
    case HelloStatus::Malformed:
      return "malformed";
    case HelloStatus::TooLarge:
      return "too large";
  }
  return "unknown";
}

}  // namespace weir::tls
