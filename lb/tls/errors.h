#pragma once

#include <string>

namespace weir::tls {

// Empties OpenSSL's error queue of this thread into one line: "what: reason; reason", or
// just "what" when the queue was empty. Every failed OpenSSL call must be followed by this
// (or by clearErrors) so that a stale entry never shows up in a later, unrelated message.
std::string takeErrors(const std::string& what);
void clearErrors();

}  // namespace weir::tls
