// checkCertificates: what `weir -t` and a reload report about the certificate, key and CA
// files a config names. Every file is made here, in a temporary directory.
#include "tls/cert_check.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/temp_dir.h"
#include "support/cert_builder.h"

namespace weir::tls {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using test::CertSpec;
using test::TempDir;
using test::TestCert;
using test::TestKey;

constexpr time_t kNow = 1767225600;  // 2026-01-01 00:00:00 UTC: every date below is exact
constexpr int64_t kDay = 86400;

constexpr const char* kCertWhere = "weir.toml:12:27: listeners.secure.tls.certificates[0].cert";
constexpr const char* kKeyWhere = "weir.toml:12:52: listeners.secure.tls.certificates[0].key";

CertSpec leafSpec(int64_t valid_from = -3600, int64_t valid_until = 90 * kDay) {
  CertSpec spec;
  spec.common_name = "a.example.com";
  spec.dns_names = {"a.example.com", "*.Example.com"};
  spec.now = kNow;
  spec.valid_from = valid_from;
  spec.valid_until = valid_until;
  return spec;
}

// A CA, a leaf it signed (EC P-256 keys) and the files of both, in a temporary directory.
class CertCheckTest : public ::testing::Test {
protected:
  CertCheckTest()
      : ca_key_(TestKey::ecP256()),
        ca_(TestCert::make(caSpec(), ca_key_)),
        leaf_key_(TestKey::ecP256()),
        leaf_(TestCert::make(leafSpec(), leaf_key_, &ca_, &ca_key_)) {}

  static CertSpec caSpec() {
    CertSpec spec;
    spec.common_name = "weir test CA";
    spec.ca = true;
    spec.now = kNow;
    spec.valid_until = 3650 * kDay;
    return spec;
  }

  // One terminating listener whose only certificate is `cert` with `key`.
  config::Config listenerWith(const std::string& cert, const std::string& key) const {
    config::Config cfg;
    config::Listener listener;
    listener.name = "secure";
    listener.mode = config::ListenerMode::TlsTerminate;
    listener.tls.emplace();
    listener.tls->certificates.push_back({{cert, kCertWhere}, {key, kKeyWhere}});
    cfg.listeners.push_back(listener);
    return cfg;
  }

  // A leaf, chain and key written to files; returns the report at `now`.
  CertReport check(const TestCert& leaf, const TestKey& key, time_t now = kNow) {
    const std::string cert_path = dir_.write("leaf.pem", leaf.pem() + ca_.pem());
    const std::string key_path = dir_.write("leaf.key", key.pem());
    return checkCertificates(listenerWith(cert_path, key_path), now);
  }

  std::string errorAt(const char* where, const std::string& path, const std::string& what) {
    return std::string(where) + ": " + path + ": " + what;
  }

  TempDir dir_{"weir-certs"};
  TestKey ca_key_;
  TestCert ca_;
  TestKey leaf_key_;
  TestCert leaf_;
};

TEST_F(CertCheckTest, GoodEcChainPassesAndNamesItsHosts) {
  CertReport r = check(leaf_, leaf_key_);
  EXPECT_TRUE(r.ok());
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_THAT(r.warnings, IsEmpty());
  EXPECT_THAT(r.info, ElementsAre(errorAt(kCertWhere, dir_.file("leaf.pem"),
                                          "serves a.example.com, *.example.com; valid until "
                                          "2026-04-01 00:00:00 UTC")));
}

TEST_F(CertCheckTest, GoodRsaPairPasses) {
  TestKey key = TestKey::rsa2048();
  TestCert leaf = TestCert::make(leafSpec(), key, &ca_, &ca_key_);
  CertReport r = check(leaf, key);
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_THAT(r.warnings, IsEmpty());
  ASSERT_EQ(r.info.size(), 1u);
}

TEST_F(CertCheckTest, MissingFilesAreNamedWithTheirKeys) {
  const std::string cert = dir_.file("nope.pem");
  const std::string key = dir_.file("nope.key");
  CertReport r = checkCertificates(listenerWith(cert, key), kNow);
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(r.errors,
              ElementsAre(errorAt(kCertWhere, cert, "cannot read: No such file or directory"),
                          errorAt(kKeyWhere, key, "cannot read: No such file or directory")));
  EXPECT_THAT(r.info, IsEmpty());
}

TEST_F(CertCheckTest, MissingKeyAloneIsAnError) {
  const std::string cert = dir_.write("leaf.pem", leaf_.pem());
  const std::string key = dir_.file("missing.key");
  CertReport r = checkCertificates(listenerWith(cert, key), kNow);
  EXPECT_THAT(r.errors,
              ElementsAre(errorAt(kKeyWhere, key, "cannot read: No such file or directory")));
}

TEST_F(CertCheckTest, UnreadableFileIsAnError) {
  // A directory: fopen() succeeds, read() fails, also for root (which chmod 000 would not stop).
  const std::string key = dir_.path();
  const std::string cert = dir_.write("leaf.pem", leaf_.pem());
  CertReport r = checkCertificates(listenerWith(cert, key), kNow);
  EXPECT_THAT(r.errors, ElementsAre(errorAt(kKeyWhere, key, "cannot read: Is a directory")));
}

TEST_F(CertCheckTest, MismatchedKeyIsAnErrorAtTheKey) {
  TestKey other = TestKey::ecP256();
  CertReport r = check(leaf_, other);
  EXPECT_THAT(r.errors,
              ElementsAre(errorAt(kKeyWhere, dir_.file("leaf.key"),
                                  "does not match the certificate " + dir_.file("leaf.pem") +
                                      " (the key must belong to the first certificate in the "
                                      "file)")));
}

TEST_F(CertCheckTest, RsaKeyForAnEcCertificateIsAMismatch) {
  CertReport r = check(leaf_, TestKey::rsa2048());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0], HasSubstr(": does not match the certificate "));
}

