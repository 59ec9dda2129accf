#include "net/host_name.h"

namespace weir::net {

bool validHostName(std::string_view host) {
  if (!host.empty() && host.back() == '.') {
    host.remove_suffix(1);
  }
  if (host.empty() || host.size() > 253) {
    return false;
  }
  size_t start = 0;
  bool last_all_digits = false;
  while (start <= host.size()) {
    size_t end = host.find('.', start);
    if (end == std::string_view::npos) {
      end = host.size();
    }
    const std::string_view l = host.substr(start, end - start);
    if (l.empty() || l.size() > 63 || l.front() == '-' || l.back() == '-') {
      return false;
    }
    last_all_digits = true;
    for (const char c : l) {
      const bool digit = c >= '0' && c <= '9';
      const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      if (!digit && !letter && c != '-' && c != '_') {
        return false;
      }
      last_all_digits = last_all_digits && digit;
    }
    start = end + 1;
  }
  // "10.0.0.1", "10.1" and "3232235777" read as IPv4 literals to inet_aton and to people.
  return !last_all_digits;
}

}  // namespace weir::net
