#include "net/cidr.h"

#include <netinet/in.h>

#include <gtest/gtest.h>

#include <string>

namespace weir::net {
namespace {

SockAddr addr(std::string_view text) {
  auto parsed = SockAddr::parse(text);
  EXPECT_TRUE(parsed.has_value()) << text;
  return parsed.value_or(SockAddr{});
}

Cidr cidr(std::string_view text) {
  auto parsed = Cidr::parse(text);
  EXPECT_TRUE(parsed.has_value()) << text;
  return parsed.value_or(Cidr{});
}

// Why `text` does not parse ("" if it does).
std::string errorOf(std::string_view text) {
  std::string error;
  if (Cidr::parse(text, error)) {
    ADD_FAILURE() << "parsed: " << text;
  }
  return error;
}

TEST(Cidr, ParsesPrefixesAndBareAddresses) {
  const struct {
    std::string_view text;
    int family;
    unsigned length;
    std::string_view canonical;
  } cases[] = {
      {"10.0.0.0/8", AF_INET, 8, "10.0.0.0/8"},
      {"192.0.2.1", AF_INET, 32, "192.0.2.1/32"},
      {"192.0.2.1/32", AF_INET, 32, "192.0.2.1/32"},
      {"0.0.0.0/0", AF_INET, 0, "0.0.0.0/0"},
      {"172.16.0.0/12", AF_INET, 12, "172.16.0.0/12"},
      {"2001:db8::/32", AF_INET6, 32, "2001:db8::/32"},
      {"2001:0DB8:0000::/32", AF_INET6, 32, "2001:db8::/32"},
      {"::1", AF_INET6, 128, "::1/128"},
      {"::/0", AF_INET6, 0, "::/0"},
      {"fe80::/10", AF_INET6, 10, "fe80::/10"},
      {"::ffff:10.0.0.0/104", AF_INET6, 104, "::ffff:10.0.0.0/104"},
  };
  for (const auto& c : cases) {
    auto parsed = Cidr::parse(c.text);
    ASSERT_TRUE(parsed.has_value()) << c.text;
    EXPECT_EQ(parsed->family(), c.family) << c.text;
    EXPECT_EQ(parsed->prefixLength(), c.length) << c.text;
    EXPECT_EQ(parsed->toString(), c.canonical) << c.text;
    EXPECT_EQ(Cidr::parse(parsed->toString()), parsed) << c.text;
  }
}

TEST(Cidr, RejectsMalformedText) {
  for (std::string_view text :
       {"", "/8", "10.0.0/8", "10/8", "010.0.0.0/8", "10.0.0.256", "1.2.3.4.5", " 10.0.0.0/8",
        "10.0.0.0 /8", "any", "localhost", "[::1]", "[::1]/128", "fe80::1%eth0",
        "2001:db8:::/48", "10.0.0.0:80"}) {
    EXPECT_FALSE(Cidr::parse(text).has_value()) << text;
    EXPECT_EQ(errorOf(text),
              "expected an IPv4 or IPv6 address, or a prefix such as \"10.0.0.0/8\" or "
              "\"2001:db8::/32\"")
        << text;
  }
  // A NUL ends the C string inet_pton reads: what precedes it must not parse as the whole.
  EXPECT_FALSE(Cidr::parse(std::string_view("10.0.0.1\0junk", 13)).has_value());
  EXPECT_FALSE(Cidr::parse(std::string_view("10.0.0.0/8\0", 11)).has_value());
}

TEST(Cidr, PrefixLengthIsPlainDecimalInRange) {
  for (std::string_view text :
       {"10.0.0.0/", "10.0.0.0/33", "10.0.0.0/08", "10.0.0.0/+8", "10.0.0.0/-8", "10.0.0.0/0x8",
        "10.0.0.0/8.0", "10.0.0.0/00", "10.0.0.0/1000", "10.0.0.0/4294967304", "10.0.0.0/8 ",
        "10.0.0.0/ 8", "10.0.0.0/8/8"}) {
    EXPECT_EQ(errorOf(text), "the prefix length must be 0..32, in decimal without leading zeros")
        << text;
  }
  for (std::string_view text : {"::/129", "::/0128", "::/", "::/a"}) {
    EXPECT_EQ(errorOf(text), "the prefix length must be 0..128, in decimal without leading zeros")
        << text;
  }
}

TEST(Cidr, HostBitsAreAnError) {
  EXPECT_EQ(errorOf("10.1.2.3/8"),
            "bits set past the prefix length (did you mean \"10.0.0.0/8\"?)");
  EXPECT_EQ(errorOf("192.168.1.1/0"),
            "bits set past the prefix length (did you mean \"0.0.0.0/0\"?)");
  EXPECT_EQ(errorOf("10.0.0.64/25"),
            "bits set past the prefix length (did you mean \"10.0.0.0/25\"?)");
  EXPECT_EQ(errorOf("2001:db8::1/64"),
            "bits set past the prefix length (did you mean \"2001:db8::/64\"?)");
  EXPECT_EQ(errorOf("2001:db8:8000::/32"),
            "bits set past the prefix length (did you mean \"2001:db8::/32\"?)");
}

TEST(Cidr, Contains) {
  const Cidr v4 = cidr("10.0.0.0/8");
  EXPECT_TRUE(v4.contains(addr("10.0.0.0:1")));
  EXPECT_TRUE(v4.contains(addr("10.255.255.255:80")));
  EXPECT_FALSE(v4.contains(addr("11.0.0.0:80")));
  EXPECT_FALSE(v4.contains(addr("9.255.255.255:80")));

  const Cidr odd = cidr("192.168.4.0/22");  // a length that splits a byte
  EXPECT_TRUE(odd.contains(addr("192.168.4.1:80")));
  EXPECT_TRUE(odd.contains(addr("192.168.7.255:80")));
  EXPECT_FALSE(odd.contains(addr("192.168.8.0:80")));
  EXPECT_FALSE(odd.contains(addr("192.168.3.255:80")));

  const Cidr host = cidr("192.0.2.1");
  EXPECT_TRUE(host.contains(addr("192.0.2.1:5555")));
  EXPECT_FALSE(host.contains(addr("192.0.2.2:5555")));

  const Cidr v6 = cidr("2001:db8::/33");
  EXPECT_TRUE(v6.contains(addr("[2001:db8::1]:80")));
  EXPECT_TRUE(v6.contains(addr("[2001:db8:7fff:ffff::1]:80")));
  EXPECT_FALSE(v6.contains(addr("[2001:db8:8000::]:80")));
  EXPECT_FALSE(v6.contains(addr("[2001:db9::]:80")));
}

TEST(Cidr, FamiliesMatchExceptIpv4MappedAddresses) {
  const Cidr v4 = cidr("10.0.0.0/8");
  EXPECT_TRUE(v4.contains(addr("[::ffff:10.1.2.3]:80")));
  EXPECT_FALSE(v4.contains(addr("[::ffff:11.1.2.3]:80")));
  EXPECT_FALSE(v4.contains(addr("[::10.1.2.3]:80")));  // IPv4-compatible, not mapped
  EXPECT_FALSE(v4.contains(addr("[a00::]:80")));       // the same first bits, but IPv6
  EXPECT_TRUE(cidr("0.0.0.0/0").contains(addr("[::ffff:1.2.3.4]:80")));
  EXPECT_FALSE(cidr("0.0.0.0/0").contains(addr("[::1]:80")));

  // An IPv6 prefix holds IPv6 addresses only: "::/0" is not "anyone".
  EXPECT_TRUE(cidr("::/0").contains(addr("[::1]:80")));
  EXPECT_FALSE(cidr("::/0").contains(addr("10.0.0.1:80")));
  EXPECT_TRUE(cidr("::ffff:0.0.0.0/96").contains(addr("[::ffff:10.0.0.1]:80")));
  EXPECT_FALSE(cidr("::ffff:0.0.0.0/96").contains(addr("10.0.0.1:80")));

  EXPECT_FALSE(Cidr{}.contains(addr("10.0.0.1:80")));
  EXPECT_FALSE(Cidr{}.contains(SockAddr{}));
  EXPECT_FALSE(v4.contains(SockAddr{}));
}

TEST(Cidr, Equality) {
  EXPECT_EQ(cidr("10.0.0.1"), cidr("10.0.0.1/32"));
  EXPECT_EQ(cidr("2001:db8::/32"), cidr("2001:DB8:0::/32"));
  EXPECT_FALSE(cidr("10.0.0.0/8") == cidr("10.0.0.0/9"));
  EXPECT_FALSE(cidr("0.0.0.0/0") == cidr("::/0"));
  EXPECT_FALSE(cidr("::a00:0/104") == cidr("10.0.0.0/8"));
  EXPECT_EQ(Cidr{}, Cidr{});
  EXPECT_EQ(Cidr{}.toString(), "?");
}

}  // namespace
}  // namespace weir::net
