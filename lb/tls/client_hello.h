#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace weir::tls {

// Reading a client's TLS ClientHello from the first bytes of its stream, for tls-passthrough:
// a worker peeks (MSG_PEEK) at what the client sent, routes by the server name, and then
// splices the bytes to the backend unchanged. Pure and stateless: the caller passes the whole
// stream prefix again after every new segment.

// The most stream bytes (record headers included) weir reads to find a whole ClientHello.
// Post-quantum key shares make hellos of 1-2 KiB common; this leaves ample room.
inline constexpr size_t kMaxClientHello = 16384;

enum class HelloStatus {
  NeedMore,   // valid so far, but the message is not complete yet
  Ok,         // the whole ClientHello is there and well formed
  NotTls,     // the first bytes are not a TLS handshake record (HTTP, SSLv2, anything else)
  Malformed,  // a TLS handshake record, but the records or the message break the rules
  TooLarge,   // completing the message would take more than kMaxClientHello stream bytes
};

struct ClientHello {
  std::string sni;                // server_name's host_name, lower case, no trailing dot;
                                  // empty when the extension (or its host_name) is absent
  std::vector<std::string> alpn;  // application_layer_protocol_negotiation, in client order
  uint16_t legacy_version = 0;    // ClientHello.legacy_version (0x0303 from TLS 1.2+ clients)
  bool has_supported_versions = false;  // the supported_versions extension is present
  bool offers_tls13 = false;            // ... and lists TLS 1.3 (0x0304)
  size_t record_bytes = 0;  // stream bytes of the records that carry the message (<= the input)
};

// Parses the ClientHello at the start of `bytes`, everything the client sent so far from its
// first byte. The message may be split over any number of handshake records; it must end on a
// record boundary (RFC 8446 5.1), and what follows that record is not looked at.
//
// Returns NeedMore while `bytes` is a valid but incomplete prefix; Ok when the message is whole,
// and then fills `out` (otherwise `out` is left as it was). A result other than NeedMore is
// final: longer inputs with the same prefix give the same result. An input of kMaxClientHello
// bytes or more never gives NeedMore, and no byte past kMaxClientHello is read.
//
// Strict: every declared length must match what it holds, no record may be empty or longer
// than 2^14, extensions appear once, pre_shared_key comes last, and the server name must be a
// DNS host name (letters, digits, '-', '.'; labels of 1..63; at most 255 bytes; a single
// trailing dot is allowed and dropped). The record version must be 0x0301..0x0304.
//
// Cost: walking the records touches only their 5-byte headers and the 4-byte handshake
// header, so a call that returns NeedMore is O(records in `bytes`) and allocates nothing. The
// call that completes the message copies it into one buffer (only when it spans several
// records) and parses it in O(message length), allocating O(kMaxClientHello) at most.
// Never throws except std::bad_alloc.
HelloStatus parseClientHello(std::span<const uint8_t> bytes, ClientHello& out);

// "need more", "ok", "not TLS", "malformed", "too large": for log lines.
const char* toString(HelloStatus status);

}  // namespace weir::tls
