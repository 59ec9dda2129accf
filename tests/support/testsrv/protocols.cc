#include "support/testsrv/protocols.h"

#include <string_view>
#include <utility>
#include <vector>

#include "support/fnv.h"
#include "support/identify_line.h"
#include "support/testsrv/http_protocol.h"

namespace weir::testsrv {

namespace {

// Echoes every byte. On EOF the queued bytes are flushed before writes are shut down.
class Echo : public Protocol {
public:
  void onData(Conn& conn, std::string_view data) override { conn.send(data); }
  void onEof(Conn& conn) override { conn.finish(); }
};

// Reads to EOF, then reports what it read and sends a PRNG payload.
class DrainReply : public Protocol {
public:
  DrainReply(uint64_t seed, uint64_t bytes) : seed_(seed), bytes_(bytes) {}
  void onData(Conn&, std::string_view data) override { fnv_.update(data); }
  void onEof(Conn& conn) override {
    conn.send("BYTES " + std::to_string(fnv_.count()) + " FNV " + fnv_.hex() + "\n");
    conn.produce(seed_, bytes_);
    conn.finish();
  }

private:
  uint64_t seed_;
  uint64_t bytes_;
  test::Fnv1a64 fnv_;
};

// Sends a PRNG payload as soon as the connection opens; discards input.
class Source : public Protocol {
public:
  Source(uint64_t seed, uint64_t bytes) : seed_(seed), bytes_(bytes) {}
  void onOpen(Conn& conn) override {
    conn.produce(seed_, bytes_);
    conn.finish();
  }
  void onData(Conn&, std::string_view) override {}
  void onEof(Conn&) override {}

private:
  uint64_t seed_;
  uint64_t bytes_;
};

// Holds the connection open and discards input; closes when the client does.
class Hold : public Protocol {
public:
  void onData(Conn&, std::string_view) override {}
  void onEof(Conn& conn) override { conn.finish(); }
};

// Says who answered and what the client presented (identify_line.h), then echoes.
class Identify : public Protocol {
public:
  explicit Identify(std::string name) : name_(std::move(name)) {}
  void onOpen(Conn& conn) override {
    const std::string peer = conn.peer().str();
    std::vector<std::pair<std::string_view, std::string_view>> fields = {{"name", name_},
                                                                         {"peer", peer}};
    const TlsInfo* tls = conn.tls();
    if (tls == nullptr) {
      fields.emplace_back("tls", "none");
    } else {
      fields.insert(fields.end(), {{"tls", tls->version},
                                   {"sni", tls->sni},
                                   {"alpn", tls->alpn},
                                   {"alpn-offered", tls->alpn_offered},
                                   {"resumed", tls->resumed ? "1" : "0"},
                                   {"client-cert", tls->client_cert}});
    }
    // `fields` views these until the line is formatted.
    std::string src, dst;
    const ProxyInfo* proxy = conn.proxy();
    if (proxy == nullptr) {
      fields.emplace_back("proxy", "none");
      conn.send(test::formatIdentifyLine(fields));
      return;
    }
    const proxy::Header& h = proxy->header;
    fields.emplace_back("proxy", proxy->version == 1 ? "v1" : "v2");
    if (h.source && h.destination) {
      src = h.source->toString();
      dst = h.destination->toString();
      fields.insert(fields.end(), {{"src", src}, {"dst", dst}});
    }
    const auto some = [&](std::string_view key, const std::string& value) {
      if (!value.empty()) {
        fields.emplace_back(key, value);
      }
    };
    some("authority", h.authority);
    some("proxy_alpn", h.alpn);
    if (proxy->version == 2) {
      fields.emplace_back("ssl", h.ssl ? "1" : "0");
    }
    if (h.ssl) {
      some("ssl_version", h.ssl->version);
      some("ssl_cipher", h.ssl->cipher);
    }
    conn.send(test::formatIdentifyLine(fields));
  }
  void onData(Conn& conn, std::string_view data) override { conn.send(data); }
  void onEof(Conn& conn) override { conn.finish(); }

private:
  std::string name_;
};

}  // namespace

std::unique_ptr<Protocol> makeProtocol(const Options& options, const std::string& name) {
  switch (options.mode) {
    case Mode::Echo: return std::make_unique<Echo>();
    case Mode::Http: return std::make_unique<HttpProtocol>(name);
    case Mode::DrainReply: return std::make_unique<DrainReply>(options.seed, options.bytes);
    case Mode::Source: return std::make_unique<Source>(options.seed, options.bytes);
    case Mode::Hold: return std::make_unique<Hold>();
    case Mode::Identify: return std::make_unique<Identify>(name);
  }
  return nullptr;
}

}  // namespace weir::testsrv
