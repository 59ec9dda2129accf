#include "health/reply.h"

#include <cstdio>

namespace weir::health {
namespace {

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

Judgement fail(std::string error) {
  return {Verdict::Fail, std::move(error)};
}

}  // namespace

std::string quoteBytes(std::string_view bytes, size_t max) {
  std::string out = "\"";
  for (size_t i = 0; i < bytes.size() && i < max; ++i) {
    auto c = static_cast<unsigned char>(bytes[i]);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  if (bytes.size() > max) {
    out += "...";
  }
  return out;
}

Judgement judgeExpect(std::string_view reply, std::string_view expect, bool closed, bool full) {
  if (reply.find(expect) != std::string_view::npos) {
    return {Verdict::Pass, {}};
  }
  if (!closed && !full) {
    return {};
  }
  std::string error = "expected " + quoteBytes(expect) + ", got ";
  if (reply.empty()) {
    return fail(error + "nothing (connection closed)");
  }
  error += quoteBytes(reply);
  if (full) {
    error += " (no match in the first " + std::to_string(kMaxReply) + " bytes)";
  }
  return fail(error);
}

Judgement judgeHttp(std::string_view reply, uint16_t status_min, uint16_t status_max,
                    bool closed, bool full) {
  size_t eol = reply.find('\n');
  if (eol == std::string_view::npos && !closed && !full) {
    return {};
  }
  if (reply.empty()) {
    return fail("connection closed before a status line");
  }
  std::string_view line = reply.substr(0, eol);
  if (!line.empty() && line.back() == '\r') {
    line.remove_suffix(1);
  }
  // "HTTP/1.1 200 OK": a version without spaces, one space, three digits, then the end or
  // a space before the reason phrase.
  size_t space = line.find(' ');
  bool well_formed = line.substr(0, 5) == "HTTP/" && space != std::string_view::npos &&
                     line.size() >= space + 4 && isDigit(line[space + 1]) &&
                     isDigit(line[space + 2]) && isDigit(line[space + 3]) &&
                     (line.size() == space + 4 || line[space + 4] == ' ');
  if (!well_formed) {
    return fail("not an HTTP status line: " + quoteBytes(line));
  }
  int status = (line[space + 1] - '0') * 100 + (line[space + 2] - '0') * 10 +
               (line[space + 3] - '0');
  if (status < status_min || status > status_max) {
    return fail("status " + std::to_string(status) + ", expected " +
                describeStatus(status_min, status_max));
  }
  return {Verdict::Pass, {}};
}

std::string httpRequest(std::string_view path, std::string_view host) {
  std::string request = "GET ";
  request.append(path);
  request += " HTTP/1.0\r\nHost: ";
  request.append(host);
  request += "\r\nUser-Agent: weir-health-check\r\nConnection: close\r\n\r\n";
  return request;
}

std::string describeStatus(uint16_t status_min, uint16_t status_max) {
  if (status_min == status_max) {
    return std::to_string(status_min);
  }
  if (status_min % 100 == 0 && status_max == status_min + 99) {
    return std::to_string(status_min / 100) + "xx";
  }
  return std::to_string(status_min) + ".." + std::to_string(status_max);
}

}  // namespace weir::health
