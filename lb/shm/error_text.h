#pragma once

#include <string>
#include <string_view>

#include "shm/layout.h"

namespace weir::shm {

// A backend's "last error" text, shared without a lock: a sequence counter (odd while a write
// is in progress) guards words that are themselves atomics, so a torn read is detected by the
// reader rather than being undefined behaviour.
//
// Writers (the checker after a failed check, a worker taking a backend down) claim the counter
// with a compare-and-swap; one that finds another write in progress drops its text instead of
// waiting (the other text is just as recent). Readers retry a few times and then accept what
// they read, which can mix two texts only while a writer keeps rewriting; it is a diagnostic.

// Stores `text`, truncated to kErrorTextLen - 1 bytes. Returns false if dropped (see above).
bool writeErrorText(BackendSlot& slot, std::string_view text);

// The last stored text ("" if none).
std::string readErrorText(const BackendSlot& slot);

}  // namespace weir::shm
