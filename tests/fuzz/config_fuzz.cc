// libFuzzer target: config text -> weir::config::parse -> a Config or a ConfigError.
//
// Beyond crashes, leaks and undefined behaviour it checks what the rest of weir relies on: an
// error names FILE:LINE:COL on every line and each line is one line of text; a Config that
// parses is internally consistent (every listener's pool exists and pool_index points at it,
// every pool has backends, a check's timeout is shorter than its interval, ...) and every
// duration (and trusted prefix) in it prints back to the same value.
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "fuzz_check.h"
#include "net/host_name.h"

namespace weir::fuzz {
namespace {

constexpr std::string_view kPath = "fuzz.toml";

// Reads decimal digits at `pos`; returns the value (0 if none) and moves `pos` past them.
uint64_t digitsAt(std::string_view s, size_t& pos) {
  uint64_t value = 0;
  size_t start = pos;
  while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9' && pos - start < 10) {
    value = value * 10 + static_cast<uint64_t>(s[pos] - '0');
    ++pos;
  }
  return value;
}

// "fuzz.toml:LINE:COL: ..." with LINE and COL >= 1; returns {line, col}.
std::pair<uint64_t, uint64_t> checkPosition(std::string_view message) {
  check(message.substr(0, kPath.size() + 1) == std::string(kPath) + ":",
        "a config error starts with FILE:", message);
  size_t pos = kPath.size() + 1;
  uint64_t line = digitsAt(message, pos);
  check(line >= 1 && pos < message.size() && message[pos] == ':',
        "a config error names LINE (>= 1) after FILE:", message);
  ++pos;
  uint64_t col = digitsAt(message, pos);
  check(col >= 1 && message.substr(pos, 2) == ": ",
        "a config error names COL (>= 1) after FILE:LINE:", message);
  return {line, col};
}

void checkError(const config::ConfigError& e) {
  const auto& messages = e.messages();
  check(!messages.empty(), "a ConfigError holds at least one message");
  std::pair<uint64_t, uint64_t> previous{0, 0};
  std::string joined;
  for (const std::string& message : messages) {
    check(isOneLine(message), "each config error is one line without control characters",
          message);
    auto at = checkPosition(message);
    check(at >= previous, "config errors are ordered by line and column", message);
    previous = at;
    if (!joined.empty()) {
      joined += '\n';
    }
    joined += message;
  }
  check(joined == e.what(), "what() is the messages joined by newlines");
}

// parseDuration(formatDuration(d)) == d: what weir logs about a duration reads back the same.
void checkDuration(config::Duration d, std::string_view key) {
  check(d.count() > 0, "a configured duration is greater than 0", key);
  std::string text = config::formatDuration(d);
  auto back = config::parseDuration(text);
  check(back.has_value() && *back == d, "formatDuration reads back with parseDuration", text);
}

void checkFile(const config::FileRef& file, std::string_view what) {
  check(!file.path.empty() && isOneLine(file.path), "a file path is non-empty and one line",
        what);
  check(file.where.substr(0, kPath.size() + 1) == std::string(kPath) + ":" &&
            isOneLine(file.where),
        "FileRef::where is one line starting with FILE:", file.where);
}

void checkAlpn(const std::vector<std::string>& alpn) {
  check(alpn.size() <= 16, "at most 16 ALPN protocols");
  for (size_t i = 0; i < alpn.size(); ++i) {
    check(!alpn[i].empty() && alpn[i].size() <= 255, "an ALPN protocol is 1..255 bytes");
    for (size_t k = 0; k < i; ++k) {
      check(alpn[k] != alpn[i], "no ALPN protocol twice", alpn[i]);
    }
  }
}

void checkTls(const config::Config& c, const config::Listener& l) {
  check(l.tls.has_value() == (l.mode == config::ListenerMode::TlsTerminate),
        "[tls] is set exactly in mode tls-terminate", l.name);
  check(l.sni.empty() || l.mode != config::ListenerMode::Tcp, "SNI routes only in TLS modes",
        l.name);
  for (size_t i = 0; i < l.sni.size(); ++i) {
    const config::SniRoute& r = l.sni[i];
    check(i == 0 || l.sni[i - 1].name < r.name, "SNI routes sorted, names unique", r.name);
    check(!r.name.empty() && r.name.size() <= 255 && isPrintableAscii(r.name),
          "an SNI route's name is a printable host name", r.name);
    for (char ch : r.name) {
      check(!(ch >= 'A' && ch <= 'Z'), "SNI route names are lower case", r.name);
    }
    check(r.pool_index < c.pools.size() && c.pools[r.pool_index].name == r.pool,
          "an SNI route's pool_index points at its pool", r.name);
  }
  checkDuration(l.client_hello_timeout, "client_hello_timeout");
  if (l.tls) {
    check(!l.tls->certificates.empty(), "tls-terminate has a certificate", l.name);
    for (const config::CertKey& pair : l.tls->certificates) {
      checkFile(pair.cert, "cert");
      checkFile(pair.key, "key");
    }
    checkAlpn(l.tls->alpn);
    checkDuration(l.tls->handshake_timeout, "handshake_timeout");
    checkDuration(l.tls->ticket_key_rotation, "ticket_key_rotation");
  }
}

// Accepting PROXY headers goes with a non-empty list of distinct prefixes, and only then.
void checkProxyProtocol(const config::Listener& l) {
  check(l.accept_proxy_protocol == !l.trusted.empty(),
        "trusted is non-empty exactly when accept_proxy_protocol is true", l.name);
  for (size_t i = 0; i < l.trusted.size(); ++i) {
    const net::Cidr& prefix = l.trusted[i];
    check((prefix.family() == AF_INET && prefix.prefixLength() <= 32) ||
              (prefix.family() == AF_INET6 && prefix.prefixLength() <= 128),
          "a trusted prefix is IPv4 /0..32 or IPv6 /0..128", l.name);
    auto back = net::Cidr::parse(prefix.toString());
    check(back.has_value() && *back == prefix, "a trusted prefix prints back to itself",
          prefix.toString());
    for (size_t k = 0; k < i; ++k) {
      check(!(l.trusted[k] == prefix), "no trusted prefix twice", prefix.toString());
    }
  }
  checkDuration(l.proxy_protocol_timeout, "proxy_protocol_timeout");
}

void checkConfig(const config::Config& c) {
  check(c.path == kPath, "Config::path is the path given");
  check(c.global.workers >= 1 && c.global.workers <= config::kMaxWorkers, "workers 1..64");
  check(c.global.max_connections >= 1, "max_connections >= 1");
  checkDuration(c.global.drain_timeout, "drain_timeout");
  check(c.global.uid.has_value() == !c.global.user.empty(), "a user resolves to a uid");
  check(!c.global.error_log.empty() && !c.global.access_log.empty(), "log targets non-empty");
  check(c.global.transparent_mark != 0, "transparent_mark is not 0");
  check(c.global.transparent_table >= 1 && c.global.transparent_table <= 2147483647 &&
            (c.global.transparent_table < 253 || c.global.transparent_table > 255),
        "transparent_table 1..2^31-1, not the kernel's 253..255");

  check(!c.listeners.empty(), "a valid config has a listener");
  for (size_t i = 0; i < c.listeners.size(); ++i) {
    const config::Listener& l = c.listeners[i];
    check(i == 0 || c.listeners[i - 1].name < l.name, "listeners sorted, names unique", l.name);
    check(!l.binds.empty(), "a listener binds at least one address", l.name);
    for (const auto& bind : l.binds) {
      check(bind.port() != 0, "no bind on port 0", l.name);
    }
    check(l.pool_index < c.pools.size() && c.pools[l.pool_index].name == l.pool,
          "pool_index points at the listener's pool", l.name);
    check(l.backlog >= 1 && l.backlog <= 65535, "backlog 1..65535", l.name);
    checkTls(c, l);
    checkProxyProtocol(l);
  }

  for (size_t i = 0; i < c.pools.size(); ++i) {
    const config::Pool& p = c.pools[i];
    check(i == 0 || c.pools[i - 1].name < p.name, "pools sorted, names unique", p.name);
    check(!p.name.empty() && p.name.size() <= config::kMaxPoolName, "pool name length", p.name);
    check(!p.backends.empty(), "a pool has at least one backend", p.name);
    for (size_t b = 0; b < p.backends.size(); ++b) {
      const config::Backend& backend = p.backends[b];
      if (backend.named()) {
        // "NAME:PORT": max_addresses consecutive slots, no address until the checker fills them.
        check(backend.port != 0, "no backend on port 0", p.name);
        check(net::validHostName(backend.host), "a backend name is a valid host name", p.name);
        check(backend.address.family() == AF_UNSPEC, "a name's slot has no address", p.name);
        check(backend.name_slots >= 1 && backend.name_slots <= config::kMaxMaxAddresses &&
                  backend.name_slot < backend.name_slots,
              "a name has 1..256 slots", p.name);
        const config::Backend* before = b > 0 ? &p.backends[b - 1] : nullptr;
        check(backend.name_slot == 0 ||
                  (before != nullptr && before->host == backend.host &&
                   before->port == backend.port && before->name_slot + 1 == backend.name_slot),
              "a name's slots are consecutive", p.name);
      } else {
        check(backend.address.port() != 0, "no backend on port 0", p.name);
      }
      check(backend.weight >= 1 && backend.weight <= 1000, "weight 1..1000", p.name);
      const std::string name = config::backendName(backend);
      for (size_t other = 0; other < b; ++other) {
        check(config::backendName(p.backends[other]) != name, "no backend listed twice", p.name);
      }
    }
    checkDuration(p.connect_timeout, "connect_timeout");
    checkDuration(p.idle_timeout, "idle_timeout");
    checkDuration(p.passive_holddown, "passive_holddown");
    if (p.tls) {
      if (!p.tls->ca.empty()) {
        checkFile(p.tls->ca, "ca");
        check(p.tls->verify, "a CA bundle only with verify = true", p.name);
      }
      if (p.tls->client_certificate) {
        checkFile(p.tls->client_certificate->cert, "client_certificate.cert");
        checkFile(p.tls->client_certificate->key, "client_certificate.key");
      }
      checkAlpn(p.tls->alpn);
    }
    if (p.health) {
      const config::HealthCheck& h = *p.health;
      checkDuration(h.interval, "interval");
      checkDuration(h.timeout, "timeout");
      check(h.interval >= config::Duration(10), "interval >= 10ms", p.name);
      check(h.timeout < h.interval, "timeout < interval", p.name);
      check(h.rise >= 1 && h.rise <= 100 && h.fall >= 1 && h.fall <= 100, "rise, fall 1..100");
      check(h.status_min >= 100 && h.status_min <= h.status_max && h.status_max <= 599,
            "expected statuses within 100..599", p.name);
      if (h.kind == config::HealthKind::SendExpect) {
        check(!h.expect.empty() && h.expect.size() <= 512 && h.send.size() <= 1024,
              "send-expect: expect 1..512 bytes, send at most 1024", p.name);
      }
      if (h.kind == config::HealthKind::Http) {
        check(!h.path.empty() && h.path.front() == '/' && isPrintableAscii(h.path),
              "http: path starts with '/' and is printable", h.path);
        check(isPrintableAscii(h.host), "http: host is printable", h.host);
      }
    }
  }
}

}  // namespace
}  // namespace weir::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // Anything thrown other than ConfigError escapes, and libFuzzer reports it as a crash.
  try {
    weir::fuzz::checkConfig(weir::config::parse(text, std::string(weir::fuzz::kPath)));
  } catch (const weir::config::ConfigError& e) {
    weir::fuzz::checkError(e);
  }
  return 0;
}
