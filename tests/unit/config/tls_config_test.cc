// The keys issue 10 adds: listener modes, [listeners.NAME.sni] routes, [listeners.NAME.tls],
// [pools.NAME.tls] and health kind "tls".
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"

namespace weir::config {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Two pools and a listener; tests append the rest of [listeners.edge] (or more tables).
// Line 8 is the first appended line.
constexpr std::string_view kHead =
    "[pools.web]\n"                                 // 1
    "backends = [{ address = \"10.0.0.1:80\" }]\n"  // 2
    "[pools.api]\n"                                 // 3
    "backends = [{ address = \"10.0.0.2:80\" }]\n"  // 4
    "[listeners.edge]\n"                            // 5
    "bind = \"127.0.0.1:8443\"\n"                   // 6
    "pool = \"web\"\n";                             // 7

// Appended to kHead for a listener in terminate mode; line 10 is the first line after it.
constexpr std::string_view kTerminate =
    "mode = \"tls-terminate\"\n"                                 // 8
    "[listeners.edge.tls]\n";                                    // 9
constexpr std::string_view kOneCert =
    "certificates = [{ cert = \"/c/a.pem\", key = \"/c/a.key\" }]\n";

Config parseRest(std::string_view rest, const std::string& path = "/etc/weir/weir.toml") {
  return parse(std::string(kHead) + std::string(rest), path);
}

std::vector<std::string> errorsOf(std::string_view rest) {
  try {
    parse(std::string(kHead) + std::string(rest), "weir.toml");
  } catch (const ConfigError& e) {
    return e.messages();
  }
  ADD_FAILURE() << "no ConfigError for:\n" << rest;
  return {};
}

std::string terminate(std::string_view tls_lines) {
  return std::string(kTerminate) + std::string(tls_lines);
}

TEST(TlsConfig, Defaults) {
  Config c = parseRest("");
  const Listener& l = c.listeners[0];
  EXPECT_EQ(l.mode, ListenerMode::Tcp);
  EXPECT_EQ(l.client_hello_timeout, 5s);
  EXPECT_THAT(l.sni, IsEmpty());
  EXPECT_FALSE(l.tls.has_value());
  EXPECT_FALSE(c.pools[0].tls.has_value());
  EXPECT_FALSE(c.pools[1].tls.has_value());

  c = parseRest(terminate(kOneCert));
  ASSERT_TRUE(c.listeners[0].tls.has_value());
  const ServerTls& tls = *c.listeners[0].tls;
  EXPECT_EQ(tls.min_version, TlsVersion::V1_2);
  EXPECT_EQ(tls.ciphers, "");
  EXPECT_EQ(tls.ciphersuites, "");
  EXPECT_EQ(tls.groups, "");
  EXPECT_THAT(tls.alpn, IsEmpty());
  EXPECT_EQ(tls.handshake_timeout, 10s);
  EXPECT_TRUE(tls.session_tickets);
  EXPECT_EQ(tls.ticket_key_rotation, 1h);
  EXPECT_THAT(c.listeners[0].sni, IsEmpty());

  c = parseRest("[pools.api.tls]\n");
  ASSERT_TRUE(c.pools[0].tls.has_value());
  const UpstreamTls& up = *c.pools[0].tls;
  EXPECT_TRUE(up.verify);
  EXPECT_TRUE(up.ca.empty());
  EXPECT_EQ(up.sni, "");
  EXPECT_FALSE(up.client_certificate.has_value());
  EXPECT_EQ(up.min_version, TlsVersion::V1_2);
  EXPECT_EQ(up.ciphers, "");
  EXPECT_EQ(up.ciphersuites, "");
  EXPECT_THAT(up.alpn, IsEmpty());
}

TEST(TlsConfig, PassthroughRoutesAreLowerCasedSortedAndIndexed) {
  Config c = parseRest(R"(mode = "tls-passthrough"
client_hello_timeout = "2s"
[listeners.edge.sni]
"www.Example.com" = "web"
"*.EXAMPLE.com" = "web"
"api.example.com" = "api"
"a-1.b2.example.org" = "api"
)");
  const Listener& l = c.listeners[0];
  EXPECT_EQ(l.mode, ListenerMode::TlsPassthrough);
  EXPECT_EQ(l.client_hello_timeout, 2s);
  EXPECT_EQ(l.pool_index, 1u);  // pools sorted: api, web
  ASSERT_EQ(l.sni.size(), 4u);
  EXPECT_EQ(l.sni[0].name, "*.example.com");
  EXPECT_EQ(l.sni[0].pool, "web");
  EXPECT_EQ(l.sni[0].pool_index, 1u);
  EXPECT_EQ(l.sni[1].name, "a-1.b2.example.org");
  EXPECT_EQ(l.sni[1].pool_index, 0u);
  EXPECT_EQ(l.sni[2].name, "api.example.com");
  EXPECT_EQ(l.sni[2].pool, "api");
  EXPECT_EQ(l.sni[2].pool_index, 0u);
  EXPECT_EQ(l.sni[3].name, "www.example.com");
  EXPECT_EQ(l.sni[3].pool_index, 1u);
  EXPECT_FALSE(l.tls.has_value());
}

TEST(TlsConfig, TerminateEveryKey) {
  Config c = parseRest(R"(mode = "tls-terminate"
[listeners.edge.sni]
"api.example.com" = "api"
[listeners.edge.tls]
certificates = [ { cert = "/etc/weir/a.pem", key = "/etc/weir/a.key" },
                 { cert = "b.pem", key = "keys/b.key" } ]
min_version = "1.3"
ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"
ciphersuites = "TLS_AES_128_GCM_SHA256"
groups = "X25519"
alpn = ["h2", "http/1.1"]
handshake_timeout = "3s"
session_tickets = true
ticket_key_rotation = "30m"
)");
  const Listener& l = c.listeners[0];
  EXPECT_EQ(l.mode, ListenerMode::TlsTerminate);
  ASSERT_EQ(l.sni.size(), 1u);
  EXPECT_EQ(l.sni[0].pool_index, 0u);
  ASSERT_TRUE(l.tls.has_value());
  const ServerTls& tls = *l.tls;
  ASSERT_EQ(tls.certificates.size(), 2u);
  EXPECT_EQ(tls.certificates[0].cert.path, "/etc/weir/a.pem");
  EXPECT_EQ(tls.certificates[0].cert.where,
            "/etc/weir/weir.toml:12:27: listeners.edge.tls.certificates[0].cert");
  EXPECT_EQ(tls.certificates[0].key.path, "/etc/weir/a.key");
  EXPECT_EQ(tls.certificates[0].key.where,
            "/etc/weir/weir.toml:12:52: listeners.edge.tls.certificates[0].key");
  EXPECT_EQ(tls.certificates[1].cert.path, "/etc/weir/b.pem");
  EXPECT_EQ(tls.certificates[1].key.path, "/etc/weir/keys/b.key");
  EXPECT_EQ(tls.certificates[1].key.where,
            "/etc/weir/weir.toml:13:42: listeners.edge.tls.certificates[1].key");
  EXPECT_EQ(tls.min_version, TlsVersion::V1_3);
  EXPECT_EQ(tls.ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256");
  EXPECT_EQ(tls.ciphersuites, "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(tls.groups, "X25519");
  EXPECT_THAT(tls.alpn, ElementsAre("h2", "http/1.1"));
  EXPECT_EQ(tls.handshake_timeout, 3s);
  EXPECT_TRUE(tls.session_tickets);
  EXPECT_EQ(tls.ticket_key_rotation, 30min);

  c = parseRest(terminate(std::string(kOneCert) + "session_tickets = false\n"));
  EXPECT_FALSE(c.listeners[0].tls->session_tickets);
}

TEST(TlsConfig, CertificatesAsArrayOfTables) {
  Config c = parseRest(R"(mode = "tls-terminate"
[[listeners.edge.tls.certificates]]
cert = "/c/a.pem"
key = "/c/a.key"
[[listeners.edge.tls.certificates]]
cert = "/c/b.pem"
key = "/c/b.key"
)");
  ASSERT_EQ(c.listeners[0].tls->certificates.size(), 2u);
  EXPECT_EQ(c.listeners[0].tls->certificates[1].key.path, "/c/b.key");
  EXPECT_EQ(c.listeners[0].tls->certificates[1].key.where,
            "/etc/weir/weir.toml:14:7: listeners.edge.tls.certificates[1].key");
}

TEST(TlsConfig, RelativePathsAreTakenFromTheConfigDirectory) {
  const std::string rest =
      terminate("certificates = [{ cert = \"certs/a.pem\", key = \"/k/a.key\" }]\n");
  const std::pair<std::string, std::string> cases[] = {
      {"/etc/weir/weir.toml", "/etc/weir/certs/a.pem"},
      {"conf/weir.toml", "conf/certs/a.pem"},
      {"weir.toml", "certs/a.pem"},  // the config is in the current directory: so is the file
      {"/weir.toml", "/certs/a.pem"},
  };
  for (const auto& [config_path, resolved] : cases) {
    Config c = parseRest(rest, config_path);
    EXPECT_EQ(c.listeners[0].tls->certificates[0].cert.path, resolved) << config_path;
    EXPECT_EQ(c.listeners[0].tls->certificates[0].key.path, "/k/a.key") << config_path;
  }
  Config c = parseRest("[pools.api.tls]\nca = \"../ca.pem\"\n", "/etc/weir/weir.toml");
  EXPECT_EQ(c.pools[0].tls->ca.path, "/etc/weir/../ca.pem");
  EXPECT_EQ(c.pools[0].tls->ca.where, "/etc/weir/weir.toml:9:6: pools.api.tls.ca");
}

TEST(TlsConfig, UpstreamEveryKey) {
  Config c = parseRest(R"([pools.api.tls]
verify = true
ca = "/etc/weir/backend-ca.pem"
sni = "App.Internal"
client_certificate = { cert = "client.pem", key = "client.key" }
min_version = "1.3"
ciphers = "ECDHE-RSA-AES128-GCM-SHA256"
ciphersuites = "TLS_AES_256_GCM_SHA384"
alpn = ["h2"]
[pools.web.tls]
verify = false
)");
  const UpstreamTls& up = *c.pools[0].tls;
  EXPECT_TRUE(up.verify);
  EXPECT_EQ(up.ca.path, "/etc/weir/backend-ca.pem");
  EXPECT_EQ(up.ca.where, "/etc/weir/weir.toml:10:6: pools.api.tls.ca");
  EXPECT_EQ(up.sni, "app.internal");
  ASSERT_TRUE(up.client_certificate.has_value());
  EXPECT_EQ(up.client_certificate->cert.path, "/etc/weir/client.pem");
  EXPECT_EQ(up.client_certificate->cert.where,
            "/etc/weir/weir.toml:12:31: pools.api.tls.client_certificate.cert");
  EXPECT_EQ(up.client_certificate->key.path, "/etc/weir/client.key");
  EXPECT_EQ(up.min_version, TlsVersion::V1_3);
  EXPECT_EQ(up.ciphers, "ECDHE-RSA-AES128-GCM-SHA256");
  EXPECT_EQ(up.ciphersuites, "TLS_AES_256_GCM_SHA384");
  EXPECT_THAT(up.alpn, ElementsAre("h2"));
  ASSERT_TRUE(c.pools[1].tls.has_value());
  EXPECT_FALSE(c.pools[1].tls->verify);
}

TEST(TlsConfig, TerminateMayReencryptToATlsPool) {
  Config c = parseRest(terminate(std::string(kOneCert) + "[pools.web.tls]\nsni = \"web\"\n"));
  EXPECT_EQ(c.listeners[0].mode, ListenerMode::TlsTerminate);
  EXPECT_EQ(c.pools[1].tls->sni, "web");
}

TEST(TlsConfig, ModeErrors) {
  EXPECT_THAT(errorsOf("mode = \"tls-terminte\"\n"),
              ElementsAre("weir.toml:8:8: listeners.edge.mode: expected \"tcp\", "
                          "\"tls-passthrough\" or \"tls-terminate\", got \"tls-terminte\"; did "
                          "you mean \"tls-terminate\"?"));
  // A wrong mode does not also make its tables wrong.
  EXPECT_THAT(errorsOf("mode = 1\n[listeners.edge.sni]\n[listeners.edge.tls]\n" +
                       std::string(kOneCert)),
              ElementsAre("weir.toml:8:8: listeners.edge.mode: expected \"tcp\", "
                          "\"tls-passthrough\" or \"tls-terminate\", got 1"));
  EXPECT_THAT(errorsOf("mode = \"tls-terminate\"\n"),
              ElementsAre("weir.toml:5:1: listeners.edge: missing required key \"tls\": mode = "
                          "\"tls-terminate\" needs [listeners.edge.tls] with its certificates"));
  EXPECT_THAT(errorsOf("[listeners.edge.sni]\n\"a.example.com\" = \"api\"\n"),
              ElementsAre("weir.toml:8:1: listeners.edge.sni: only used with mode = "
                          "\"tls-passthrough\" or \"tls-terminate\""));
  EXPECT_THAT(errorsOf("[listeners.edge.tls]\n" + std::string(kOneCert)),
              ElementsAre("weir.toml:8:1: listeners.edge.tls: only used with mode = "
                          "\"tls-terminate\""));
  EXPECT_THAT(errorsOf("mode = \"tls-passthrough\"\n[listeners.edge.tls]\n" +
                       std::string(kOneCert)),
              ElementsAre("weir.toml:9:1: listeners.edge.tls: only used with mode = "
                          "\"tls-terminate\" (tls-passthrough does not decrypt: the backends "
                          "hold the certificates)"));
  EXPECT_THAT(errorsOf("sni = 1\ntls = []\n"),
              ElementsAre("weir.toml:8:7: listeners.edge.sni: expected a table such as "
                          "[listeners.edge.sni], got 1",
                          "weir.toml:9:7: listeners.edge.tls: expected a table such as "
                          "[listeners.edge.tls], got an array"));
  EXPECT_THAT(errorsOf("mode = \"tls-passthrough\"\ntsl = {}\n"),
              ElementsAre("weir.toml:9:7: listeners.edge.tsl: unknown key; did you mean "
                          "\"tls\"?"));
}

TEST(TlsConfig, ClientHelloTimeoutOnlyInPassthrough) {
  EXPECT_THAT(errorsOf("client_hello_timeout = \"1s\"\n"),
              ElementsAre("weir.toml:8:24: listeners.edge.client_hello_timeout: only used with "
                          "mode = \"tls-passthrough\""));
  EXPECT_THAT(errorsOf("client_hello_timeout = \"1s\"\n" + terminate(kOneCert)),
              ElementsAre("weir.toml:8:24: listeners.edge.client_hello_timeout: only used with "
                          "mode = \"tls-passthrough\"; tls-terminate bounds the whole handshake "
                          "with listeners.edge.tls.handshake_timeout"));
  EXPECT_THAT(errorsOf("mode = \"tls-passthrough\"\nclient_hello_timeout = \"0ms\"\n"),
              ElementsAre("weir.toml:9:24: listeners.edge.client_hello_timeout: must be greater "
                          "than 0, got \"0ms\""));
  EXPECT_THAT(errorsOf("mode = \"tls-passthrough\"\nclient_hello_timeout = \"2d\"\n"),
              ElementsAre("weir.toml:9:24: listeners.edge.client_hello_timeout: must be at most "
                          "\"1d\", got \"2d\""));
  Config c = parseRest("mode = \"tls-passthrough\"\nclient_hello_timeout = \"1ms\"\n");
  EXPECT_EQ(c.listeners[0].client_hello_timeout, 1ms);
}

TEST(TlsConfig, SniNameErrors) {
  EXPECT_THAT(
      errorsOf(R"(mode = "tls-passthrough"
[listeners.edge.sni]
"*" = "api"
"*.com" = "api"
"a*.example.com" = "api"
"*a.example.com" = "api"
"a.*.example.com" = "api"
"*.*.example.com" = "api"
"-a.example.com" = "api"
"a..example.com" = "api"
"example.com." = "api"
"a+b.example.com" = "api"
"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com" = "api"
"" = "api"
)"),
      ElementsAre(
          "weir.toml:10:1: listeners.edge.sni.\"*\": \"*\" alone is not a route; the listener's "
          "pool takes every name no route matches",
          "weir.toml:11:1: listeners.edge.sni.\"*.com\": a wildcard needs at least two labels "
          "after \"*.\" (\"*.example.com\", not \"*.com\")",
          "weir.toml:12:1: listeners.edge.sni.\"a*.example.com\": a wildcard must be a whole "
          "leftmost label, as in \"*.example.com\"",
          "weir.toml:13:1: listeners.edge.sni.\"*a.example.com\": a wildcard must be a whole "
          "leftmost label, as in \"*.example.com\"",
          "weir.toml:14:1: listeners.edge.sni.\"a.*.example.com\": a wildcard must be a whole "
          "leftmost label, as in \"*.example.com\"",
          "weir.toml:15:1: listeners.edge.sni.\"*.*.example.com\": a wildcard must be a whole "
          "leftmost label, as in \"*.example.com\"",
          "weir.toml:16:1: listeners.edge.sni.\"-a.example.com\": label \"-a\" must not start or "
          "end with '-'",
          "weir.toml:17:1: listeners.edge.sni.\"a..example.com\": empty label: a host name has "
          "no dot at its start or end, nor two in a row",
          "weir.toml:18:1: listeners.edge.sni.\"example.com.\": empty label: a host name has no "
          "dot at its start or end, nor two in a row",
          "weir.toml:19:1: listeners.edge.sni.\"a+b.example.com\": label \"a+b\" may only hold "
          "letters, digits, '-' and '_'",
          "weir.toml:20:1: listeners.edge.sni.\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaaaaa.com\": label \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaa\" is longer than 63 characters",
          "weir.toml:21:1: listeners.edge.sni.\"\": a host name must not be empty"));
}

TEST(TlsConfig, SniNameLimits) {
  // 63-character labels and 253 characters in all are allowed; 254 are not.
  const std::string label63(63, 'a');
  const std::string name253 = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
  ASSERT_EQ(name253.size(), 253u);
  Config c = parseRest("mode = \"tls-passthrough\"\n[listeners.edge.sni]\n\"" + name253 +
                       "\" = \"api\"\n");
  EXPECT_EQ(c.listeners[0].sni[0].name, name253);
  auto errors = errorsOf("mode = \"tls-passthrough\"\n[listeners.edge.sni]\n\"" + name253 +
                         "b\" = \"api\"\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], ::testing::EndsWith(": a host name has at most 253 characters, got 254"));
  EXPECT_THAT(errors[0], ::testing::StartsWith("weir.toml:10:1: listeners.edge.sni.\""));
}

TEST(TlsConfig, SniRouteErrors) {
  EXPECT_THAT(errorsOf(R"(mode = "tls-terminate"
[listeners.edge.sni]
"www.example.com" = "wbe"
"api.example.com" = 3
"Web.Example.com" = "web"
"WEB.example.COM" = "api"
"web.example.com" = "web"
[listeners.edge.tls]
certificates = [{ cert = "/c/a.pem", key = "/c/a.key" }]
)"),
              ElementsAre("weir.toml:10:21: listeners.edge.sni.\"www.example.com\": no pool "
                          "named \"wbe\"; did you mean \"web\"?",
                          "weir.toml:11:21: listeners.edge.sni.\"api.example.com\": expected a "
                          "pool name, got 3",
                          "weir.toml:13:1: listeners.edge.sni.\"WEB.example.COM\": already "
                          "routed as \"Web.Example.com\" (line 12); server names are not "
                          "case-sensitive",
                          "weir.toml:14:1: listeners.edge.sni.\"web.example.com\": already "
                          "routed as \"Web.Example.com\" (line 12); server names are not "
                          "case-sensitive"));
}

TEST(TlsConfig, PassthroughCannotUseATlsPool) {
  EXPECT_THAT(errorsOf(R"(mode = "tls-passthrough"
[listeners.edge.sni]
"a.example.com" = "api"
"b.example.com" = "web"
[pools.web.tls]
)"),
              ElementsAre("weir.toml:7:8: listeners.edge.pool: pool \"web\" has "
                          "[pools.web.tls], but tls-passthrough forwards the client's TLS "
                          "untouched (only tls-terminate re-encrypts to backends)",
                          "weir.toml:11:19: listeners.edge.sni.\"b.example.com\": pool \"web\" "
                          "has [pools.web.tls], but tls-passthrough forwards the client's TLS "
                          "untouched (only tls-terminate re-encrypts to backends)"));
}

TEST(TlsConfig, CertificateErrors) {
  EXPECT_THAT(errorsOf(terminate("")),
              ElementsAre("weir.toml:9:1: listeners.edge.tls: missing required key "
                          "\"certificates\""));
  EXPECT_THAT(errorsOf(terminate("certificates = []\n")),
              ElementsAre("weir.toml:10:16: listeners.edge.tls.certificates: expected a "
                          "non-empty array such as [{ cert = \"a.pem\", key = \"a.key\" }], got "
                          "an array"));
  EXPECT_THAT(errorsOf(terminate("certificates = \"a.pem\"\n")),
              ElementsAre("weir.toml:10:16: listeners.edge.tls.certificates: expected a "
                          "non-empty array such as [{ cert = \"a.pem\", key = \"a.key\" }], got "
                          "\"a.pem\""));
  EXPECT_THAT(
      errorsOf(terminate(R"(certificates = [
  "a.pem",
  { cert = "a.pem" },
  { crt = "b.pem", key = "b.key" },
  { cert = "", key = 5 },
  { cert = "c.pem", key = "c.key" },
  { cert = "c.pem", key = "d.key" },
]
)")),
      ElementsAre(
          "weir.toml:11:3: listeners.edge.tls.certificates[0]: expected a table such as { cert "
          "= \"a.pem\", key = \"a.key\" }, got \"a.pem\"",
          "weir.toml:12:3: listeners.edge.tls.certificates[1]: missing required key \"key\"",
          "weir.toml:13:3: listeners.edge.tls.certificates[2]: missing required key \"cert\"",
          "weir.toml:13:11: listeners.edge.tls.certificates[2].crt: unknown key; did you mean "
          "\"cert\"?",
          "weir.toml:14:12: listeners.edge.tls.certificates[3].cert: expected a file path, got "
          "\"\"",
          "weir.toml:14:22: listeners.edge.tls.certificates[3].key: expected a file path, got 5",
          "weir.toml:16:12: listeners.edge.tls.certificates[5].cert: \"c.pem\" is already "
          "listed as certificates[4]"));
}

TEST(TlsConfig, CertificatesAreResolvedBeforeComparing) {
  auto errors = [] {
    try {
      parseRest(terminate("certificates = [{ cert = \"c.pem\", key = \"c.key\" },\n"
                          "                { cert = \"/etc/weir/c.pem\", key = \"d.key\" }]\n"));
    } catch (const ConfigError& e) {
      return e.messages();
    }
    return std::vector<std::string>{};
  }();
  EXPECT_THAT(errors, ElementsAre("/etc/weir/weir.toml:11:26: listeners.edge.tls.certificates[1]"
                                  ".cert: \"/etc/weir/c.pem\" is already listed as "
                                  "certificates[0]"));
}

TEST(TlsConfig, VersionErrors) {
  const std::string cert(kOneCert);
  EXPECT_THAT(errorsOf(terminate(cert + "min_version = \"1.1\"\n")),
              ElementsAre("weir.toml:11:15: listeners.edge.tls.min_version: TLS 1.1 is not "
                          "supported: weir speaks TLS 1.2 and 1.3 only (\"1.2\" or \"1.3\")"));
  EXPECT_THAT(errorsOf(terminate(cert + "min_version = \"1.0\"\n")),
              ElementsAre("weir.toml:11:15: listeners.edge.tls.min_version: TLS 1.0 is not "
                          "supported: weir speaks TLS 1.2 and 1.3 only (\"1.2\" or \"1.3\")"));
  EXPECT_THAT(errorsOf(terminate(cert + "min_version = 1.2\n")),
              ElementsAre("weir.toml:11:15: listeners.edge.tls.min_version: expected \"1.2\" or "
                          "\"1.3\" (a string, in quotes), got 1.2"));
  EXPECT_THAT(errorsOf("[pools.api.tls]\nmin_version = \"1.4\"\n"),
              ElementsAre("weir.toml:9:15: pools.api.tls.min_version: expected \"1.2\" or "
                          "\"1.3\", got \"1.4\"; did you mean \"1.2\"?"));
}

TEST(TlsConfig, ServerTlsValueErrors) {
  EXPECT_THAT(errorsOf(terminate(std::string(kOneCert) + R"(ciphers = ""
ciphersuites = 1
groups = ""
handshake_timeout = "0s"
session_tickets = "yes"
ticket_key_rotation = "30s"
session_ticket = true
)")),
              ElementsAre("weir.toml:11:11: listeners.edge.tls.ciphers: must not be empty; leave "
                          "the key out for weir's default",
                          "weir.toml:12:16: listeners.edge.tls.ciphersuites: expected an OpenSSL "
                          "list such as \"A:B:C\", got 1",
                          "weir.toml:13:10: listeners.edge.tls.groups: must not be empty; leave "
                          "the key out for weir's default",
                          "weir.toml:14:21: listeners.edge.tls.handshake_timeout: must be "
                          "greater than 0, got \"0s\"",
                          "weir.toml:15:19: listeners.edge.tls.session_tickets: expected true or "
                          "false, got \"yes\"",
                          "weir.toml:16:23: listeners.edge.tls.ticket_key_rotation: must be at "
                          "least \"1m\", got \"30s\"",
                          "weir.toml:17:18: listeners.edge.tls.session_ticket: unknown key; did "
                          "you mean \"session_tickets\"?"));
  EXPECT_THAT(errorsOf(terminate(std::string(kOneCert) + "ticket_key_rotation = \"25h\"\n")),
              ElementsAre("weir.toml:11:23: listeners.edge.tls.ticket_key_rotation: must be at "
                          "most \"1d\", got \"25h\""));
  EXPECT_THAT(errorsOf(terminate(std::string(kOneCert) +
                                 "session_tickets = false\nticket_key_rotation = \"2h\"\n")),
              ElementsAre("weir.toml:12:23: listeners.edge.tls.ticket_key_rotation: only used "
                          "with session_tickets = true"));
  Config c = parseRest(terminate(std::string(kOneCert) + "ticket_key_rotation = \"1m\"\n"));
  EXPECT_EQ(c.listeners[0].tls->ticket_key_rotation, 1min);
  c = parseRest(terminate(std::string(kOneCert) + "ticket_key_rotation = \"1d\"\n"));
  EXPECT_EQ(c.listeners[0].tls->ticket_key_rotation, 24h);
}

TEST(TlsConfig, AlpnErrors) {
  const std::string cert(kOneCert);
  EXPECT_THAT(errorsOf(terminate(cert + "alpn = []\n")),
              ElementsAre("weir.toml:11:8: listeners.edge.tls.alpn: expected a non-empty array "
                          "of protocol names such as [\"h2\", \"http/1.1\"], got an array"));
  EXPECT_THAT(errorsOf(terminate(cert + "alpn = \"h2\"\n")),
              ElementsAre("weir.toml:11:8: listeners.edge.tls.alpn: expected a non-empty array "
                          "of protocol names such as [\"h2\", \"http/1.1\"], got \"h2\""));
  EXPECT_THAT(errorsOf(terminate(cert + "alpn = [\"h2\", \"\", 2, \"h2\", \"a b\", \"" +
                                 std::string(256, 'x') + "\"]\n")),
              ElementsAre("weir.toml:11:15: listeners.edge.tls.alpn[1]: a protocol name is "
                          "1..255 printable characters without spaces, got \"\"",
                          "weir.toml:11:19: listeners.edge.tls.alpn[2]: expected a protocol "
                          "name such as \"h2\", got 2",
                          "weir.toml:11:22: listeners.edge.tls.alpn[3]: \"h2\" is already listed "
                          "as alpn[0]",
                          "weir.toml:11:28: listeners.edge.tls.alpn[4]: a protocol name is "
                          "1..255 printable characters without spaces, got \"a b\"",
                          "weir.toml:11:35: listeners.edge.tls.alpn[5]: a protocol name is "
                          "1..255 printable characters without spaces, got \"" +
                              std::string(256, 'x') + "\""));
  std::string many = "alpn = [";
  for (int i = 0; i < 17; ++i) {
    many += "\"p" + std::to_string(i) + "\", ";
  }
  many += "]\n";
  EXPECT_THAT(errorsOf("[pools.api.tls]\n" + many),
              ElementsAre("weir.toml:9:8: pools.api.tls.alpn: at most 16 protocols, got 17"));
  Config c = parseRest("[pools.api.tls]\nalpn = [\"" + std::string(255, 'x') + "\"]\n");
  EXPECT_EQ(c.pools[0].tls->alpn[0].size(), 255u);
}

TEST(TlsConfig, UpstreamErrors) {
  EXPECT_THAT(errorsOf(R"([pools.api.tls]
verify = "yes"
ca = ""
sni = "*.example.com"
client_certificate = { cert = "c.pem" }
ciphers = ""
verfiy = true
[pools.web.tls]
verify = false
ca = "ca.pem"
sni = "app+1.internal"
client_certificate = "c.pem"
)"),
              ElementsAre("weir.toml:9:10: pools.api.tls.verify: expected true or false, got "
                          "\"yes\"",
                          "weir.toml:10:6: pools.api.tls.ca: expected a file path, got \"\"",
                          "weir.toml:11:7: pools.api.tls.sni: \"*.example.com\" is not a host "
                          "name: label \"*\" may only hold letters, digits, '-' and '_'",
                          "weir.toml:12:22: pools.api.tls.client_certificate: missing required "
                          "key \"key\"",
                          "weir.toml:13:11: pools.api.tls.ciphers: must not be empty; leave the "
                          "key out for weir's default",
                          "weir.toml:14:10: pools.api.tls.verfiy: unknown key; did you mean "
                          "\"verify\"?",
                          "weir.toml:17:6: pools.web.tls.ca: only used with verify = true "
                          "(verify = false trusts any certificate)",
                          "weir.toml:18:7: pools.web.tls.sni: \"app+1.internal\" is not a host "
                          "name: label \"app+1\" may only hold letters, digits, '-' and '_'",
                          "weir.toml:19:22: pools.web.tls.client_certificate: expected a table "
                          "such as { cert = \"a.pem\", key = \"a.key\" }, got \"c.pem\""));
  EXPECT_THAT(errorsOf("[pools.api.tls]\nca = \"a\\nb.pem\"\n"),
              ElementsAre("weir.toml:9:6: pools.api.tls.ca: \"a\\nb.pem\": a file path cannot "
                          "hold control characters"));
  EXPECT_THAT(errorsOf("[pools.db]\nbackends = [{ address = \"10.0.0.3:80\" }]\ntls = true\n"),
              ElementsAre("weir.toml:10:7: pools.db.tls: expected a table such as "
                          "[pools.db.tls], got true"));
}

}  // namespace
}  // namespace weir::config
