#include "tls/sni.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace weir::tls {
namespace {

std::vector<config::SniRoute> routes(std::vector<std::string> names) {
  std::vector<config::SniRoute> out;
  for (std::string& name : names) {
    out.push_back({std::move(name), "pool-" + std::to_string(out.size()), out.size()});
  }
  return out;
}

TEST(SniTable, ExactNames) {
  SniTable table(routes({"api.example.com", "example.com", "www.example.org"}));
  EXPECT_EQ(table.size(), 3u);
  EXPECT_EQ(table.lookup("api.example.com"), 0u);
  EXPECT_EQ(table.lookup("example.com"), 1u);
  EXPECT_EQ(table.lookup("www.example.org"), 2u);
  EXPECT_EQ(table.lookup("example.org"), std::nullopt);
  EXPECT_EQ(table.lookup("a.api.example.com"), std::nullopt);
  EXPECT_EQ(table.lookup("api.example.co"), std::nullopt);
  EXPECT_EQ(table.lookup("pi.example.com"), std::nullopt);
}

TEST(SniTable, WildcardMatchesExactlyOneLabel) {
  SniTable table(routes({"*.example.com"}));
  EXPECT_EQ(table.lookup("a.example.com"), 0u);
  EXPECT_EQ(table.lookup("www-1.example.com"), 0u);
  EXPECT_EQ(table.lookup("example.com"), std::nullopt);
  EXPECT_EQ(table.lookup("a.b.example.com"), std::nullopt);
  EXPECT_EQ(table.lookup(".example.com"), std::nullopt);  // an empty label is no label
  EXPECT_EQ(table.lookup("aexample.com"), std::nullopt);
  EXPECT_EQ(table.lookup("a.example.com.evil"), std::nullopt);
}

TEST(SniTable, ExactWinsOverWildcard) {
  // Sorted by name as the config keeps them: "*" sorts before letters.
  SniTable table(routes({"*.a.example.com", "*.example.com", "a.example.com", "b.a.example.com"}));
  EXPECT_EQ(table.lookup("a.example.com"), 2u);    // exact, though *.example.com matches too
  EXPECT_EQ(table.lookup("b.a.example.com"), 3u);  // exact over *.a.example.com
  EXPECT_EQ(table.lookup("c.a.example.com"), 0u);
  EXPECT_EQ(table.lookup("c.example.com"), 1u);
  EXPECT_EQ(table.lookup("d.c.example.com"), std::nullopt);
}

TEST(SniTable, CaseAndTrailingDotAreIgnored) {
  SniTable table(routes({"*.example.com", "api.example.com"}));
  EXPECT_EQ(table.lookup("API.Example.COM"), 1u);
  EXPECT_EQ(table.lookup("api.example.com."), 1u);
  EXPECT_EQ(table.lookup("Other.EXAMPLE.com."), 0u);
  EXPECT_EQ(table.lookup("api.example.com.."), std::nullopt);  // only one dot goes
  EXPECT_EQ(table.lookup("example.com."), std::nullopt);
}

TEST(SniTable, EmptyAndOverlongNamesMatchNothing) {
  SniTable table(routes({"*.example.com", "a"}));
  EXPECT_EQ(table.lookup(""), std::nullopt);
  EXPECT_EQ(table.lookup("."), std::nullopt);
  EXPECT_EQ(table.lookup("A."), 1u);
  // 255 bytes is the longest name looked at.
  std::string longest = std::string(243, 'x') + ".example.com";
  ASSERT_EQ(longest.size(), 255u);
  EXPECT_EQ(table.lookup(longest), 0u);
  EXPECT_EQ(table.lookup(longest + "."), 0u);
  EXPECT_EQ(table.lookup("x" + longest), std::nullopt);
}

TEST(SniTable, EmptyTable) {
  SniTable table;
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.lookup("example.com"), std::nullopt);
  EXPECT_EQ(SniTable(routes({})).lookup("a.b"), std::nullopt);
}

TEST(SniTable, EntriesForCertificates) {
  // Names as certificates carry them (any case), several per index; the first one wins.
  SniTable table({{"WWW.Example.com", 0},
                  {"example.com", 0},
                  {"*.Example.COM", 1},
                  {"www.example.com", 2},
                  {"*.example.com", 3},
                  {"mail.example.net.", 4}});
  EXPECT_EQ(table.size(), 4u);
  EXPECT_EQ(table.lookup("www.example.com"), 0u);
  EXPECT_EQ(table.lookup("example.com"), 0u);
  EXPECT_EQ(table.lookup("ftp.example.com"), 1u);
  EXPECT_EQ(table.lookup("mail.example.net"), 4u);
}

}  // namespace
}  // namespace weir::tls
