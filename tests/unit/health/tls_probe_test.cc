#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>

#include "canned_server.h"
#include "health/checker.h"
#include "health/probe.h"
#include "support/temp_dir.h"
#include "support/test_certs.h"
#include "tls/tls_server.h"

namespace weir::health {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Runs one probe to its outcome as the checker does: wait on its fd for its events until its
// own deadline, then onTimeout.
Outcome run(Probe& probe, const ProbeSpec& spec) {
  std::optional<Outcome> outcome = probe.start(spec, monotonicMs());
  while (!outcome) {
    pollfd p{probe.fd(), static_cast<short>(probe.events()), 0};
    int64_t left = probe.deadline() - monotonicMs();
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) == 0) {
      if (monotonicMs() >= probe.deadline()) {
        outcome = probe.onTimeout();
      }
      continue;
    }
    outcome = probe.onReady(static_cast<uint32_t>(p.revents));
  }
  EXPECT_FALSE(probe.busy());  // the contract: decided means closed
  return *outcome;
}

net::SockAddr loopback(uint16_t port) {
  return *net::SockAddr::parse("127.0.0.1:" + std::to_string(port));
}

class TlsProbeTest : public ::testing::Test {
protected:
  TlsProbeTest() {
    tls::ignoreSigpipe();
    files_ = test::writePem(dir_, "app", ca_.issue({.dns_names = {"app.internal"}}));
    check_.kind = config::HealthKind::Tls;
    check_.timeout = 2s;
  }

  tls::TlsTestServer::Options serverOptions() const {
    tls::TlsTestServer::Options o;
    o.cert_file = files_.cert;
    o.key_file = files_.key;
    return o;
  }

  tls::ClientContext verifying(const test::TestCa& ca) {
    config::UpstreamTls tls;
    tls.ca = {test::writeBundle(dir_, "ca.crt", {ca.pem().cert}), ""};
    tls.sni = "app.internal";
    return tls::ClientContext::build(tls);
  }

  test::TempDir dir_{"weir-tls-probe"};
  test::TestCa ca_;
  test::PemFiles files_;
  config::HealthCheck check_;
};

TEST_F(TlsProbeTest, SpecCarriesThePoolContext) {
  tls::ClientContext ctx = verifying(ca_);
  EXPECT_EQ(makeSpec(check_, loopback(1), &ctx).tls, &ctx);
  check_.kind = config::HealthKind::Tcp;
  EXPECT_EQ(makeSpec(check_, loopback(1), &ctx).tls, nullptr);
}

TEST_F(TlsProbeTest, PassesWhenTheHandshakeCompletes) {
  tls::TlsTestServer server(serverOptions());
  tls::ClientContext ctx = verifying(ca_);
  ProbeSpec spec = makeSpec(check_, loopback(server.port()), &ctx);
  Probe probe;
  Outcome o = run(probe, spec);
  EXPECT_TRUE(o.ok) << o.error;
  EXPECT_EQ(o.error, "");
  auto seen = server.next();
  ASSERT_TRUE(seen.has_value());
  EXPECT_TRUE(seen->handshake_ok) << seen->error;
  EXPECT_EQ(seen->sni, "app.internal");

  // A probe is reusable: the next check is a fresh, full handshake.
  o = run(probe, spec);
  EXPECT_TRUE(o.ok) << o.error;
  seen = server.next();
  ASSERT_TRUE(seen.has_value());
  EXPECT_FALSE(seen->resumed);
}

TEST_F(TlsProbeTest, PassesWithoutVerificationForAPoolWithoutTls) {
  tls::TlsTestServer server(serverOptions());
  config::UpstreamTls insecure;  // what the checker builds for a pool without [tls]
  insecure.verify = false;
  tls::ClientContext ctx = tls::ClientContext::build(insecure);
  Probe probe;
  Outcome o = run(probe, makeSpec(check_, loopback(server.port()), &ctx));
  EXPECT_TRUE(o.ok) << o.error;
}

TEST_F(TlsProbeTest, FailsWithAnotherCa) {
  tls::TlsTestServer server(serverOptions());
  tls::ClientContext ctx = verifying(test::TestCa("unrelated CA"));
  Probe probe;
  Outcome o = run(probe, makeSpec(check_, loopback(server.port()), &ctx));
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.error, "tls: certificate verify failed (unable to get local issuer certificate)");
}

TEST_F(TlsProbeTest, FailsAgainstAPlainTcpServer) {
  CannedServer plain;
  uint16_t garbage = plain.listen("HTTP/1.0 400 Bad Request\r\n\r\n");
  uint16_t silent_close = plain.listen("");
  plain.start();
  tls::ClientContext ctx = verifying(ca_);

  Probe probe;
  Outcome o = run(probe, makeSpec(check_, loopback(garbage), &ctx));
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.error, "tls: wrong version number");

  o = run(probe, makeSpec(check_, loopback(silent_close), &ctx));
  EXPECT_FALSE(o.ok);
  EXPECT_THAT(o.error, StartsWith("tls: "));
  EXPECT_THAT(o.error, HasSubstr("eof"));
}

TEST_F(TlsProbeTest, TimesOutAgainstAServerThatNeverAnswers) {
  uint16_t port = 0;
  net::UniqueFd listener = silentListener(port);  // the kernel accepts; nobody speaks TLS
  tls::ClientContext ctx = verifying(ca_);
  check_.timeout = 200ms;
  ProbeSpec spec = makeSpec(check_, loopback(port), &ctx);
  Probe probe;
  const int64_t started = monotonicMs();
  Outcome o = run(probe, spec);
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.error, "timeout after 200ms during the TLS handshake");
  EXPECT_GE(monotonicMs() - started, 200);
}

TEST_F(TlsProbeTest, FailsWithoutAContext) {
  tls::TlsTestServer server(serverOptions());
  Probe probe;
  Outcome o = run(probe, makeSpec(check_, loopback(server.port()), nullptr));
  EXPECT_FALSE(o.ok);
  EXPECT_THAT(o.error, StartsWith("tls: no client context"));
}

}  // namespace
}  // namespace weir::health
