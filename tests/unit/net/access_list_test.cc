// net::AccessList (longest prefix decides, the default, families kept apart) and the list
// file reader behind allow_file / deny_file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "net/access_list.h"

namespace weir::net {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

Cidr prefix(std::string_view text) {
  auto parsed = Cidr::parse(text);
  EXPECT_TRUE(parsed.has_value()) << text;
  return parsed.value_or(Cidr{});
}

SockAddr peer(std::string_view text) {
  auto parsed = SockAddr::parse(text);
  EXPECT_TRUE(parsed.has_value()) << text;
  return parsed.value_or(SockAddr{});
}

AccessList listOf(std::vector<std::pair<std::string_view, bool>> rules) {
  std::vector<AccessList::Rule> out;
  for (auto [text, allow] : rules) {
    out.push_back({prefix(text), allow});
  }
  return AccessList(std::move(out));
}

TEST(AccessList, ADenyListAloneLetsEveryoneElseIn) {
  AccessList list = listOf({{"192.0.2.0/24", false}});
  EXPECT_TRUE(list.defaultAllow());
  EXPECT_FALSE(list.allows(peer("192.0.2.77:5000")));
  EXPECT_TRUE(list.allows(peer("192.0.3.1:5000")));
  EXPECT_TRUE(list.allows(peer("[2001:db8::1]:5000")));
}

TEST(AccessList, AnAllowListRefusesEveryoneElse) {
  AccessList list = listOf({{"10.0.0.0/8", true}, {"10.9.0.0/16", false}});
  EXPECT_FALSE(list.defaultAllow());
  EXPECT_TRUE(list.allows(peer("10.1.2.3:1")));
  EXPECT_FALSE(list.allows(peer("10.9.2.3:1")));
  EXPECT_FALSE(list.allows(peer("11.0.0.1:1")));
  EXPECT_FALSE(list.allows(peer("[::1]:1")));
}

TEST(AccessList, TheLongestPrefixDecidesWhateverTheOrder) {
  for (bool reversed : {false, true}) {
    std::vector<std::pair<std::string_view, bool>> rules = {
        {"0.0.0.0/0", true}, {"10.0.0.0/8", false}, {"10.1.0.0/16", true},
        {"10.1.1.0/24", false}, {"10.1.1.7", true}};
    if (reversed) {
      std::reverse(rules.begin(), rules.end());
    }
    AccessList list = listOf(rules);
    EXPECT_TRUE(list.allows(peer("9.9.9.9:1")));
    EXPECT_FALSE(list.allows(peer("10.2.0.1:1")));
    EXPECT_TRUE(list.allows(peer("10.1.2.1:1")));
    EXPECT_FALSE(list.allows(peer("10.1.1.6:1")));
    EXPECT_TRUE(list.allows(peer("10.1.1.7:1")));
    // A prefix that is not on a byte boundary.
    AccessList odd = listOf({{"10.1.0.0/17", false}});
    EXPECT_FALSE(odd.allows(peer("10.1.127.255:1")));
    EXPECT_TRUE(odd.allows(peer("10.1.128.0:1")));
  }
}

TEST(AccessList, FamiliesNeverMatchEachOther) {
  // ::/0 covers every IPv6 address, ::ffff:0:0/96 included, but no IPv4 client.
  AccessList list = listOf({{"::/0", false}});
  EXPECT_FALSE(list.allows(peer("[2001:db8::1]:1")));
  EXPECT_TRUE(list.allows(peer("192.0.2.1:1")));
  // An IPv4 client of a dual-stack socket is an IPv4 client.
  EXPECT_TRUE(list.allows(peer("[::ffff:192.0.2.1]:1")));
  AccessList v4 = listOf({{"0.0.0.0/0", false}, {"2001:db8::/32", true}});
  EXPECT_FALSE(v4.allows(peer("[::ffff:192.0.2.1]:1")));
  EXPECT_FALSE(v4.allows(peer("192.0.2.1:1")));
  EXPECT_TRUE(v4.allows(peer("[2001:db8:5::1]:1")));
  EXPECT_FALSE(v4.allows(peer("[2001:db9::1]:1")));  // not listed; something is allowed
}

TEST(AccessList, APrefixListedTwiceCountsOnce) {
  AccessList list = listOf({{"10.0.0.0/8", false}, {"10.0.0.0/8", false}, {"::1", true}});
  EXPECT_EQ(list.rules().size(), 2u);
  EXPECT_EQ(list.denyCount(), 1u);
  EXPECT_EQ(list.allowCount(), 1u);
}

TEST(AccessList, KeysTagTheFamilyAndCountItsByte) {
  AccessList::Key v4 = AccessList::keyOf(prefix("10.1.0.0/16"));
  EXPECT_EQ(v4.bits, 8u + 16u);
  EXPECT_EQ(v4.bytes[0], 4);
  EXPECT_EQ(v4.bytes[1], 10);
  EXPECT_EQ(v4.bytes[2], 1);
  AccessList::Key v6 = AccessList::keyOf(prefix("2001:db8::/32"));
  EXPECT_EQ(v6.bits, 8u + 32u);
  EXPECT_EQ(v6.bytes[0], 6);
  EXPECT_EQ(v6.bytes[1], 0x20);
}

std::vector<std::string> parsed(std::string_view text, std::vector<std::string>* problems) {
  std::vector<ListFileEntry> out;
  std::vector<ListFileProblem> bad;
  size_t more = 0;
  parseListFile(text, out, bad, 10, &more);
  std::vector<std::string> lines;
  for (const auto& e : out) {
    lines.push_back(std::to_string(e.line) + " " + e.prefix.toString());
  }
  for (const auto& p : bad) {
    problems->push_back(std::to_string(p.line) + ":" + std::to_string(p.column) + " " + p.what);
  }
  if (more > 0) {
    problems->push_back("+" + std::to_string(more));
  }
  return lines;
}

TEST(ListFile, OnePrefixPerLineWithCommentsBlanksAndCrLf) {
  std::vector<std::string> problems;
  EXPECT_THAT(parsed("# blocklist\n10.0.0.0/8\n\n  192.0.2.1\t# one host\r\n2001:db8::/32\r\n"
                     "   \n\t# indented comment\n198.51.100.0/24",
                     &problems),
              ElementsAre("2 10.0.0.0/8", "4 192.0.2.1/32", "5 2001:db8::/32",
                          "8 198.51.100.0/24"));
  EXPECT_THAT(problems, IsEmpty());
}

TEST(ListFile, ProblemsNameTheLineAndColumn) {
  std::vector<std::string> problems;
  EXPECT_THAT(parsed("10.0.0.0/8\n  10.1.0.0/8\n10.0.0.1 10.0.0.2\nnot-an-address\n", &problems),
              ElementsAre("1 10.0.0.0/8"));
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_THAT(problems[0], ::testing::StartsWith("2:3 \"10.1.0.0/8\": bits set"));
  EXPECT_THAT(problems[1], ::testing::StartsWith("3:1 one address or prefix per line"));
  EXPECT_THAT(problems[2], ::testing::StartsWith("4:1 \"not-an-address\": expected"));
}

TEST(ListFile, ANulByteIsAProblemOfItsLine) {
  std::vector<std::string> problems;
  const std::string text("10.0.0.0/8\n10.\0.0.0/8\n192.0.2.0/24\n", 35);
  EXPECT_THAT(parsed(text, &problems), ElementsAre("1 10.0.0.0/8", "3 192.0.2.0/24"));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0], ::testing::StartsWith("2:4 a NUL byte"));
}

TEST(ListFile, ProblemsPastTheLimitAreCounted) {
  std::string text;
  for (int i = 0; i < 15; ++i) {
    text += "bad" + std::to_string(i) + "\n";
  }
  std::vector<std::string> problems;
  EXPECT_THAT(parsed(text, &problems), IsEmpty());
  ASSERT_EQ(problems.size(), 11u);
  EXPECT_EQ(problems.back(), "+5");
}

}  // namespace
}  // namespace weir::net
