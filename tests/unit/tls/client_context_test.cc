#include "tls/client_context.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
#include <stdexcept>

#include "net/socket.h"
#include "support/deadline.h"
#include "support/temp_dir.h"
#include "support/test_certs.h"
#include "tls/errors.h"
#include "tls/tls_server.h"

namespace weir::tls {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// What a client saw: the handshake, then the server's greeting.
struct Talk {
  bool ok = false;
  std::string error;     // failureText of the failing call, "timeout", ...
  std::string greeting;  // what it read before the server's close_notify
  std::string alpn;
  int version = 0;
  bool resumed = false;
};

// Waits until `fd` is ready for `events` or the deadline passes; false on timeout.
bool waitFd(int fd, short events, test::Deadline deadline) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, test::msLeft(deadline)) > 0;
}

// Connects to 127.0.0.1:port, then drives `make`'s SSL as the data path would: non-blocking,
// waiting on the socket for whatever OpenSSL asks. Reads until the server's close_notify.
template <typename Make>
Talk talkUsing(uint16_t port, Make&& make) {
  Talk t;
  const test::Deadline deadline = test::deadlineIn(5s);
  auto fd = net::connectNonBlocking(*net::SockAddr::parse("127.0.0.1:" + std::to_string(port)));
  if (!fd || !waitFd(fd->get(), POLLOUT, deadline) || net::socketError(fd->get()) != 0) {
    t.error = "connect failed";
    return t;
  }
  clearErrors();
  UniqueSsl ssl = make(fd->get());
  if (!ssl) {
    t.error = takeErrors("newSsl");
    return t;
  }
  auto drive = [&](auto&& call) -> bool {
    for (;;) {
      int r = call();
      if (r > 0) {
        return true;
      }
      int err = SSL_get_error(ssl.get(), r);
      short want = err == SSL_ERROR_WANT_READ ? POLLIN : err == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
      if (want == 0) {
        t.error = failureText(ssl.get(), err);
        return false;
      }
      if (!waitFd(fd->get(), want, deadline)) {
        t.error = "timeout";
        return false;
      }
    }
  };
  if (!drive([&] { return SSL_connect(ssl.get()); })) {
    return t;
  }
  const unsigned char* alpn = nullptr;
  unsigned alpn_len = 0;
  SSL_get0_alpn_selected(ssl.get(), &alpn, &alpn_len);
  if (alpn != nullptr) {
    t.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
  }
  t.version = SSL_version(ssl.get());
  t.resumed = SSL_session_reused(ssl.get()) == 1;
  // Reading also takes in TLS 1.3 session tickets, and the alert of a server that refused our
  // certificate after our side of the handshake was done.
  char buf[256];
  size_t n = 0;
  while (drive([&] { return SSL_read_ex(ssl.get(), buf, sizeof buf, &n); })) {
    t.greeting.append(buf, n);
  }
  t.ok = t.error == "tls: closed by the peer (close_notify)";
  if (t.ok) {
    (void)SSL_shutdown(ssl.get());  // our close_notify: keeps the session resumable
    clearErrors();
  }
  return t;
}

Talk talk(uint16_t port, const ClientContext& ctx) {
  return talkUsing(port, [&](int fd) { return ctx.newSsl(fd); });
}

config::FileRef file(std::string path, std::string where = "") {
  return config::FileRef{std::move(path), std::move(where)};
}

// A CA, a leaf for app.internal it issued, an unrelated CA, and their files.
class ClientContextTest : public ::testing::Test {
protected:
  ClientContextTest() {
    server_files_ =
        test::writePem(dir_, "app", ca_.issue({.common_name = "app", .dns_names = {kName}}));
    ca_file_ = test::writeBundle(dir_, "ca.crt", {ca_.pem().cert});
    other_ca_file_ = test::writeBundle(dir_, "other-ca.crt", {other_ca_.pem().cert});
  }

  TlsTestServer::Options serverOptions() const {
    TlsTestServer::Options o;
    o.cert_file = server_files_.cert;
    o.key_file = server_files_.key;
    return o;
  }

