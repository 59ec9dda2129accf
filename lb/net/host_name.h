#pragma once

#include <string_view>

namespace weir::net {

// Is `host` a plausible DNS name for a backend? RFC 1123 labels: letters, digits, '-' and '_'
// (for SRV-style names), 1-63 characters, not starting or ending with '-'; at most 253
// characters without the optional trailing dot; the last label not all digits, so that no
// IPv4 literal (nor "10.1") passes. IPv6 literals fail on ':'.
bool validHostName(std::string_view host);

}  // namespace weir::net
