#include "support/testsrv/protocols.h"

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
    const TlsInfo* tls = conn.tls();
    if (tls == nullptr) {
      conn.send(test::formatIdentifyLine({{"name", name_}, {"peer", peer}, {"tls", "none"}}));
      return;
    }
    conn.send(test::formatIdentifyLine({{"name", name_},
                                        {"peer", peer},
                                        {"tls", tls->version},
                                        {"sni", tls->sni},
                                        {"alpn", tls->alpn},
                                        {"alpn-offered", tls->alpn_offered},
                                        {"resumed", tls->resumed ? "1" : "0"},
                                        {"client-cert", tls->client_cert}}));
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