  config::UpstreamTls upstream() const {
    config::UpstreamTls tls;
    tls.ca = file(ca_file_);
    tls.sni = kName;
    return tls;
  }

  static constexpr const char* kName = "app.internal";
  test::TempDir dir_{"weir-tls"};
  test::TestCa ca_{"weir test CA"};
  test::TestCa other_ca_{"unrelated CA"};
  test::PemFiles server_files_;
  std::string ca_file_;
  std::string other_ca_file_;
};

TEST_F(ClientContextTest, VerifiesTheRightCaAndName) {
  TlsTestServer server(serverOptions());
  ClientContext ctx = ClientContext::build(upstream());
  Talk t = talk(server.port(), ctx);
  EXPECT_TRUE(t.ok) << t.error;
  EXPECT_EQ(t.greeting, "hello\n");
  EXPECT_EQ(t.version, TLS1_3_VERSION);
  auto seen = server.next();
  ASSERT_TRUE(seen.has_value());
  EXPECT_TRUE(seen->handshake_ok) << seen->error;
  EXPECT_EQ(seen->sni, kName);
  EXPECT_EQ(seen->alpn, "");  // none offered
}

TEST_F(ClientContextTest, RefusesACertificateFromAnotherCa) {
  TlsTestServer server(serverOptions());
  config::UpstreamTls tls = upstream();
  tls.ca = file(other_ca_file_);
  Talk t = talk(server.port(), ClientContext::build(tls));
  EXPECT_FALSE(t.ok);
  EXPECT_EQ(t.error, "tls: certificate verify failed (unable to get local issuer certificate)");
  auto seen = server.next();
  ASSERT_TRUE(seen.has_value());
  EXPECT_FALSE(seen->handshake_ok);
  EXPECT_THAT(seen->error, HasSubstr("unknown ca"));
}

TEST_F(ClientContextTest, RefusesACertificateForAnotherName) {
  TlsTestServer server(serverOptions());
  config::UpstreamTls tls = upstream();
  tls.sni = "db.internal";
  Talk t = talk(server.port(), ClientContext::build(tls));
  EXPECT_FALSE(t.ok);
  EXPECT_EQ(t.error, "tls: certificate verify failed (hostname mismatch)");
  auto seen = server.next();
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->sni, "db.internal");  // sent even though it will not match
}

TEST_F(ClientContextTest, RefusesAnExpiredCertificate) {
  test::PemFiles expired = test::writePem(
      dir_, "expired",
      ca_.issue({.dns_names = {kName}, .not_before = -48h, .not_after = -1h}));
  TlsTestServer::Options o = serverOptions();
  o.cert_file = expired.cert;
  o.key_file = expired.key;
  TlsTestServer server(o);
  Talk t = talk(server.port(), ClientContext::build(upstream()));
  EXPECT_EQ(t.error, "tls: certificate verify failed (certificate has expired)");
}

TEST_F(ClientContextTest, AnAddressIsVerifiedButNeverSentAsTheServerName) {
  test::PemFiles by_ip = test::writePem(
      dir_, "ip", ca_.issue({.dns_names = {kName}, .ip_addresses = {"127.0.0.1"}}));
  TlsTestServer::Options o = serverOptions();
  o.cert_file = by_ip.cert;
  o.key_file = by_ip.key;
  TlsTestServer server(o);
  config::UpstreamTls tls = upstream();
  tls.sni = "127.0.0.1";
  Talk t = talk(server.port(), ClientContext::build(tls));
  EXPECT_TRUE(t.ok) << t.error;
  auto seen = server.next();
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->sni, "");  // RFC 6066: no address in server_name

  tls.sni = "127.0.0.2";
  t = talk(server.port(), ClientContext::build(tls));
  EXPECT_EQ(t.error, "tls: certificate verify failed (IP address mismatch)");
}

