#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "support/fnv.h"

namespace weir::test {

// Client-side reader of a weir-testsrv `drain-reply` response: the header line
// "BYTES <count> FNV <16 hex digits>\n" followed by the payload. Feed it every received
// byte in order (e.g. as the sink of pump()).
class DrainReplyReader {
public:
  void feed(const char* data, size_t len);

  // Set once the whole header line arrived and parsed.
  std::optional<uint64_t> reportedBytes() const { return bytes_; }
  std::optional<uint64_t> reportedFnv() const { return fnv_; }
  // The header line as received (without '\n'), for messages; may be partial.
  const std::string& headerLine() const { return header_; }
  // True if the header line was complete but malformed, or over 200 bytes long.
  bool malformed() const { return malformed_; }
  // Hash and length of the bytes after the header.
  const Fnv1a64& payload() const { return payload_; }

private:
  void parseHeader();

  std::string header_;
  bool header_done_ = false;
  bool malformed_ = false;
  std::optional<uint64_t> bytes_;
  std::optional<uint64_t> fnv_;
  Fnv1a64 payload_;
};

}  // namespace weir::test
