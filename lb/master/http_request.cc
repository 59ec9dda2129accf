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

// Why the request line is wrong, or Ok.
HttpRequest::Status checkRequestLine(std::string_view method, std::string_view target,
                                     std::string_view version) {
  if (!allToken(method) || target.empty() || target.front() != '/' || !allVisible(target)) {
    return HttpRequest::Status::Bad;
  }
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
    return HttpRequest::Status::Bad;
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return HttpRequest::Status::Version;
  }
  return HttpRequest::Status::Ok;
}

}  // namespace

// The verdict depends on the bytes in stream order only: it is decided at the first byte that
// decides it, so bytes that follow never change it (the server answers on the first verdict),
// and bytes past kMaxRequestBytes are never looked at.
HttpRequest parseHttpRequest(std::string_view data) {
  const std::string_view window = data.substr(0, kMaxRequestBytes);
  // An unfinished line: a bare LF in it (a client ending lines with LF alone) can never become
  // valid, so it is refused now rather than after the client's timeout.
  const auto unfinished = [&](std::string_view tail) {
    if (tail.find('\n') != std::string_view::npos) {
      return bad(HttpRequest::Status::Bad);
    }
    return data.size() >= kMaxRequestBytes ? bad(HttpRequest::Status::TooLarge) : HttpRequest{};
  };

  size_t eol = window.find("\r\n");
  if (eol == std::string_view::npos) {
    return unfinished(window);
  }
  const std::string_view line = window.substr(0, eol);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return bad(HttpRequest::Status::Bad);
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (auto status = checkRequestLine(method, target, line.substr(sp2 + 1));
      status != HttpRequest::Status::Ok) {
    return bad(status);
  }

  for (size_t at = eol + 2;; at = eol + 2) {
    eol = window.find("\r\n", at);
    if (eol == std::string_view::npos) {
      return unfinished(window.substr(at));
    }
    const std::string_view field = window.substr(at, eol - at);
    if (field.empty()) {
      break;  // the blank line ending the headers
    }
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