TEST_F(CertCheckTest, ChainWithTheCaFirstIsAMismatch) {
  const std::string cert = dir_.write("wrong-order.pem", ca_.pem() + leaf_.pem());
  const std::string key = dir_.write("leaf.key", leaf_key_.pem());
  CertReport r = checkCertificates(listenerWith(cert, key), kNow);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0], HasSubstr("leaf.key: does not match the certificate "));
}

TEST_F(CertCheckTest, KeyAndCertificateInOneFile) {
  const std::string both = dir_.write("both.pem", leaf_key_.pem() + leaf_.pem() + ca_.pem());
  CertReport r = checkCertificates(listenerWith(both, both), kNow);
  EXPECT_THAT(r.errors, IsEmpty());
}

TEST_F(CertCheckTest, ExpiredLeafIsAnError) {
  TestCert expired = TestCert::make(leafSpec(-30 * kDay, -kDay), leaf_key_, &ca_, &ca_key_);
  CertReport r = check(expired, leaf_key_);
  EXPECT_THAT(r.errors, ElementsAre(errorAt(kCertWhere, dir_.file("leaf.pem"),
                                            "expired on 2025-12-31 00:00:00 UTC")));
  EXPECT_THAT(r.warnings, IsEmpty());
}

TEST_F(CertCheckTest, ExpiredByTheClockOfTheCheck) {
  // The same certificate is fine today and expired 91 days later: `now` is what counts.
  EXPECT_TRUE(check(leaf_, leaf_key_, kNow).ok());
  CertReport r = check(leaf_, leaf_key_, kNow + 91 * kDay);
  EXPECT_THAT(r.errors, ElementsAre(errorAt(kCertWhere, dir_.file("leaf.pem"),
                                            "expired on 2026-04-01 00:00:00 UTC")));
}

TEST_F(CertCheckTest, ExpiredLeafFromTheRealClock) {
  CertSpec spec = leafSpec(-30 * kDay, -kDay);
  spec.now = 0;  // relative to the clock, checked at the clock
  TestCert expired = TestCert::make(spec, leaf_key_, &ca_, &ca_key_);
  CertReport r = check(expired, leaf_key_, std::time(nullptr));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0],
              MatchesRegex(".*leaf\\.pem: expired on [0-9]{4}-[0-9]{2}-[0-9]{2} "
                           "[0-9]{2}:[0-9]{2}:[0-9]{2} UTC"));
}

TEST_F(CertCheckTest, NotYetValidLeafIsAnError) {
  TestCert early = TestCert::make(leafSpec(2 * kDay, 90 * kDay), leaf_key_, &ca_, &ca_key_);
  CertReport r = check(early, leaf_key_);
  EXPECT_THAT(r.errors, ElementsAre(errorAt(kCertWhere, dir_.file("leaf.pem"),
                                            "not valid before 2026-01-03 00:00:00 UTC")));
}

