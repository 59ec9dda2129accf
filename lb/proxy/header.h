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

inline constexpr size_t kV1MaxLength = 107;  // "PROXY TCP6 <max> <max> 65535 65535\r\n"
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
// On Ok, `out` holds the header and `length` its size in bytes. Strict: anything the spec does
// not allow is an error. Never reads past data.size().
Status parse(std::span<const uint8_t> data, Header& out, size_t& length);

}  // namespace weir::proxy
