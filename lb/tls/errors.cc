#include "tls/errors.h"

#include <cstring>

#include <openssl/err.h>

namespace weir::tls {

std::string takeErrors(const std::string& what) {
  std::string out = what;
  bool first = true;
  unsigned long code;
  while ((code = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    out += first ? ": " : "; ";
    // "error:0A000086:SSL routines::certificate verify failed": keep the reason only. A
    // system error (a CA file that does not exist) has no reason string: its errno's text.
    const char* reason = ERR_SYSTEM_ERROR(code) ? std::strerror(ERR_GET_REASON(code))
                                                : ERR_reason_error_string(code);
    out += reason != nullptr ? reason : buf;
    first = false;
  }
  return out;
}

void clearErrors() { ERR_clear_error(); }

}  // namespace weir::tls
