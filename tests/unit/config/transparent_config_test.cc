// The keys of transparent mode and the PROXY protocol: [global] transparent_mark and
// transparent_table, [pools.NAME] source and proxy_protocol, [listeners.NAME] transparent,
// accept_proxy_protocol, trusted and proxy_protocol_timeout.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "edge_config.h"

namespace weir::config {
namespace {

using namespace edge_config;

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Appended to kHead to start [global] (line 6); line 7 is its first key.
constexpr std::string_view kGlobal = "[global]\n";
// Appended to kHead to start a second pool (lines 6, 7); line 8 is its first key.
constexpr std::string_view kPool = "[pools.api]\nbackends = [{ address = \"10.0.0.2:80\" }]\n";

std::string global(std::string_view lines) { return std::string(kGlobal) + std::string(lines); }
std::string pool(std::string_view lines) { return std::string(kPool) + std::string(lines); }

std::vector<std::string> texts(const std::vector<net::Cidr>& prefixes) {
  std::vector<std::string> out;
  for (const auto& prefix : prefixes) {
    out.push_back(prefix.toString());
  }
  return out;
}

TEST(TransparentConfig, Defaults) {
  Config c = parseRest("");
  EXPECT_EQ(c.global.transparent_mark, 0x7765u);
  EXPECT_EQ(c.global.transparent_table, 7765u);
  EXPECT_EQ(c.pools[0].source, SourceMode::Local);
  EXPECT_EQ(c.pools[0].proxy_protocol, ProxyProtocol::Off);
  const Listener& l = c.listeners[0];
  EXPECT_FALSE(l.transparent);
  EXPECT_FALSE(l.accept_proxy_protocol);
  EXPECT_THAT(l.trusted, IsEmpty());
  EXPECT_EQ(l.proxy_protocol_timeout, 5s);
}

TEST(TransparentConfig, GlobalKeys) {
  Config c = parseRest(global("transparent_mark = 0x1\ntransparent_table = 100\n"));
  EXPECT_EQ(c.global.transparent_mark, 1u);
  EXPECT_EQ(c.global.transparent_table, 100u);
  c = parseRest(global("transparent_mark = 0xFFFFFFFF\ntransparent_table = 2147483647\n"));
  EXPECT_EQ(c.global.transparent_mark, 0xffffffffu);
  EXPECT_EQ(c.global.transparent_table, 2147483647u);
  c = parseRest(global("transparent_mark = 30565\ntransparent_table = 252\n"));
  EXPECT_EQ(c.global.transparent_mark, 0x7765u);
  EXPECT_EQ(c.global.transparent_table, 252u);
  c = parseRest(global("transparent_mark = 0o17\ntransparent_table = 256\n"));
  EXPECT_EQ(c.global.transparent_mark, 15u);
  EXPECT_EQ(c.global.transparent_table, 256u);
}

TEST(TransparentConfig, MarkErrors) {
  EXPECT_THAT(errorsOf(global("transparent_mark = 0\n")),
              ElementsAre("weir.toml:7:20: global.transparent_mark: must be 1..4294967295, "
                          "got 0"));
  EXPECT_THAT(errorsOf(global("transparent_mark = 0x100000000\n")),
              ElementsAre("weir.toml:7:20: global.transparent_mark: must be 1..4294967295, "
                          "got 0x100000000"));
  EXPECT_THAT(errorsOf(global("transparent_mark = -1\n")),
              ElementsAre("weir.toml:7:20: global.transparent_mark: must be 1..4294967295, "
                          "got -1"));
  EXPECT_THAT(errorsOf(global("transparent_mark = \"0x7765\"\n")),
              ElementsAre("weir.toml:7:20: global.transparent_mark: expected an integer "
                          "1..4294967295, got \"0x7765\""));
}

TEST(TransparentConfig, TableErrors) {
  for (std::string_view bad : {"0", "-1", "2147483648", "4294967295"}) {
    EXPECT_THAT(errorsOf(global("transparent_table = " + std::string(bad) + "\n")),
                ElementsAre("weir.toml:7:21: global.transparent_table: must be 1..2147483647, "
                            "got " + std::string(bad)));
  }
  const std::pair<std::string_view, std::string_view> reserved[] = {
      {"253", "default"}, {"254", "main"}, {"255", "local"}};
  for (const auto& [number, name] : reserved) {
    EXPECT_THAT(errorsOf(global("transparent_table = " + std::string(number) + "\n")),
                ElementsAre("weir.toml:7:21: global.transparent_table: " + std::string(number) +
                            " is the kernel's \"" + std::string(name) +
                            "\" table, which the host's own traffic uses (253..255 are "
                            "reserved): weir-netsetup's \"deliver here\" default route there "
                            "would capture all of it; pick a table of weir's own, such as 7765 "
                            "(the default)"));
  }
  EXPECT_THAT(errorsOf(global("transparent_table = \"main\"\n")),
              ElementsAre("weir.toml:7:21: global.transparent_table: expected an integer "
                          "1..2147483647, got \"main\""));
  EXPECT_THAT(errorsOf(global("transparent_tabel = 100\n")),
              ElementsAre("weir.toml:7:21: global.transparent_tabel: unknown key; did you mean "
                          "\"transparent_table\"?"));
}

TEST(TransparentConfig, PoolKeys) {
  Config c = parseRest(pool("source = \"client\"\nproxy_protocol = \"v2\"\n"));
  EXPECT_EQ(c.pools[0].name, "api");
  EXPECT_EQ(c.pools[0].source, SourceMode::Client);
  EXPECT_EQ(c.pools[0].proxy_protocol, ProxyProtocol::V2);
  EXPECT_EQ(c.pools[1].source, SourceMode::Local);
  EXPECT_EQ(c.pools[1].proxy_protocol, ProxyProtocol::Off);
  c = parseRest(pool("source = \"local\"\nproxy_protocol = \"v1\"\n"));
  EXPECT_EQ(c.pools[0].source, SourceMode::Local);
  EXPECT_EQ(c.pools[0].proxy_protocol, ProxyProtocol::V1);
  c = parseRest(pool("proxy_protocol = \"off\"\n"));
  EXPECT_EQ(c.pools[0].proxy_protocol, ProxyProtocol::Off);
}

TEST(TransparentConfig, PoolErrors) {
  EXPECT_THAT(errorsOf(pool("source = \"clients\"\n")),
              ElementsAre("weir.toml:8:10: pools.api.source: expected \"local\" or \"client\", "
                          "got \"clients\"; did you mean \"client\"?"));
  EXPECT_THAT(errorsOf(pool("source = \"10.0.0.9\"\n")),
              ElementsAre("weir.toml:8:10: pools.api.source: expected \"local\" or \"client\", "
                          "got \"10.0.0.9\""));
  EXPECT_THAT(errorsOf(pool("source = true\n")),
              ElementsAre("weir.toml:8:10: pools.api.source: expected \"local\" or \"client\", "
                          "got true"));
  EXPECT_THAT(errorsOf(pool("proxy_protocol = \"V2\"\n")),
              ElementsAre("weir.toml:8:18: pools.api.proxy_protocol: expected \"off\", \"v1\" "
                          "or \"v2\", got \"V2\"; did you mean \"v2\"?"));
  EXPECT_THAT(errorsOf(pool("proxy_protocol = true\n")),
              ElementsAre("weir.toml:8:18: pools.api.proxy_protocol: expected \"off\", \"v1\" "
                          "or \"v2\", got true"));
  EXPECT_THAT(errorsOf(pool("proxy_protocol = 2\n")),
              ElementsAre("weir.toml:8:18: pools.api.proxy_protocol: expected \"off\", \"v1\" "
                          "or \"v2\", got 2"));
  EXPECT_THAT(errorsOf(pool("proxy-protocol = \"v1\"\n")),
              ElementsAre("weir.toml:8:18: pools.api.proxy-protocol: unknown key; did you mean "
                          "\"proxy_protocol\"?"));
}

TEST(TransparentConfig, ListenerKeys) {
  Config c = parseRest("transparent = true\n");
  EXPECT_TRUE(c.listeners[0].transparent);
  EXPECT_FALSE(c.listeners[0].accept_proxy_protocol);
  c = parseRest("transparent = false\n");
  EXPECT_FALSE(c.listeners[0].transparent);

  c = parseRest(R"(accept_proxy_protocol = true
trusted = ["10.0.0.0/8", "192.0.2.7", "2001:DB8::/32", "::1", "0.0.0.0/0", "::/0"]
proxy_protocol_timeout = "250ms"
transparent = true
)");
  const Listener& l = c.listeners[0];
  EXPECT_TRUE(l.transparent);
  EXPECT_TRUE(l.accept_proxy_protocol);
  EXPECT_THAT(texts(l.trusted), ElementsAre("10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32",
                                            "::1/128", "0.0.0.0/0", "::/0"));
  EXPECT_EQ(l.proxy_protocol_timeout, 250ms);

  c = parseRest("accept_proxy_protocol = true\ntrusted = [\"10.1.2.3\"]\n");
  EXPECT_TRUE(c.listeners[0].accept_proxy_protocol);
  EXPECT_THAT(texts(c.listeners[0].trusted), ElementsAre("10.1.2.3/32"));
  EXPECT_EQ(c.listeners[0].proxy_protocol_timeout, 5s);

  // With TLS: the PROXY header comes before the ClientHello.
  c = parseRest("mode = \"tls-passthrough\"\naccept_proxy_protocol = true\n"
                "trusted = [\"10.0.0.0/8\"]\nproxy_protocol_timeout = \"1d\"\n");
  EXPECT_EQ(c.listeners[0].mode, ListenerMode::TlsPassthrough);
  EXPECT_EQ(c.listeners[0].proxy_protocol_timeout, 24h);
}

TEST(TransparentConfig, TransparentListenersMayBindAnyAddressButNotTwice) {
  // An address this host does not own: nothing in the config can tell, and nothing checks.
  Config c = parseRest("transparent = true\n[listeners.vip]\nbind = \"198.51.100.1:80\"\n"
                       "pool = \"web\"\ntransparent = true\n");
  EXPECT_EQ(c.listeners[1].binds[0].toString(), "198.51.100.1:80");
  EXPECT_TRUE(c.listeners[1].transparent);
  // Overlaps are still overlaps.
  EXPECT_THAT(errorsOf("transparent = true\n[listeners.other]\nbind = \"127.0.0.1:8080\"\n"
                       "pool = \"web\"\ntransparent = true\n"),
              ElementsAre("weir.toml:8:8: listeners.other.bind: 127.0.0.1:8080 is already "
                          "bound by listeners.edge"));
}

TEST(TransparentConfig, TransparentErrors) {
  EXPECT_THAT(errorsOf("transparent = \"yes\"\n"),
              ElementsAre("weir.toml:6:15: listeners.edge.transparent: expected true or false, "
                          "got \"yes\""));
  EXPECT_THAT(errorsOf("transparant = true\n"),
              ElementsAre("weir.toml:6:15: listeners.edge.transparant: unknown key; did you mean "
                          "\"transparent\"?"));
}

constexpr std::string_view kNeedsTrusted =
    "listeners.edge.accept_proxy_protocol: needs the addresses of the balancers allowed to "
    "send a PROXY header in trusted, e.g. trusted = [\"10.0.0.0/8\"], or [\"0.0.0.0/0\", "
    "\"::/0\"] to trust anyone";

TEST(TransparentConfig, AcceptingNeedsTrustedPeers) {
  EXPECT_THAT(errorsOf("accept_proxy_protocol = true\n"),
              ElementsAre("weir.toml:6:25: " + std::string(kNeedsTrusted)));
  EXPECT_THAT(errorsOf("accept_proxy_protocol = true\ntrusted = []\n"),
              ElementsAre("weir.toml:6:25: " + std::string(kNeedsTrusted)));
  EXPECT_THAT(errorsOf("accept_proxy_protocol = true\nproxy_protocol_timeout = \"1s\"\n"),
              ElementsAre("weir.toml:6:25: " + std::string(kNeedsTrusted)));
  // Wrong elements are what to fix; the list is not also called empty.
  EXPECT_THAT(errorsOf("accept_proxy_protocol = true\ntrusted = [\"any\"]\n"),
              ElementsAre("weir.toml:7:12: listeners.edge.trusted[0]: \"any\": expected an IPv4 "
                          "or IPv6 address, or a prefix such as \"10.0.0.0/8\" or "
                          "\"2001:db8::/32\""));
  EXPECT_THAT(errorsOf("accept_proxy_protocol = true\ntrusted = \"10.0.0.0/8\"\n"),
              ElementsAre("weir.toml:7:11: listeners.edge.trusted: expected an array of "
                          "addresses or prefixes such as [\"10.0.0.0/8\", \"2001:db8::/32\"], "
                          "got \"10.0.0.0/8\""));
}

TEST(TransparentConfig, TrustedAndTimeoutOnlyWithAccepting) {
  constexpr std::string_view kTrustedUnused =
      "listeners.edge.trusted: only used with accept_proxy_protocol = true (it lists the peers "
      "allowed to send a PROXY header)";
  constexpr std::string_view kTimeoutUnused =
      "listeners.edge.proxy_protocol_timeout: only used with accept_proxy_protocol = true (it "
      "bounds the wait for a PROXY header)";
  EXPECT_THAT(errorsOf("trusted = [\"10.0.0.0/8\"]\n"),
              ElementsAre("weir.toml:6:11: " + std::string(kTrustedUnused)));
  EXPECT_THAT(errorsOf("trusted = []\n"),
              ElementsAre("weir.toml:6:11: " + std::string(kTrustedUnused)));
  EXPECT_THAT(errorsOf("proxy_protocol_timeout = \"3s\"\n"),
              ElementsAre("weir.toml:6:26: " + std::string(kTimeoutUnused)));
  EXPECT_THAT(errorsOf("accept_proxy_protocol = false\ntrusted = [\"10.0.0.0/8\"]\n"
                       "proxy_protocol_timeout = \"3s\"\n"),
              ElementsAre("weir.toml:7:11: " + std::string(kTrustedUnused),
                          "weir.toml:8:26: " + std::string(kTimeoutUnused)));
  // A wrong accept_proxy_protocol is the one problem: whether the others belong is unknown.
  EXPECT_THAT(errorsOf("accept_proxy_protocol = \"yes\"\ntrusted = [\"10.0.0.0/8\"]\n"
                       "proxy_protocol_timeout = \"3s\"\n"),
              ElementsAre("weir.toml:6:25: listeners.edge.accept_proxy_protocol: expected true "
                          "or false, got \"yes\""));
  // A value that is wrong itself is reported once, as wrong.
  EXPECT_THAT(errorsOf("proxy_protocol_timeout = \"3\"\n"),
              ElementsAre("weir.toml:6:26: listeners.edge.proxy_protocol_timeout: expected a "
                          "duration such as \"3s\", got \"3\""));
  EXPECT_THAT(errorsOf("trusted = 3\n"),
              ElementsAre("weir.toml:6:11: listeners.edge.trusted: expected an array of "
                          "addresses or prefixes such as [\"10.0.0.0/8\", \"2001:db8::/32\"], "
                          "got 3"));
}

TEST(TransparentConfig, TrustedElementErrorsPointAtTheElement) {
  EXPECT_THAT(errorsOf("accept_proxy_protocol = true\n"
                       "trusted = [\"10.0.0.0/8\", \"::1/129\", 7, \"10.1.0.0/8\", "
                       "\"10.0.0/8\", \"192.0.2.1/08\", \"\", \"[::1]\", \"10.0.0.1\\n\"]\n"),
              ElementsAre("weir.toml:7:26: listeners.edge.trusted[1]: \"::1/129\": the prefix "
                          "length must be 0..128, in decimal without leading zeros",
                          "weir.toml:7:37: listeners.edge.trusted[2]: expected an address or "
                          "prefix such as \"10.0.0.0/8\", got 7",
                          "weir.toml:7:40: listeners.edge.trusted[3]: \"10.1.0.0/8\": bits set "
                          "past the prefix length (did you mean \"10.0.0.0/8\"?)",
                          "weir.toml:7:54: listeners.edge.trusted[4]: \"10.0.0/8\": expected an "
                          "IPv4 or IPv6 address, or a prefix such as \"10.0.0.0/8\" or "
                          "\"2001:db8::/32\"",
                          "weir.toml:7:66: listeners.edge.trusted[5]: \"192.0.2.1/08\": the "
                          "prefix length must be 0..32, in decimal without leading zeros",
                          "weir.toml:7:82: listeners.edge.trusted[6]: \"\": expected an IPv4 or "
                          "IPv6 address, or a prefix such as \"10.0.0.0/8\" or "
                          "\"2001:db8::/32\"",
                          "weir.toml:7:86: listeners.edge.trusted[7]: \"[::1]\": expected an "
                          "IPv4 or IPv6 address, or a prefix such as \"10.0.0.0/8\" or "
                          "\"2001:db8::/32\"",
                          "weir.toml:7:95: listeners.edge.trusted[8]: \"10.0.0.1\\n\": expected "
                          "an IPv4 or IPv6 address, or a prefix such as \"10.0.0.0/8\" or "
                          "\"2001:db8::/32\""));
}

TEST(TransparentConfig, DuplicatePrefixesNameTheEarlierIndex) {
  EXPECT_THAT(errorsOf("accept_proxy_protocol = true\n"
                       "trusted = [\"10.0.0.0/8\", \"::1\", \"bad\", \"10.0.0.0/8\", "
                       "\"::1/128\", \"10.0.0.0/8\"]\n"),
              ElementsAre(::testing::StartsWith("weir.toml:7:33: listeners.edge.trusted[2]: "),
                          "weir.toml:7:40: listeners.edge.trusted[3]: \"10.0.0.0/8\" is already "
                          "listed as trusted[0]",
                          "weir.toml:7:54: listeners.edge.trusted[4]: \"::1/128\" is already "
                          "listed as trusted[1] (as \"::1\")",
                          "weir.toml:7:65: listeners.edge.trusted[5]: \"10.0.0.0/8\" is already "
                          "listed as trusted[0]"));
  // The same prefix in two listeners is fine; so are nested prefixes (redundant, not wrong).
  Config c = parseRest("accept_proxy_protocol = true\ntrusted = [\"10.0.0.0/8\", "
                       "\"10.1.0.0/16\"]\n[listeners.other]\nbind = \"127.0.0.1:8081\"\n"
                       "pool = \"web\"\naccept_proxy_protocol = true\n"
                       "trusted = [\"10.0.0.0/8\"]\n");
  EXPECT_THAT(texts(c.listeners[0].trusted), ElementsAre("10.0.0.0/8", "10.1.0.0/16"));
  EXPECT_THAT(texts(c.listeners[1].trusted), ElementsAre("10.0.0.0/8"));
}

TEST(TransparentConfig, TimeoutBounds) {
  const std::string accept = "accept_proxy_protocol = true\ntrusted = [\"10.0.0.0/8\"]\n";
  EXPECT_THAT(errorsOf(accept + "proxy_protocol_timeout = \"0s\"\n"),
              ElementsAre("weir.toml:8:26: listeners.edge.proxy_protocol_timeout: must be "
                          "greater than 0, got \"0s\""));
  EXPECT_THAT(errorsOf(accept + "proxy_protocol_timeout = \"1d1ms\"\n"),
              ElementsAre("weir.toml:8:26: listeners.edge.proxy_protocol_timeout: must be at "
                          "most \"1d\", got \"1d1ms\""));
  EXPECT_THAT(errorsOf(accept + "proxy_protocol_timeout = 5\n"),
              ElementsAre("weir.toml:8:26: listeners.edge.proxy_protocol_timeout: expected a "
                          "duration such as \"3s\", got 5"));
}

}  // namespace
}  // namespace weir::config
