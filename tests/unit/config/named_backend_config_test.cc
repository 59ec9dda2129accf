// Backends by name in the config: "NAME:PORT" takes max_addresses slots, resolvers and
// resolve_interval in [global], and the mistakes around them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"

namespace weir::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr std::string_view kListener =
    "[listeners.edge]\n"           // 1
    "bind = \"127.0.0.1:8080\"\n"  // 2
    "pool = \"web\"\n"             // 3
    "[pools.web]\n";               // 4

Config parsePool(const std::string& rest, const std::string& global = "") {
  return parse(global + std::string(kListener) + rest, "weir.toml");
}

std::vector<std::string> errorsOf(const std::string& rest, const std::string& global = "") {
  try {
    parsePool(rest, global);
  } catch (const ConfigError& e) {
    return e.messages();
  }
  ADD_FAILURE() << "no ConfigError for:\n" << rest;
  return {};
}

TEST(NamedBackendConfig, ANameTakesMaxAddressesSlots) {
  Config c = parsePool(
      "backends = [\n"
      "  { address = \"10.0.0.1:80\" },\n"
      "  { address = \"app.internal:8080\", weight = 3, max_addresses = 3, backup = true },\n"
      "  { address = \"db-1.example.org.:5432\" },\n"
      "]\n");
  const auto& b = c.pools[0].backends;
  ASSERT_EQ(b.size(), 1u + 3u + kDefaultMaxAddresses);
  EXPECT_FALSE(b[0].named());
  EXPECT_EQ(backendName(b[0]), "10.0.0.1:80");
  for (uint32_t k = 0; k < 3; ++k) {
    const Backend& slot = b[1 + k];
    EXPECT_TRUE(slot.named());
    EXPECT_EQ(slot.host, "app.internal");
    EXPECT_EQ(slot.port, 8080);
    EXPECT_EQ(slot.name_slot, k);
    EXPECT_EQ(slot.name_slots, 3u);
    EXPECT_EQ(slot.weight, 3u);
    EXPECT_TRUE(slot.backup);
    EXPECT_EQ(slot.address.family(), AF_UNSPEC);
    EXPECT_EQ(slot.where, "weir.toml:7:15: pools.web.backends[1].address");
  }
  EXPECT_EQ(backendName(b[1]), "app.internal:8080#1");
  EXPECT_EQ(backendName(b[3]), "app.internal:8080#3");
  EXPECT_EQ(b[4].host, "db-1.example.org.");
  EXPECT_EQ(b[4].name_slots, kDefaultMaxAddresses);
  EXPECT_EQ(backendName(b.back()), "db-1.example.org.:5432#16");

  const std::vector<NameSlots> names = nameSlots(b);
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0].first, 1u);
  EXPECT_EQ(names[0].count, 3u);
  EXPECT_EQ(names[1].first, 4u);
  EXPECT_EQ(names[1].count, kDefaultMaxAddresses);
  // A list cut short (as a fuzzed or hand-made one may be) never yields slots past its end.
  const std::vector<Backend> cut(b.begin(), b.begin() + 6);
  const std::vector<NameSlots> partial = nameSlots(cut);
  ASSERT_EQ(partial.size(), 2u);
  EXPECT_EQ(partial[1].count, 2u);
}

TEST(NamedBackendConfig, GlobalResolverKeys) {
  Config d = parsePool("backends = [{ address = \"app.internal:80\" }]\n");
  EXPECT_TRUE(d.global.resolvers.empty());
  EXPECT_EQ(d.global.resolve_interval, Duration(30000));
  Config c = parsePool("backends = [{ address = \"app.internal:80\" }]\n",
                       "[global]\nresolvers = [\"127.0.0.1:5353\", \"[::1]:53\"]\n"
                       "resolve_interval = \"10s\"\n");
  ASSERT_EQ(c.global.resolvers.size(), 2u);
  EXPECT_EQ(c.global.resolvers[0].toString(), "127.0.0.1:5353");
  EXPECT_EQ(c.global.resolvers[1].toString(), "[::1]:53");
  EXPECT_EQ(c.global.resolve_interval, Duration(10000));
}

TEST(NamedBackendConfig, MistakesNameTheKey) {
  EXPECT_THAT(errorsOf("backends = [{ address = \"app.internal:0\" }]\n"),
              ElementsAre("weir.toml:5:25: pools.web.backends[0].address: \"app.internal:0\": "
                          "expected a port 1-65535 after the name"));
  EXPECT_THAT(errorsOf("backends = [{ address = \"app.internal:http\" }]\n"),
              ElementsAre(HasSubstr("expected a port 1-65535 after the name")));
  EXPECT_THAT(errorsOf("backends = [{ address = \"app.internal:65536\" }]\n"),
              ElementsAre(HasSubstr("expected a port 1-65535 after the name")));
  // Not a name: an address with a mistake in it, reported as one.
  EXPECT_THAT(errorsOf("backends = [{ address = \"10.0.0.300:80\" }]\n"),
              ElementsAre(HasSubstr("\"10.0.0.300:80\" is not IP:PORT")));
  EXPECT_THAT(errorsOf("backends = [{ address = \"app_-.x:80\" }]\n"),
              ElementsAre(HasSubstr("is not IP:PORT")));
  EXPECT_THAT(errorsOf("backends = [{ address = \"app.internal\" }]\n"),
              ElementsAre(HasSubstr("is not IP:PORT")));
  EXPECT_THAT(errorsOf("backends = [{ address = \"10.0.0.1:80\", max_addresses = 4 }]\n"),
              ElementsAre("weir.toml:5:56: pools.web.backends[0].max_addresses: only for a "
                          "backend given by name (\"NAME:PORT\"); 10.0.0.1:80 is one address"));
  EXPECT_THAT(errorsOf("backends = [{ address = \"a.b:80\", max_addresses = 0 }]\n"),
              ElementsAre(HasSubstr("pools.web.backends[0].max_addresses:")));
  EXPECT_THAT(errorsOf("backends = [{ address = \"a.b:80\", max_addresses = 257 }]\n"),
              ElementsAre(HasSubstr("pools.web.backends[0].max_addresses:")));
  EXPECT_THAT(errorsOf("backends = [{ address = \"a.b:80\" }, { address = \"a.b:80\" }]\n"),
              ElementsAre("weir.toml:5:49: pools.web.backends[1].address: a.b:80 is already "
                          "listed as backends[0]"));
  EXPECT_THAT(errorsOf("backends = [{ address = \"a.b:80\" }]\n",
                       "[global]\nresolvers = [\"dns.local:53\"]\n"),
              ElementsAre(HasSubstr("weir.toml:2:14: global.resolvers[0]: \"dns.local:53\" is "
                                    "not IP:PORT")));
  EXPECT_THAT(errorsOf("backends = [{ address = \"a.b:80\" }]\n",
                       "[global]\nresolve_interval = \"500ms\"\n"),
              ElementsAre("weir.toml:2:20: global.resolve_interval: must be at least \"1s\", "
                          "got \"500ms\""));
}

}  // namespace
}  // namespace weir::config