TEST_F(CertCheckTest, ExpiringLeafWarns) {
  TestCert soon = TestCert::make(leafSpec(-kDay, 5 * kDay + 3600), leaf_key_, &ca_, &ca_key_);
  CertReport r = check(soon, leaf_key_);
  EXPECT_TRUE(r.ok());
  EXPECT_THAT(r.warnings, ElementsAre(errorAt(kCertWhere, dir_.file("leaf.pem"),
                                              "expires in 5 days, on 2026-01-06 01:00:00 UTC")));
}

TEST_F(CertCheckTest, ExpiryWarningBoundaries) {
  // 14 days left: no warning; 13 days and 23 hours: a warning; under a day: "less than a day".
  EXPECT_THAT(check(TestCert::make(leafSpec(-kDay, 14 * kDay), leaf_key_, &ca_, &ca_key_),
                    leaf_key_)
                  .warnings,
              IsEmpty());
  EXPECT_THAT(check(TestCert::make(leafSpec(-kDay, 14 * kDay - 3600), leaf_key_, &ca_, &ca_key_),
                    leaf_key_)
                  .warnings,
              ElementsAre(HasSubstr(": expires in 13 days, on 2026-01-14 23:00:00 UTC")));
  EXPECT_THAT(check(TestCert::make(leafSpec(-kDay, kDay + 60), leaf_key_, &ca_, &ca_key_),
                    leaf_key_)
                  .warnings,
              ElementsAre(HasSubstr(": expires in 1 day, on ")));
  EXPECT_THAT(check(TestCert::make(leafSpec(-kDay, 60), leaf_key_, &ca_, &ca_key_), leaf_key_)
                  .warnings,
              ElementsAre(HasSubstr(": expires in less than a day, on 2026-01-01 00:01:00 UTC")));
}

TEST_F(CertCheckTest, GarbageFiles) {
  const std::string cert = dir_.write("garbage.pem", "not a certificate\n");
  const std::string key = dir_.write("cert-as-key.pem", leaf_.pem());
  CertReport r = checkCertificates(listenerWith(cert, key), kNow);
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0],
            errorAt(kCertWhere, cert,
                    "holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")"));
  EXPECT_THAT(r.errors[1],
              ::testing::StartsWith(errorAt(kKeyWhere, key, "not a PEM private key")));
}

TEST_F(CertCheckTest, CorruptPemIsAnError) {
  std::string pem = leaf_.pem();
  pem[pem.size() / 2] = '!';  // not base64
  const std::string cert = dir_.write("corrupt.pem", pem);
  const std::string key = dir_.write("leaf.key", leaf_key_.pem());
  CertReport r = checkCertificates(listenerWith(cert, key), kNow);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0],
              ::testing::StartsWith(errorAt(kCertWhere, cert, "not a PEM certificate")));
}

TEST_F(CertCheckTest, EncryptedKeyIsAnError) {
  const std::string cert = dir_.write("leaf.pem", leaf_.pem());
  const std::string key = dir_.write("leaf.key", leaf_key_.pem("secret"));
  CertReport r = checkCertificates(listenerWith(cert, key), kNow);
  EXPECT_THAT(r.errors,
              ElementsAre(errorAt(kKeyWhere, key,
                                  "the key is encrypted, and weir cannot ask for a passphrase; "
                                  "store it decrypted (openssl pkey -in KEY -out PLAIN) and "
                                  "readable only by root")));
}

TEST_F(CertCheckTest, CertificateWithoutNamesWarns) {
  CertSpec spec = leafSpec();
  spec.common_name = "";
  spec.dns_names = {};
  TestCert nameless = TestCert::make(spec, leaf_key_, &ca_, &ca_key_);
  CertReport r = check(nameless, leaf_key_);
  EXPECT_TRUE(r.ok());
  EXPECT_THAT(r.warnings,
              ElementsAre(errorAt(kCertWhere, dir_.file("leaf.pem"),
                                  "names no host (no subjectAltName DNS entry, no common name): "
                                  "clients that check the name will refuse it")));
}

