#include "support/drain_reply.h"

#include <cstdio>
#include <cstring>

namespace weir::test {

void DrainReplyReader::feed(const char* data, size_t len) {
  if (!header_done_) {
    const void* nl = std::memchr(data, '\n', len);
    const size_t take = nl != nullptr ? static_cast<size_t>(static_cast<const char*>(nl) - data)
                                      : len;
    header_.append(data, take);
    if (header_.size() > 200) {
      malformed_ = true;
    }
    if (nl == nullptr) {
      return;
    }
    header_done_ = true;
    parseHeader();
    data += take + 1;
    len -= take + 1;
  }
  payload_.update(data, len);
}

void DrainReplyReader::parseHeader() {
  unsigned long long bytes = 0;
  char hex[17] = {};
  int consumed = 0;
  if (std::sscanf(header_.c_str(), "BYTES %llu FNV %16[0-9a-f]%n", &bytes, hex, &consumed) != 2 ||
      static_cast<size_t>(consumed) != header_.size() || std::strlen(hex) != 16) {
    malformed_ = true;
    return;
  }
  bytes_ = bytes;
  fnv_ = std::stoull(hex, nullptr, 16);
}

}  // namespace weir::test
