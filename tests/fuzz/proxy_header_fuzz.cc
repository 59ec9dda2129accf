// libFuzzer target: the first bytes a balancer in front sends on a PROXY protocol listener ->
// lb/proxy/header.h's parse, and what it parsed back through encodeV1 / encodeV2.
//
// The input is the stream from its first byte. Beyond crashes and UB it checks the parser's
// contract: a verdict other than NeedMore is final (every prefix gives NeedMore or the same
// verdict and header; all prefixes of short inputs, a sample of long ones); kMaxLength bytes
// (of a v1 line, kV1MaxLength) never give NeedMore and bytes past kMaxLength change nothing;
// a result other than Ok leaves `out` and `length` alone; an Ok header is at most kMaxLength
// (a v1 line kV1MaxLength) bytes and no longer than the input, parses the same on its own,
// and one byte less is NeedMore; it is local or has two addresses of one family; and encoding
// it again (v1, and v2 with and without CRC32c) parses back to the same addresses and TLV
// values, the v1 line to itself.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "proxy/header.h"

namespace weir::fuzz {
namespace {

using proxy::Header;
using proxy::Status;
using Bytes = std::span<const uint8_t>;

// All prefixes of inputs up to this long are checked; of longer ones, a sample.
constexpr size_t kAllPrefixes = 512;
constexpr size_t kSampledPrefixes = 256;

std::string_view asText(Bytes bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), std::min<size_t>(bytes.size(), 64)};
}

Bytes asBytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

bool sameSsl(const Header& a, const Header& b) {
  if (a.ssl.has_value() != b.ssl.has_value()) {
    return false;
  }
  return !a.ssl ||
         (a.ssl->version == b.ssl->version && a.ssl->cipher == b.ssl->cipher &&
          a.ssl->sig_alg == b.ssl->sig_alg && a.ssl->key_alg == b.ssl->key_alg &&
          a.ssl->client_cert_conn == b.ssl->client_cert_conn &&
          a.ssl->client_cert_sess == b.ssl->client_cert_sess && a.ssl->verify == b.ssl->verify);
}

// What encodeV2 carries: everything but unique_id.
bool sameEncoded(const Header& a, const Header& b) {
  return a.local == b.local && a.source == b.source && a.destination == b.destination &&
         a.authority == b.authority && a.alpn == b.alpn && sameSsl(a, b);
}

bool same(const Header& a, const Header& b) {
  return sameEncoded(a, b) && a.unique_id == b.unique_id;
}

struct Result {
  Status status;
  Header header;
  size_t length = 0;
};

Result parse(Bytes bytes) {
  Result r;
  r.length = 0xdeadbeef;
  r.header.authority = "untouched";
  r.status = proxy::parse(bytes, r.header, r.length);
  if (r.status != Status::Ok) {
    check(r.length == 0xdeadbeef && r.header.authority == "untouched" && !r.header.local,
          "a result other than Ok leaves out and length alone", asText(bytes));
  }
  return r;
}

void checkPrefix(Bytes input, size_t n, const Result& full) {
  const Result r = parse(input.first(n));
  check(r.status == Status::NeedMore || r.status == full.status,
        "a verdict other than NeedMore is final", asText(input));
  if (r.status == Status::Ok) {
    check(r.length == full.length && same(r.header, full.header),
          "an Ok prefix gives the same header", asText(input));
  }
}

void checkHeader(const Header& h, Bytes input) {
  if (h.local) {
    check(!h.source && !h.destination, "a local header has no addresses", asText(input));
    return;
  }
  check(h.source && h.destination && h.source->family() == h.destination->family() &&
            (h.source->family() == AF_INET || h.source->family() == AF_INET6),
        "a header that is not local has two addresses of one family", asText(input));
}

// The parsed header encoded again parses back to the same values.
void checkReencoded(const Header& h, bool v1, Bytes input) {
  std::string line;
  proxy::encodeV1(h, line);
  const Result r1 = parse(asBytes(line));
  check(r1.status == Status::Ok && r1.length == line.size() && r1.header.local == h.local &&
            r1.header.source == h.source && r1.header.destination == h.destination,
        "a header encoded as v1 parses back to the same addresses", line);
  std::string again;
  proxy::encodeV1(r1.header, again);
  check(again == line, "v1 encoding is canonical", line);
  if (v1) {
    check(!h.ssl && h.alpn.empty() && h.authority.empty() && h.unique_id.empty(),
          "a v1 line carries no TLVs", asText(input));
  }
  for (bool crc : {false, true}) {
    std::string bytes;
    proxy::encodeV2(h, crc, bytes);
    const Result r2 = parse(asBytes(bytes));
    if (bytes.size() > proxy::kMaxLength) {
      // Only when the CRC TLV the input did not have pushes it over.
      check(crc && r2.status == Status::V2TooLarge && bytes.size() <= proxy::kMaxLength + 7,
            "a header too large to encode again had no CRC", asText(input));
      continue;
    }
    check(r2.status == Status::Ok && r2.length == bytes.size() && sameEncoded(r2.header, h),
          "a header encoded as v2 parses back to the same values", asText(input));
  }
}

}  // namespace
}  // namespace weir::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace weir::fuzz;
  using weir::proxy::kMaxLength;
  using weir::proxy::kV1MaxLength;
  const Bytes input(data, size);
  const Result full = parse(input);

  // Never NeedMore at the limit, and nothing past it is read.
  if (size >= kMaxLength) {
    check(full.status != Status::NeedMore, "no NeedMore at kMaxLength bytes", asText(input));
    const Result cut = parse(input.first(kMaxLength));
    check(cut.status == full.status, "bytes past kMaxLength change nothing", asText(input));
  }
  if (size >= kV1MaxLength && data[0] == 'P') {
    check(full.status != Status::NeedMore, "no NeedMore for a v1 line at kV1MaxLength bytes",
          asText(input));
  }
  if (size <= kAllPrefixes) {
    for (size_t n = 0; n < size; ++n) {
      checkPrefix(input, n, full);
    }
  } else {
    for (size_t i = 0; i < kSampledPrefixes; ++i) {
      checkPrefix(input, i * size / kSampledPrefixes, full);
    }
    for (size_t n = size - 16; n < size; ++n) {
      checkPrefix(input, n, full);
    }
  }
  if (full.status != Status::Ok) {
    return 0;
  }
  const bool v1 = data[0] == 'P';
  check(full.length >= 15 && full.length <= size && full.length <= kMaxLength,
        "an Ok header lies within the input and the limit", asText(input));
  check(!v1 || full.length <= kV1MaxLength, "a v1 line is at most 107 bytes", asText(input));
  checkHeader(full.header, input);
  const Result exact = parse(input.first(full.length));
  check(exact.status == Status::Ok && exact.length == full.length &&
            same(exact.header, full.header),
        "the header's own bytes are enough", asText(input));
  check(parse(input.first(full.length - 1)).status == Status::NeedMore,
        "one byte less than the header is NeedMore", asText(input));
  checkReencoded(full.header, v1, input);
  return 0;
}
