#pragma once

// The PROXY protocol, versions 1 (text) and 2 (binary), as HAProxy's spec defines it
// (proxy-protocol.txt): encoding the header weir sends to a pool's backends, and a strict
// parser for the header a trusted downstream balancer sends to a listener. The parser reads
// untrusted bytes and is fuzzed (tests/fuzz/proxy_header_fuzz.cc).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "net/address.h"

namespace weir::proxy {

// The longest v1 line, CRLF included: the spec's worst case, "PROXY UNKNOWN <v6> <v6> 65535
// 65535\r\n" with 39-character IPv6 addresses. (The longest TCP6 line is 104 bytes.)
inline constexpr size_t kV1MaxLength = 107;
inline constexpr size_t kV2FixedLength = 16;  // signature (12), ver/cmd, fam/proto, length (2)
// The most a v2 header may hold that weir accepts: the fixed part and up to this many bytes
// of addresses and TLVs. (The length field allows 65535; a balancer in front sends a few
// hundred at most, and the whole header must fit in a worker's peek buffer.)
inline constexpr size_t kV2MaxPayload = 4096;
inline constexpr size_t kMaxLength = kV2FixedLength + kV2MaxPayload;

// TLV types (spec section 2.2).
inline constexpr uint8_t kTlvAlpn = 0x01;
inline constexpr uint8_t kTlvAuthority = 0x02;
inline constexpr uint8_t kTlvCrc32c = 0x03;
inline constexpr uint8_t kTlvNoop = 0x04;
inline constexpr uint8_t kTlvUniqueId = 0x05;
inline constexpr uint8_t kTlvSsl = 0x20;
inline constexpr uint8_t kTlvSslVersion = 0x21;
inline constexpr uint8_t kTlvSslCn = 0x22;
inline constexpr uint8_t kTlvSslCipher = 0x23;
inline constexpr uint8_t kTlvSslSigAlg = 0x24;
inline constexpr uint8_t kTlvSslKeyAlg = 0x25;
inline constexpr uint8_t kTlvNetns = 0x30;
// PP2_TYPE_SSL client flags.
inline constexpr uint8_t kClientSsl = 0x01;
inline constexpr uint8_t kClientCertConn = 0x02;
inline constexpr uint8_t kClientCertSess = 0x04;

// What the header weir sends says about a connection whose client side TLS weir terminated.
struct SslInfo {
  std::string version;   // "TLSv1.3"
  std::string cipher;    // "TLS_AES_128_GCM_SHA256"
  std::string sig_alg;   // signature algorithm of the certificate weir presented, if known
  std::string key_alg;   // key algorithm of that certificate, e.g. "RSA2048", if known
  bool client_cert_conn = false;  // the client presented a certificate on this connection
  bool client_cert_sess = false;  // ... on this session (possibly an earlier connection)
  uint32_t verify = 0;   // 0: the client's certificate (if any) verified
};

// Everything a header carries.
struct Header {
  // v1 "UNKNOWN", v2 LOCAL, or v2 UNSPEC family: the receiver keeps the connection's own
  // addresses. Otherwise source and destination are both set, of the same family.
  bool local = false;
  std::optional<net::SockAddr> source;
  std::optional<net::SockAddr> destination;
  std::string authority;  // PP2_TYPE_AUTHORITY: the host name the client asked for (SNI)
  std::string alpn;       // PP2_TYPE_ALPN: the protocol negotiated with the client
  std::optional<SslInfo> ssl;  // PP2_TYPE_SSL and its sub-TLVs
  std::string unique_id;  // PP2_TYPE_UNIQUE_ID (parsed; weir does not send it)
};

// Encoders append to `out` (the caller reuses one buffer).
//
// "PROXY TCP4 src dst sport dport\r\n" (TCP6 for IPv6); "PROXY UNKNOWN\r\n" when the header is
// local or the two addresses are of different families.
void encodeV1(const Header& header, std::string& out);
// The binary header: PROXY (or LOCAL when header.local) over TCP, the addresses, then the TLVs
// that are set (ALPN, authority, SSL with version/cipher/sig_alg/key_alg sub-TLVs), then a
// CRC32c TLV over the whole header when `crc32c` is true.
// Addresses of different families go as TCP over IPv6, the IPv4 one IPv4-mapped; a header
// that is not local but lacks an address goes as PROXY with family UNSPEC (no addresses).
// LOCAL goes with family UNSPEC and no addresses. unique_id is not sent. Each string must fit
// a TLV (65535 bytes; weir's are host and protocol names); the SSL TLV always carries
// PP2_CLIENT_SSL.
void encodeV2(const Header& header, bool crc32c, std::string& out);
// The 16 bytes of a v2 LOCAL header with no addresses (what health checks send first).
void encodeV2Local(std::string& out);

// CRC32c (Castagnoli), as the PP2_TYPE_CRC32C TLV carries it; `crc` chains calls.
uint32_t crc32c(std::span<const uint8_t> data, uint32_t crc = 0);

enum class Status {
  Ok,            // `length` bytes at the start form a complete, valid header
  NeedMore,      // a valid prefix of a header: wait for more bytes
  NotProxy,      // the first bytes match neither signature
  V1TooLong,     // no CRLF within kV1MaxLength bytes
  V1Malformed,   // a v1 line that breaks the grammar (fields, addresses, ports)
  V2BadVersion,  // version nibble other than 2, or command other than LOCAL/PROXY
  V2BadFamily,   // address family or transport not defined by the spec, or not TCP
  V2TooLarge,    // the length field exceeds kV2MaxPayload
  V2BadLength,   // the length is shorter than the family's addresses
  V2BadTlv,      // a TLV overruns the header, or a known TLV has a bad length or value
  V2BadCrc,      // the CRC32c TLV does not match
};
const char* toString(Status status);

// Parses the header at the start of `data` (which may hold more: the client's first bytes).
// On Ok, `out` holds the header and `length` its size in bytes (<= kMaxLength); otherwise
// both are left as they were. Strict: anything the spec does not allow is an error. Never
// reads past data.size(), nor past kV1MaxLength bytes of a v1 line.
//
// Incremental: NeedMore for every proper prefix of a valid header (an empty input included),
// and a verdict other than NeedMore is final: every longer input with the same prefix gets
// the same one. Each error is decided at the first byte that shows it (a v2 length over
// kV2MaxPayload or short of the addresses as soon as the 16 fixed bytes are there), and
// kV1MaxLength bytes of a v1 line without its CRLF are V1TooLong.
//
// v1: "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" with single spaces, addresses inet_pton takes
// for the family (no leading zeros in a dotted quad), ports 0..65535 without leading zeros;
// or "PROXY UNKNOWN" then CRLF, or a space (or CR) and anything up to the first CRLF: local.
// v2: version 2; LOCAL (local; the family is ignored) or PROXY with TCP4, TCP6 or UNSPEC
// (local); UDP, UNIX and undefined families of PROXY are V2BadFamily. The TLVs after the
// addresses must tile the rest exactly (V2BadTlv otherwise); those of a LOCAL header of a
// family the spec does not define are skipped unread, since where its addresses end is
// unknown. Known TLVs may appear once each (NOOP any number of times) and are checked:
// ALPN non-empty; AUTHORITY non-empty UTF-8 without control characters (not even NUL; the
// UTF-8 itself is not checked); CRC32C 4 bytes and matching (else V2BadCrc); UNIQUE_ID at
// most 128 bytes; SSL at least 5 bytes with sub-TLVs that tile the rest, its version,
// cipher, algorithms and NETNS printable US-ASCII, its CN without control characters. `ssl`
// is set only when the SSL TLV has PP2_CLIENT_SSL. Unknown TLV types are skipped.
Status parse(std::span<const uint8_t> data, Header& out, size_t& length);

}  // namespace weir::proxy
