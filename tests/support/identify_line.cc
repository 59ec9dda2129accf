#include "support/identify_line.h"

#include <cstdio>

#include "support/net_io.h"

namespace weir::test {

namespace {

int hexDigit(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return -1;
}

}  // namespace

std::string IdentifyLine::get(const std::string& key) const {
  const auto it = fields.find(key);
  return it == fields.end() ? std::string() : it->second;
}

std::string encodeIdentifyValue(std::string_view value) {
  if (value.empty()) {
    return "-";
  }
  std::string out;
  for (const char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f || c == '%') {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

std::string decodeIdentifyValue(std::string_view value) {
  std::string out;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '%' && i + 2 < value.size() && hexDigit(value[i + 1]) >= 0 &&
        hexDigit(value[i + 2]) >= 0) {
      out += static_cast<char>(hexDigit(value[i + 1]) * 16 + hexDigit(value[i + 2]));
      i += 2;
    } else {
      out += value[i];
    }
  }
  return out;
}

std::string formatIdentifyLine(
    const std::vector<std::pair<std::string_view, std::string_view>>& fields) {
  std::string line = "ID";
  for (const auto& [key, value] : fields) {
    line += ' ';
    line += key;
    line += '=';
    line += encodeIdentifyValue(value);
  }
  line += '\n';
  return line;
}

std::optional<IdentifyLine> parseIdentifyLine(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
    line.remove_suffix(1);
  }
  if (!line.starts_with("ID ")) {
    return std::nullopt;
  }
  line.remove_prefix(3);
  IdentifyLine id;
  while (!line.empty()) {
    const size_t end = line.find(' ');
    const std::string_view word = line.substr(0, end);
    line = end == std::string_view::npos ? std::string_view() : line.substr(end + 1);
    const size_t eq = word.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return std::nullopt;
    }
    id.fields[std::string(word.substr(0, eq))] = decodeIdentifyValue(word.substr(eq + 1));
  }
  return id;
}

std::optional<IdentifyLine> readIdentifyLine(int fd, Deadline deadline) {
  std::string line;
  char ch;
  while (readExact(fd, &ch, 1, deadline) == IoStatus::Ok) {
    if (ch == '\n') {
      return parseIdentifyLine(line);
    }
    line.push_back(ch);
  }
  return std::nullopt;
}

}  // namespace weir::test
