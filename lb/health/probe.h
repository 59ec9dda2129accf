#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "net/address.h"
#include "net/unique_fd.h"
#include "tls/client_context.h"

namespace weir::health {

// What one backend's check does, derived once from its pool's [health] table.
struct ProbeSpec {
  config::HealthKind kind = config::HealthKind::Tcp;
  net::SockAddr address;  // the backend's address, with the check's port if it sets one
  // Sent first, right after the connect, whatever the kind (a PROXY v2 LOCAL header for a
  // pool with proxy_protocol: the backend then knows the connection is weir's own).
  std::string preamble;
  std::string request;    // sent once connected (send-expect's send, an HTTP request); may be ""
  std::string expect;     // send-expect
  uint16_t status_min = 200;
  uint16_t status_max = 200;
  int64_t timeout_ms = 1000;
  // kind tls: the pool's context, owned by whoever owns the spec (the checker); nullptr when
  // it could not be built, which fails every check of the backend.
  const tls::ClientContext* tls = nullptr;
  // kind tls: a named backend's host name, sent and checked when the pool's tls has no `sni`.
  std::string server_name;
};

// `tls` is used by kind tls only (see ProbeSpec::tls). `name`: a named backend's host name,
// which an http check without `host` sends as its Host ("NAME:PORT", the checked port), so
// that a virtual host behind the name answers as it does for the name (an IP backend sends
// "IP:PORT"), and a tls check sends and verifies as its server name where the pool's tls has
// no `sni`, as the traffic does.
ProbeSpec makeSpec(const config::HealthCheck& check, const net::SockAddr& backend,
                   const tls::ClientContext* tls = nullptr, std::string_view name = {});

struct Outcome {
  bool ok = false;
  std::string error;  // "connect: Connection refused", "timeout after 1s", ...
};

// One check in flight: a non-blocking socket driven by the checker's epoll loop through
// connect -> send -> read (kind tls: connect -> TLS handshake), all bounded by the check's
// timeout. Edge cases are outcomes, never exceptions: whatever the backend does, a started
// probe ends with exactly one Outcome (from start, onReady or onTimeout) and closes its socket.
class Probe {
public:
  // Starts a check. Returns the outcome if it is already decided (connect failed at once),
  // else nullopt: then fd() must be watched for events() until onReady/onTimeout decide.
  std::optional<Outcome> start(const ProbeSpec& spec, int64_t now_ms);
  // Called when fd() is ready; returns the outcome once decided.
  std::optional<Outcome> onReady(uint32_t events);
  // The deadline passed.
  Outcome onTimeout();

  bool busy() const { return fd_.valid(); }
  int fd() const { return fd_.get(); }
  // EPOLLOUT while connecting or sending, EPOLLIN while reading, whichever OpenSSL waits for
  // while handshaking.
  uint32_t events() const;
  int64_t deadline() const { return deadline_ms_; }

private:
  enum class Step { Connecting, Sending, Reading, Handshaking };

  std::optional<Outcome> afterConnect();
  std::optional<Outcome> handshake();
  std::optional<Outcome> sendMore();
  std::optional<Outcome> readMore();
  Outcome finish(bool ok, std::string error);

  const ProbeSpec* spec_ = nullptr;
  net::UniqueFd fd_;
  tls::UniqueSsl ssl_;  // kind tls, once connected; freed before fd_ is closed
  uint32_t tls_wants_ = 0;
  Step step_ = Step::Connecting;
  size_t sent_ = 0;
  std::string reply_;
  int64_t deadline_ms_ = 0;
};

}  // namespace weir::health
