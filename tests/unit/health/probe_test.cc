#include <gtest/gtest.h>

#include "health/probe.h"

namespace weir::health {
namespace {

using namespace std::chrono_literals;

const net::SockAddr kBackend = *net::SockAddr::parse("10.0.0.1:8080");

TEST(ProbeSpec, TcpChecksTheTrafficPortByDefault) {
  config::HealthCheck check;
  check.timeout = 300ms;
  ProbeSpec spec = makeSpec(check, kBackend);
  EXPECT_EQ(spec.kind, config::HealthKind::Tcp);
  EXPECT_EQ(spec.address.toString(), "10.0.0.1:8080");
  EXPECT_EQ(spec.request, "");
  EXPECT_EQ(spec.timeout_ms, 300);
}

TEST(ProbeSpec, PortOverride) {
  config::HealthCheck check;
  check.port = 9000;
  EXPECT_EQ(makeSpec(check, kBackend).address.toString(), "10.0.0.1:9000");
}

TEST(ProbeSpec, SendExpect) {
  config::HealthCheck check;
  check.kind = config::HealthKind::SendExpect;
  check.send = "PING\r\n";
  check.expect = "+PONG";
  ProbeSpec spec = makeSpec(check, kBackend);
  EXPECT_EQ(spec.request, "PING\r\n");
  EXPECT_EQ(spec.expect, "+PONG");
}

TEST(ProbeSpec, HttpHostDefaultsToTheCheckedAddress) {
  config::HealthCheck check;
  check.kind = config::HealthKind::Http;
  check.path = "/healthz";
  check.port = 9000;
  check.status_min = 200;
  check.status_max = 299;
  ProbeSpec spec = makeSpec(check, kBackend);
  EXPECT_EQ(spec.request.substr(0, 49),
            "GET /healthz HTTP/1.0\r\nHost: 10.0.0.1:9000\r\nUser-");
  EXPECT_EQ(spec.status_min, 200);
  EXPECT_EQ(spec.status_max, 299);
  // A named backend's slot: the name, with the checked port.
  EXPECT_NE(makeSpec(check, kBackend, nullptr, "app.internal").request.find(
                "\r\nHost: app.internal:9000\r\n"),
            std::string::npos);
  check.host = "api.example.com";
  EXPECT_NE(makeSpec(check, kBackend).request.find("\r\nHost: api.example.com\r\n"),
            std::string::npos);
  EXPECT_NE(makeSpec(check, kBackend, nullptr, "app.internal").request.find(
                "\r\nHost: api.example.com\r\n"),
            std::string::npos);
}

TEST(Probe, ConnectRefusedIsDecidedAtOnceOrByTheFirstEvent) {
  // Port 1 on loopback: nobody listens (needs no setup, refused by the kernel).
  config::HealthCheck check;
  ProbeSpec spec = makeSpec(check, *net::SockAddr::parse("127.0.0.1:1"));
  Probe probe;
  auto outcome = probe.start(spec, 0);
  if (!outcome) {
    ASSERT_TRUE(probe.busy());
    outcome = probe.onReady(0);  // a refused loopback connect has already failed
  }
  ASSERT_TRUE(outcome.has_value());
  EXPECT_FALSE(outcome->ok);
  EXPECT_EQ(outcome->error, "connect: Connection refused");
  EXPECT_FALSE(probe.busy());
}

}  // namespace
}  // namespace weir::health
