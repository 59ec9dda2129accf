#include "master/http_request.h"

namespace weir::master {
namespace {

// RFC 9110 tchar.
bool isToken(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
    return true;
  }
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool allToken(std::string_view s) {
  if (s.empty()) {
    return false;
  }
  for (char c : s) {
    if (!isToken(c)) {
      return false;
    }
  }
  return true;
}

// Visible ASCII: what an origin-form target is made of (no spaces, no controls, no bytes
// above 0x7e: percent-encoding is how a client sends those).
bool allVisible(std::string_view s) {
  for (char c : s) {
    if (c <= 0x20 || c >= 0x7f) {
      return false;
    }
  }
  return true;
}

// A header field value: visible characters, spaces and tabs, and obs-text.
bool validValue(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) {
      return false;
    }
  }
  return true;
}

HttpRequest bad(HttpRequest::Status status) {
  HttpRequest r;
  r.status = status;
  return r;
}

}  // namespace

HttpRequest parseHttpRequest(std::string_view data) {
  const size_t end = data.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (data.size() >= kMaxRequestBytes) {
      return bad(HttpRequest::Status::TooLarge);
    }
    // Lines ended by a bare LF: never a valid request, so do not wait for more.
    if (data.find("\n\n") != std::string_view::npos ||
        data.find("\n\r\n") != std::string_view::npos) {
      return bad(HttpRequest::Status::Bad);
    }
    return {};
  }
  if (end + 4 > kMaxRequestBytes) {
    return bad(HttpRequest::Status::TooLarge);
  }
  std::string_view head = data.substr(0, end + 2);  // every line with its CRLF

  const size_t eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  head.remove_prefix(eol + 2);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return bad(HttpRequest::Status::Bad);
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!allToken(method) || target.empty() || target.front() != '/' || !allVisible(target)) {
    return bad(HttpRequest::Status::Bad);
  }
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
    return bad(HttpRequest::Status::Bad);
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return bad(HttpRequest::Status::Version);
  }

  while (!head.empty()) {
    const size_t e = head.find("\r\n");
    const std::string_view field = head.substr(0, e);
    head.remove_prefix(e + 2);
    const size_t colon = field.find(':');
    // No obsolete line folding, no space before the colon (RFC 9112 5.1).
    if (colon == std::string_view::npos || !allToken(field.substr(0, colon)) ||
        !validValue(field.substr(colon + 1))) {
      return bad(HttpRequest::Status::Bad);
    }
  }

  HttpRequest r;
  r.status = HttpRequest::Status::Ok;
  r.method = std::string(method);
  r.path = std::string(target.substr(0, target.find('?')));
  return r;
}

}  // namespace weir::master
