// `weir -t` validates a config without binding anything; bad configs fail fast with
// FILE:LINE:COL: key: message.
#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <sstream>
#include <string>

#include "support/net_io.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/cert_builder.h"
#include "weir_process.h"

namespace weir::test {
namespace {

// A complete, valid config on `port`. Line numbers matter to the tests below.
std::string goodConfig(uint16_t port, uint16_t backend_port) {
  return "[global]\n"                                                          // 1
         "workers = 2\n"                                                       // 2
         "log_level = \"info\"\n"                                              // 3
         "error_log = \"stderr\"\n"                                            // 4
         "access_log = \"off\"\n"                                              // 5
         "\n"                                                                  // 6
         "[listeners.front]\n"                                                 // 7
         "bind = [\"127.0.0.1:" + std::to_string(port) + "\"]\n"               // 8
         "pool = \"web\"\n"                                                    // 9
         "backlog = 128\n"                                                     // 10
         "\n"                                                                  // 11
         "[pools.web]\n"                                                       // 12
         "balance = \"round-robin\"\n"                                         // 13
         "connect_timeout = \"2s\"\n"                                          // 14
         "retries = 1\n"                                                       // 15
         "backends = [ { address = \"127.0.0.1:" + std::to_string(backend_port) +
         "\", weight = 1 } ]\n";                                               // 16
}

// Replaces line `line` (1-based) of `text`.
std::string replaceLine(const std::string& text, int line, const std::string& with) {
  std::istringstream in(text);
  std::string out;
  std::string l;
  for (int n = 1; std::getline(in, l); ++n) {
    out += (n == line ? with : l) + "\n";
  }
  return out;
}

// Asserts that `err` has a line "...bad.toml:LINE:COL: KEY..." with COL one of `cols`.
::testing::AssertionResult hasLocatedError(const std::string& err, int line,
                                           std::initializer_list<int> cols,
                                           const std::string& key) {
  const std::regex re("bad\\.toml:" + std::to_string(line) + ":([0-9]+):");
  std::smatch m;
  if (!std::regex_search(err, m, re)) {
    return ::testing::AssertionFailure()
           << "stderr lacks \"bad.toml:" << line << ":COL:\"; stderr was:\n" << err;
  }
  const int col = std::stoi(m[1]);
  if (std::find(cols.begin(), cols.end(), col) == cols.end()) {
    return ::testing::AssertionFailure() << "column " << col << " points at neither the key nor "
                                         << "its value; stderr was:\n" << err;
  }
  if (err.find(key) == std::string::npos) {
    return ::testing::AssertionFailure() << "stderr does not name the key " << key
                                         << "; stderr was:\n" << err;
  }
  return ::testing::AssertionSuccess();
}

TEST(ConfigCheck, GoodConfigPassesWithoutBinding) {
  TempDir dir("weir-cfg");
  const uint16_t port = pickFreePort();
  const std::string path = dir.write("good.toml", goodConfig(port, pickFreePort()));
  const RunResult r = run(kWeirBin, {"-t", "-c", path}, seconds(10));
  EXPECT_EQ(r.exitCode(), 0) << describeStatus(r.status) << "\nstderr:\n" << r.err;
  EXPECT_TRUE(portIsFree("127.0.0.1", port)) << "port " << port << " is taken after weir -t";
}

TEST(ConfigCheck, GoodConfigPassesWhileItsPortIsTaken) {
  // If `weir -t` bound the listener it would collide with ours (no SO_REUSEPORT here).
  TempDir dir("weir-cfg");
  const auto addr = SockAddr::from("127.0.0.1", 0);
  Fd mine(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(mine);
  ASSERT_EQ(bind(mine.get(), addr->get(), addr->len), 0);
  ASSERT_EQ(listen(mine.get(), 1), 0);
  const uint16_t port = SockAddr::local(mine.get())->port();
  const std::string path = dir.write("good.toml", goodConfig(port, pickFreePort()));
  const RunResult r = run(kWeirBin, {"-t", "-c", path}, seconds(10));
  EXPECT_EQ(r.exitCode(), 0) << "weir -t tried to use the listen port? "
                             << describeStatus(r.status) << "\nstderr:\n" << r.err;
}

TEST(ConfigCheck, TypoedKeyIsReportedWithLocation) {
  TempDir dir("weir-cfg");
  const uint16_t port = pickFreePort();
  // Line 15 "retries = 1" becomes "retires = 1": key at column 1, value at column 11.
  const std::string path =
      dir.write("bad.toml", replaceLine(goodConfig(port, pickFreePort()), 15, "retires = 1"));
  const RunResult r = run(kWeirBin, {"-t", "-c", path}, seconds(10));
  EXPECT_NE(r.exitCode(), 0) << describeStatus(r.status);
  EXPECT_FALSE(r.timed_out);
  EXPECT_TRUE(hasLocatedError(r.err, 15, {1, 11}, "pools.web.retires"));
  EXPECT_TRUE(portIsFree("127.0.0.1", port));
}

TEST(ConfigCheck, UnknownPoolIsReportedWithLocation) {
  TempDir dir("weir-cfg");
  const uint16_t port = pickFreePort();
  // Line 9 "pool = "web"" becomes a pool that does not exist: key column 1, value column 8.
  const std::string path = dir.write(
      "bad.toml", replaceLine(goodConfig(port, pickFreePort()), 9, "pool = \"nosuchpool\""));
  const RunResult r = run(kWeirBin, {"-t", "-c", path}, seconds(10));
  EXPECT_NE(r.exitCode(), 0) << describeStatus(r.status);
  EXPECT_TRUE(hasLocatedError(r.err, 9, {1, 8}, "listeners.front.pool"));
}

TEST(ConfigCheck, MissingWorkingDirectoryIsReportedWithLocation) {
  TempDir dir("weir-cfg");
  // Line 5 "access_log = ..." becomes a working_directory that is not there: key column 1,
  // value column 21.
  const std::string missing = dir.file("no-such-dir");
  const std::string path = dir.write(
      "bad.toml", replaceLine(goodConfig(pickFreePort(), pickFreePort()), 5,
                              "working_directory = \"" + missing + "\""));
  const RunResult r = run(kWeirBin, {"-t", "-c", path}, seconds(10));
  EXPECT_NE(r.exitCode(), 0) << describeStatus(r.status);
  EXPECT_TRUE(hasLocatedError(r.err, 5, {1, 21}, "global.working_directory"));
  EXPECT_NE(r.err.find(missing + "\": No such file or directory"), std::string::npos) << r.err;
}

TEST(ConfigCheck, RunningWithBadConfigFailsFast) {
  TempDir dir("weir-cfg");
  const uint16_t port = pickFreePort();
  const std::string path =
      dir.write("bad.toml", replaceLine(goodConfig(port, pickFreePort()), 15, "retires = 1"));
  const auto t0 = Clock::now();
  const RunResult r = run(kWeirBin, {"-c", path}, seconds(10));
  const auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
  EXPECT_FALSE(r.timed_out) << "weir -c bad.toml was still running after 10 s";
  EXPECT_NE(r.exitCode(), 0) << describeStatus(r.status);
  EXPECT_LT(ms, 5000) << "weir took " << ms << " ms to reject the config";
  EXPECT_TRUE(hasLocatedError(r.err, 15, {1, 11}, "pools.web.retires"));
  EXPECT_TRUE(portIsFree("127.0.0.1", port)) << "weir left its listen port bound";
}

// A tls-terminate listener on `port` whose certificate and key are `cert` and `key` (paths as
// written in the file); line 7 holds them.
std::string tlsConfig(uint16_t port, uint16_t backend_port, const std::string& cert,
                      const std::string& key) {
  return "[listeners.secure]\n"                                                // 1
         "bind = \"127.0.0.1:" + std::to_string(port) + "\"\n"                 // 2
         "mode = \"tls-terminate\"\n"                                          // 3
         "pool = \"web\"\n"                                                    // 4
         "[listeners.secure.tls]\n"                                           // 5
         "alpn = [\"http/1.1\"]\n"                                             // 6
         "certificates = [{ cert = \"" + cert + "\", key = \"" + key + "\" }]\n"  // 7
         "[pools.web]\n"                                                       // 8
         "backends = [ { address = \"127.0.0.1:" + std::to_string(backend_port) +
         "\" } ]\n";                                                          // 9
}

// Writes a self-signed certificate for "localhost" valid for `days` more days (plus an hour)
// and its key as DIR/site.pem and DIR/site.key.
void writeCertificate(const TempDir& dir, int days) {
  TestKey key = TestKey::ecP256();
  CertSpec spec;
  spec.common_name = "localhost";
  spec.dns_names = {"localhost"};
  spec.valid_until = int64_t{days} * 86400 + 3600;
  dir.write("site.pem", TestCert::make(spec, key).pem());
  dir.write("site.key", key.pem());
}

TEST(ConfigCheck, TlsMissingKeyFileFailsNamingTheFile) {
  TempDir dir("weir-cfg");
  writeCertificate(dir, 90);
  const uint16_t port = pickFreePort();
  // Relative paths: found next to the config, wherever weir runs.
  const std::string config = tlsConfig(port, pickFreePort(), "site.pem", "missing.key");
  const std::string path = dir.write("bad.toml", config);
  const RunResult r = run(kWeirBin, {"-t", "-c", path}, seconds(10));
  EXPECT_EQ(r.exitCode(), 1) << describeStatus(r.status) << "\nstderr:\n" << r.err;
  const size_t line7 = config.find("certificates = ");
  const size_t col = config.find("key = \"", line7) - line7 + 7;
  EXPECT_NE(r.err.find("bad.toml:7:" + std::to_string(col) +
                       ": listeners.secure.tls.certificates[0].key: " + dir.file("missing.key") +
                       ": cannot read: No such file or directory\n"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("test failed"), std::string::npos) << r.err;
  EXPECT_TRUE(portIsFree("127.0.0.1", port));
}

TEST(ConfigCheck, TlsMissingKeyFileStopsAStart) {
  TempDir dir("weir-cfg");
  writeCertificate(dir, 90);
  const uint16_t port = pickFreePort();
  const std::string path = dir.write(
      "bad.toml", tlsConfig(port, pickFreePort(), dir.file("site.pem"), dir.file("gone.key")));
  const RunResult r = run(kWeirBin, {"-c", path}, seconds(10));
  EXPECT_FALSE(r.timed_out) << "weir -c bad.toml was still running after 10 s";
  EXPECT_EQ(r.exitCode(), 1) << describeStatus(r.status) << "\nstderr:\n" << r.err;
  EXPECT_NE(r.err.find(dir.file("gone.key") + ": cannot read: No such file or directory"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(portIsFree("127.0.0.1", port)) << "weir left its listen port bound";
}

TEST(ConfigCheck, TlsExpiringCertificateWarnsButPasses) {
  TempDir dir("weir-cfg");
  writeCertificate(dir, 5);
  const std::string path = dir.write(
      "good.toml", tlsConfig(pickFreePort(), pickFreePort(), "site.pem", "site.key"));
  const RunResult r = run(kWeirBin, {"-t", "-c", path}, seconds(10));
  EXPECT_EQ(r.exitCode(), 0) << describeStatus(r.status) << "\nstderr:\n" << r.err;
  EXPECT_NE(r.err.find("weir: warning: " + path + ":7:26: listeners.secure.tls.certificates[0]"
                       ".cert: " + dir.file("site.pem") + ": expires in 5 days, on "),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(": serves localhost; valid until "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("test is successful"), std::string::npos) << r.err;
}

TEST(ConfigCheck, TlsGoodCertificatePassesWithoutWarnings) {
  TempDir dir("weir-cfg");
  writeCertificate(dir, 90);
  const std::string path = dir.write(
      "good.toml", tlsConfig(pickFreePort(), pickFreePort(), "site.pem", "site.key"));
  const RunResult r = run(kWeirBin, {"-t", "-c", path}, seconds(10));
  EXPECT_EQ(r.exitCode(), 0) << describeStatus(r.status) << "\nstderr:\n" << r.err;
  EXPECT_EQ(r.err.find("expires in"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(": serves localhost; valid until "), std::string::npos) << r.err;
}

}  // namespace
}  // namespace weir::test
