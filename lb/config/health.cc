#include <algorithm>

#include "config/readers.h"

namespace weir::config::detail {
namespace {

constexpr Duration kMinInterval{10};
constexpr size_t kMaxSend = 1024;
constexpr size_t kMaxExpect = 512;  // the checker reads at most 4 KiB of reply

// Keys that only mean something for one kind, and the kind they belong to.
struct KindKey {
  std::string_view key;
  HealthKind kind;
  std::string_view kind_name;
};
constexpr KindKey kKindKeys[] = {
    {"send", HealthKind::SendExpect, "send-expect"},
    {"expect", HealthKind::SendExpect, "send-expect"},
    {"path", HealthKind::Http, "http"},
    {"host", HealthKind::Http, "http"},
    {"expect_status", HealthKind::Http, "http"},
};

// Printable ASCII without spaces: the value goes into an HTTP request line or header.
bool isHttpToken(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return c > 0x20 && c < 0x7f;
  });
}

std::optional<HealthKind> readKind(const Section& section) {
  const toml::node* node = section.get("kind");
  if (node == nullptr) {
    return HealthKind::Tcp;
  }
  constexpr HealthKind kKinds[] = {HealthKind::Tcp, HealthKind::SendExpect, HealthKind::Http,
                                   HealthKind::Tls};
  if (auto kind = section.oneOf("kind", {"tcp", "send-expect", "http", "tls"})) {
    return kKinds[*kind];
  }
  return std::nullopt;
}

void readTimes(const Section& section, HealthCheck& check) {
  if (auto interval = section.duration("interval", kMaxDuration)) {
    if (*interval < kMinInterval) {
      section.problem(*section.get("interval"), "interval",
                      "must be at least \"10ms\", got " + describe(*section.get("interval")));
    } else {
      check.interval = *interval;
    }
  }
  check.timeout = std::min(Duration{1000}, check.interval / 2);
  if (auto timeout = section.duration("timeout", kMaxDuration)) {
    if (*timeout >= check.interval) {
      const toml::node* interval = section.get("interval");
      std::string limit = interval ? describe(*interval) : "\"2s\", the default";
      section.problem(*section.get("timeout"), "timeout",
                      "must be shorter than interval (" + limit + "), got " +
                          describe(*section.get("timeout")));
    } else {
      check.timeout = *timeout;
    }
  }
  if (auto rise = section.integer("rise", 1, 100)) {
    check.rise = static_cast<uint32_t>(*rise);
  }
  if (auto fall = section.integer("fall", 1, 100)) {
    check.fall = static_cast<uint32_t>(*fall);
  }
  if (auto port = section.integer("port", 1, 65535)) {
    check.port = static_cast<uint16_t>(*port);
  }
}

// A send or expect string with escapes decoded; nullopt if absent or wrong.
std::optional<std::string> readBytes(const Section& section, std::string_view key, size_t max) {
  auto raw = section.string(key, "a string (escapes \\r \\n \\t \\0 \\\\ \\xHH allowed)");
  if (!raw) {
    return std::nullopt;
  }
  const toml::node& node = *section.get(key);
  std::string error;
  auto bytes = decodeEscapes(*raw, error);
  if (!bytes) {
    section.problem(node, key, error);
    return std::nullopt;
  }
  if (bytes->size() > max) {
    section.problem(node, key,
                    "at most " + std::to_string(max) + " bytes, got " +
                        std::to_string(bytes->size()));
    return std::nullopt;
  }
  return bytes;
}

void readSendExpect(const Section& section, HealthCheck& check) {
  if (auto send = readBytes(section, "send", kMaxSend)) {
    check.send = *send;
  }
  if (section.get("expect") == nullptr) {
    section.diag().add(section.table(), section.path(),
                       "missing required key \"expect\" (kind = \"send-expect\" needs it)");
    return;
  }
  if (auto expect = readBytes(section, "expect", kMaxExpect)) {
    if (expect->empty()) {
      section.problem(*section.get("expect"), "expect",
                      "must not be empty (it would match any reply)");
    }
    check.expect = *expect;
  }
}

void readExpectStatus(const Section& section, HealthCheck& check) {
  const toml::node* node = section.get("expect_status");
  if (node == nullptr) {
    return;
  }
  if (auto* number = node->as_integer(); number && number->get() >= 100 && number->get() <= 599) {
    check.status_min = check.status_max = static_cast<uint16_t>(number->get());
    return;
  }
  if (auto* text = node->as_string()) {
    const std::string& s = text->get();
    if (s.size() == 3 && s[0] >= '1' && s[0] <= '5' && s[1] == 'x' && s[2] == 'x') {
      check.status_min = static_cast<uint16_t>((s[0] - '0') * 100);
      check.status_max = static_cast<uint16_t>(check.status_min + 99);
      return;
    }
  }
  section.problem(*node, "expect_status",
                  "expected a status 100..599 or a class \"1xx\"..\"5xx\", got " +
                      describe(*node));
}

void readHttp(const Section& section, HealthCheck& check) {
  if (auto path = section.string("path", "a path such as \"/health\"")) {
    if (path->empty() || path->front() != '/' || !isHttpToken(*path)) {
      section.problem(*section.get("path"), "path",
                      "must start with '/' and hold no spaces or control characters, got " +
                          describe(*section.get("path")));
    } else {
      check.path = *path;
    }
  }
  if (auto host = section.string("host", "a host name such as \"example.com\"")) {
    if (!isHttpToken(*host)) {
      section.problem(*section.get("host"), "host",
                      "must be non-empty, without spaces or control characters, got " +
                          describe(*section.get("host")));
    } else {
      check.host = *host;
    }
  }
  readExpectStatus(section, check);
}

}  // namespace

std::optional<HealthCheck> readHealth(const Section& section) {
  section.checkKeys({"kind", "interval", "timeout", "rise", "fall", "port", "send", "expect",
                     "path", "host", "expect_status"});
  HealthCheck check;
  auto kind = readKind(section);
  readTimes(section, check);
  if (!kind) {
    return std::nullopt;
  }
  check.kind = *kind;
  for (const KindKey& k : kKindKeys) {
    if (k.kind != check.kind && section.get(k.key) != nullptr) {
      section.problem(*section.get(k.key), k.key,
                      "only used with kind = \"" + std::string(k.kind_name) + "\"");
    }
  }
  if (check.kind == HealthKind::SendExpect) {
    readSendExpect(section, check);
  } else if (check.kind == HealthKind::Http) {
    readHttp(section, check);
  }
  return check;
}

}  // namespace weir::config::detail
