#include "support/testsrv/http_protocol.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <vector>

#include "support/identify_line.h"

namespace weir::testsrv {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    const size_t pos = s.find(sep, start);
    parts.push_back(s.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) {
      return parts;
    }
    start = pos + 1;
  }
}

std::string httpDate() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

}  // namespace

void HttpProtocol::onData(Conn& conn, std::string_view data) {
  in_.append(data);
  process(conn);
}

void HttpProtocol::onEof(Conn& conn) {
  // A partial request at EOF cannot be answered; complete ones were answered in onData.
  conn.finish();
}

void HttpProtocol::process(Conn& conn) {
  size_t pos = 0;
  while (conn.state() == Conn::State::Open) {
    if (body_left_ > 0) {
      const size_t skip = static_cast<size_t>(std::min<uint64_t>(body_left_, in_.size() - pos));
      pos += skip;
      body_left_ -= skip;
      if (body_left_ > 0) {
        break;
      }
    }
    const size_t end = in_.find("\r\n\r\n", pos);
    if (end == std::string::npos) {
      if (in_.size() - pos > kMaxHead) {
        respond(conn, 431, "Request Header Fields Too Large", "request head too large\n", true,
                false);
      }
      break;
    }
    if (end - pos > kMaxHead) {
      respond(conn, 431, "Request Header Fields Too Large", "request head too large\n", true,
              false);
      break;
    }
    const std::string_view head(in_.data() + pos, end - pos);
    pos = end + 4;
    if (!handle(conn, head)) {
      break;
    }
  }
  if (conn.state() != Conn::State::Open) {
    in_.clear();
  } else {
    in_.erase(0, pos);
  }
}

bool HttpProtocol::handle(Conn& conn, std::string_view head) {
  // Tolerate blank lines before a request (RFC 9112 section 2.2).
  while (head.substr(0, 2) == "\r\n") {
    head.remove_prefix(2);
  }
  const size_t eol = head.find("\r\n");
  const std::string_view request_line = head.substr(0, eol);
  const std::string_view header_block =
      eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);

  const auto parts = split(request_line, ' ');
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty()) {
    respond(conn, 400, "Bad Request", "malformed request line\n", true, false);
    return false;
  }
  const std::string_view method = parts[0];
  const std::string_view version = parts[2];
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    respond(conn, 505, "HTTP Version Not Supported", "only HTTP/1.0 and HTTP/1.1\n", true,
            false);
    return false;
  }
  bool want_close = false;
  bool want_keep_alive = false;
  uint64_t content_length = 0;
  if (!header_block.empty()) {
    for (std::string_view line : split(header_block, '\n')) {
      line = trim(line);
      if (line.empty()) {
        continue;
      }
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos || colon == 0) {
        respond(conn, 400, "Bad Request", "malformed header line\n", true, false);
        return false;
      }
      const std::string name = lower(trim(line.substr(0, colon)));
      const std::string_view value = trim(line.substr(colon + 1));
      if (name == "connection") {
        for (std::string_view token : split(value, ',')) {
          const std::string t = lower(trim(token));
          want_close = want_close || t == "close";
          want_keep_alive = want_keep_alive || t == "keep-alive";
        }
      } else if (name == "content-length") {
        if (value.empty() || value.size() > 18 ||
            !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
          respond(conn, 400, "Bad Request", "bad Content-Length\n", true, false);
          return false;
        }
        content_length = std::stoull(std::string(value));
      } else if (name == "transfer-encoding") {
        respond(conn, 501, "Not Implemented", "request bodies must use Content-Length\n", true,
                false);
        return false;
      }
    }
  }
  const bool keep_alive = version == "HTTP/1.1" ? !want_close : want_keep_alive && !want_close;
  const std::string body = "hello from " + name_ + " (you are " + conn.peer().str() + ")\n";
  respond(conn, 200, "OK", body, method != "HEAD", keep_alive);
  body_left_ = content_length;
  return keep_alive;
}

void HttpProtocol::respond(Conn& conn, int status, std::string_view reason,
                           std::string_view body, bool send_body, bool keep_alive) {
  std::string r;
  r.reserve(256 + body.size());
  r += "HTTP/1.1 " + std::to_string(status) + " ";
  r += reason;
  r += "\r\nServer: weir-testsrv\r\nDate: " + httpDate();
  r += "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
       std::to_string(body.size());
  if (const TlsInfo* tls = conn.tls()) {
    r += "\r\nX-TLS-Version: " + tls->version;
    r += "\r\nX-TLS-SNI: " + test::encodeIdentifyValue(tls->sni);
    r += "\r\nX-TLS-ALPN: " + test::encodeIdentifyValue(tls->alpn);
  }
  r += keep_alive ? "\r\nConnection: keep-alive\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
  if (send_body) {
    r += body;
  }
  conn.send(r);
  if (!keep_alive) {
    conn.finish();
  }
}

}  // namespace weir::testsrv