TEST_F(ClientContextTest, VerifyOffAcceptsAnyCertificate) {
  TlsTestServer server(serverOptions());
  config::UpstreamTls tls = upstream();
  tls.verify = false;
  tls.ca = file(other_ca_file_);  // would fail the chain
  tls.sni = "db.internal";        // would fail the name
  Talk t = talk(server.port(), ClientContext::build(tls));
  EXPECT_TRUE(t.ok) << t.error;
  EXPECT_EQ(t.greeting, "hello\n");
}

TEST_F(ClientContextTest, AcceptsAnRsaLeafWithItsIntermediateOverTls12) {
  test::TestCa intermediate = ca_.intermediate({.common_name = "weir intermediate"});
  test::Pem leaf = intermediate.issue({.dns_names = {kName}, .key_type = test::KeyType::Rsa2048});
  leaf.cert += intermediate.chain();
  test::PemFiles files = test::writePem(dir_, "rsa", leaf);
  TlsTestServer::Options o = serverOptions();
  o.cert_file = files.cert;
  o.key_file = files.key;
  o.max_version = TLS1_2_VERSION;
  TlsTestServer server(o);
  Talk t = talk(server.port(), ClientContext::build(upstream()));
  EXPECT_TRUE(t.ok) << t.error;
  EXPECT_EQ(t.version, TLS1_2_VERSION);
}

TEST_F(ClientContextTest, MinimumTls13RefusesATls12OnlyServer) {
  TlsTestServer::Options o = serverOptions();
  o.max_version = TLS1_2_VERSION;
  TlsTestServer server(o);
  config::UpstreamTls tls = upstream();
  tls.min_version = config::TlsVersion::V1_3;
  Talk t = talk(server.port(), ClientContext::build(tls));
  EXPECT_FALSE(t.ok);
  EXPECT_EQ(t.error, "tls: tlsv1 alert protocol version");
  auto seen = server.next();
  ASSERT_TRUE(seen.has_value());
  EXPECT_THAT(seen->error, HasSubstr("unsupported protocol"));
}

TEST_F(ClientContextTest, PresentsItsCertificateWhenTheServerRequiresOne) {
  test::PemFiles client = test::writePem(dir_, "client", ca_.issue({.common_name = "weir lb"}));
  TlsTestServer::Options o = serverOptions();
  o.client_ca_file = ca_file_;
  TlsTestServer server(o);

  config::UpstreamTls tls = upstream();
  tls.client_certificate = config::CertKey{file(client.cert), file(client.key)};
  Talk t = talk(server.port(), ClientContext::build(tls));
  EXPECT_TRUE(t.ok) << t.error;
  auto seen = server.next();
  ASSERT_TRUE(seen.has_value());
  EXPECT_TRUE(seen->handshake_ok) << seen->error;
  EXPECT_EQ(seen->client_cn, "weir lb");

  // Without one, the server refuses (in TLS 1.3 after our side of the handshake is done).
  Talk without = talk(server.port(), ClientContext::build(upstream()));
  EXPECT_FALSE(without.ok);
  EXPECT_EQ(without.error, "tls: tlsv13 alert certificate required");
  seen = server.next();
  ASSERT_TRUE(seen.has_value());
  EXPECT_FALSE(seen->handshake_ok);
}

TEST_F(ClientContextTest, NegotiatesAlpn) {
  TlsTestServer::Options o = serverOptions();
  o.alpn = {"http/1.1", "h2"};
  TlsTestServer server(o);
  config::UpstreamTls tls = upstream();
  tls.alpn = {"h2", "http/1.1"};  // the server's preference wins
  Talk t = talk(server.port(), ClientContext::build(tls));
  EXPECT_TRUE(t.ok) << t.error;
  EXPECT_EQ(t.alpn, "http/1.1");
  auto seen = server.next();
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->alpn, "http/1.1");
}