TEST_F(CertCheckTest, UpstreamCaAndClientCertificate) {
  config::Config cfg;
  config::Pool pool;
  pool.name = "app";
  pool.tls.emplace();
  pool.tls->ca = {dir_.write("ca.pem", ca_.pem()), "weir.toml:30:6: pools.app.tls.ca"};
  pool.tls->client_certificate = config::CertKey{
      {dir_.write("client.pem", leaf_.pem()),
       "weir.toml:31:30: pools.app.tls.client_certificate.cert"},
      {dir_.write("client.key", leaf_key_.pem()),
       "weir.toml:31:50: pools.app.tls.client_certificate.key"}};
  cfg.pools.push_back(pool);
  CertReport r = checkCertificates(cfg, kNow);
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_THAT(r.info,
              ElementsAre("weir.toml:30:6: pools.app.tls.ca: " + dir_.file("ca.pem") +
                              ": trusts 1 CA certificate",
                          "weir.toml:31:30: pools.app.tls.client_certificate.cert: " +
                              dir_.file("client.pem") +
                              ": names a.example.com, *.example.com; valid until 2026-04-01 "
                              "00:00:00 UTC"));

  cfg.pools[0].tls->ca.path = dir_.write("empty-ca.pem", "");
  cfg.pools[0].tls->client_certificate->key.path = dir_.file("gone.key");
  r = checkCertificates(cfg, kNow);
  EXPECT_THAT(r.errors,
              ElementsAre("weir.toml:30:6: pools.app.tls.ca: " + dir_.file("empty-ca.pem") +
                              ": holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")",
                          "weir.toml:31:50: pools.app.tls.client_certificate.key: " +
                              dir_.file("gone.key") + ": cannot read: No such file or directory"));
}

TEST_F(CertCheckTest, CaBundleCountsItsCertificates) {
  config::Config cfg;
  config::Pool pool;
  pool.name = "app";
  pool.tls.emplace();
  pool.tls->ca = {dir_.write("bundle.pem", ca_.pem() + leaf_.pem() + ca_.pem()),
                  "w: pools.app.tls.ca"};
  cfg.pools.push_back(pool);
  CertReport r = checkCertificates(cfg, kNow);
  EXPECT_THAT(r.info, ElementsAre("w: pools.app.tls.ca: " + dir_.file("bundle.pem") +
                                  ": trusts 3 CA certificates"));
}

TEST_F(CertCheckTest, PoolsWithoutFilesAndTcpListenersAreNotChecked) {
  config::Config cfg = listenerWith(dir_.file("x.pem"), dir_.file("x.key"));
  cfg.listeners[0].tls.reset();
  config::Pool pool;
  pool.name = "app";
  pool.tls.emplace();  // verify with the system store, no client certificate
  cfg.pools.push_back(pool);
  CertReport r = checkCertificates(cfg, kNow);
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_THAT(r.info, IsEmpty());
}

TEST_F(CertCheckTest, ParsedConfigWithRelativePaths) {
  dir_.write("site.pem", leaf_.pem() + ca_.pem());
  dir_.write("site.key", leaf_key_.pem());
  const std::string path = dir_.write("weir.toml", R"([listeners.secure]
bind = "127.0.0.1:8443"
mode = "tls-terminate"
pool = "app"
[listeners.secure.tls]
certificates = [{ cert = "site.pem", key = "site.key" }]
[pools.app]
backends = [{ address = "127.0.0.1:9000" }]
)");
  // The test runs elsewhere than dir_: the files are found next to the config or not at all.
  config::Config cfg = config::load(path);
  CertReport r = checkCertificates(cfg, kNow);
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_THAT(r.info, ElementsAre(path + ":6:26: listeners.secure.tls.certificates[0].cert: " +
                                  dir_.file("site.pem") +
                                  ": serves a.example.com, *.example.com; valid until "
                                  "2026-04-01 00:00:00 UTC"));
}

TEST(CertificateNames, SanDnsNamesLowerCasedInOrder) {
  TestKey key = TestKey::ecP256();
  CertSpec spec;
  spec.common_name = "ignored.example.com";
  spec.dns_names = {"API.Example.com", "*.example.org", "b.example.com"};
  TestCert cert = TestCert::make(spec, key);
  EXPECT_THAT(certificateNames(cert.get()),
              ElementsAre("api.example.com", "*.example.org", "b.example.com"));
}

TEST(CertificateNames, CommonNameWhenThereIsNoSan) {
  TestKey key = TestKey::rsa2048();
  CertSpec spec;
  spec.common_name = "Legacy.Example.com";
  TestCert cert = TestCert::make(spec, key);
  EXPECT_THAT(certificateNames(cert.get()), ElementsAre("legacy.example.com"));
}

TEST(CertificateNames, NoneWithoutSanOrCommonName) {
  TestKey key = TestKey::ecP256();
  CertSpec spec;
  spec.common_name = "";
  TestCert cert = TestCert::make(spec, key);
  EXPECT_THAT(certificateNames(cert.get()), IsEmpty());
}

}  // namespace
}  // namespace weir::tls