TEST_F(ClientContextTest, ResumesTheLastSessionOfTheSameBackend) {
  TlsTestServer server(serverOptions());
  ClientContext ctx = ClientContext::build(upstream());
  auto resumable = [&](size_t backend) {
    return [&ctx, backend](int fd) { return ctx.newResumableSsl(fd, backend); };
  };
  Talk first = talkUsing(server.port(), resumable(0));
  ASSERT_TRUE(first.ok) << first.error;
  EXPECT_FALSE(first.resumed);
  EXPECT_EQ(ctx.cachedSessions(), 1u);

  Talk again = talkUsing(server.port(), resumable(0));
  EXPECT_TRUE(again.ok) << again.error;
  EXPECT_TRUE(again.resumed);
  Talk other = talkUsing(server.port(), resumable(1));  // nothing cached for backend 1
  EXPECT_TRUE(other.ok) << other.error;
  EXPECT_FALSE(other.resumed);
  Talk plain = talk(server.port(), ctx);  // newSsl never resumes
  EXPECT_TRUE(plain.ok) << plain.error;
  EXPECT_FALSE(plain.resumed);
  EXPECT_EQ(ctx.cachedSessions(), 2u);
}

TEST_F(ClientContextTest, IsMovable) {
  TlsTestServer server(serverOptions());
  ClientContext built = ClientContext::build(upstream());
  ClientContext moved = std::move(built);
  ClientContext assigned = ClientContext::build(config::UpstreamTls{});
  assigned = std::move(moved);
  size_t backend = 3;
  Talk t = talkUsing(server.port(), [&](int fd) { return assigned.newResumableSsl(fd, backend); });
  EXPECT_TRUE(t.ok) << t.error;
  EXPECT_EQ(assigned.cachedSessions(), 1u);  // the callback found the moved cache
}

std::string buildError(const config::UpstreamTls& tls) {
  try {
    (void)ClientContext::build(tls);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "built";
}

TEST_F(ClientContextTest, BuildNamesTheFileAndWhereTheConfigSetIt) {
  config::UpstreamTls tls = upstream();
  tls.ca = file(dir_.file("missing.crt"), "weir.toml:7:6: pools.app.tls.ca");
  EXPECT_THAT(buildError(tls),
              StartsWith("weir.toml:7:6: pools.app.tls.ca: cannot load CA file " +
                         dir_.file("missing.crt") + ": No such file or directory"));

  tls = upstream();
  tls.ca = file(dir_.write("garbage.crt", "not a certificate\n"), "w:1:1: pools.app.tls.ca");
  EXPECT_THAT(buildError(tls), StartsWith("w:1:1: pools.app.tls.ca: cannot load CA file "));

  test::PemFiles a = test::writePem(dir_, "a", ca_.issue({.common_name = "a"}));
  test::PemFiles b = test::writePem(dir_, "b", ca_.issue({.common_name = "b"}));
  tls = upstream();
  tls.client_certificate = config::CertKey{file(a.cert, "w:2:1: cert"), file(b.key, "w:3:1: key")};
  EXPECT_THAT(buildError(tls), StartsWith("w:3:1: key: cannot load client key " + b.key + ": "));
  EXPECT_THAT(buildError(tls), HasSubstr("key values mismatch"));

  tls.client_certificate = config::CertKey{file(dir_.file("nope.crt"), "w:2:1: cert"),
                                           file(a.key, "w:3:1: key")};
  EXPECT_THAT(buildError(tls), StartsWith("w:2:1: cert: cannot load client certificate "));
}

TEST_F(ClientContextTest, BuildRefusesBadCipherListsAndAlpn) {
  config::UpstreamTls tls = upstream();
  tls.ciphers = "NO-SUCH-CIPHER";
  EXPECT_EQ(buildError(tls), "invalid ciphers \"NO-SUCH-CIPHER\": no cipher match");
  tls = upstream();
  tls.alpn = {""};
  EXPECT_THAT(buildError(tls), StartsWith("invalid ALPN protocol"));
  EXPECT_EQ(buildError(upstream()), "built");
}

TEST_F(ClientContextTest, EmptyCaMeansTheSystemStore) {
  // The test CA is in no system store: the chain check fails, which shows it ran.
  TlsTestServer server(serverOptions());
  config::UpstreamTls tls = upstream();
  tls.ca = {};
  Talk t = talk(server.port(), ClientContext::build(tls));
  EXPECT_THAT(t.error, StartsWith("tls: certificate verify failed"));
}

}  // namespace
}  // namespace weir::tls
