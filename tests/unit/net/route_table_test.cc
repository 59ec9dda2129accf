#include "net/route_table.h"

#include <gtest/gtest.h>

#include <set>

namespace weir::net {
namespace {

HostAddr host(const char* text) { return HostAddr::of(*SockAddr::parse(text)); }

TEST(HostAddr, TheAddressOfASockAddrWithoutItsPort) {
  EXPECT_EQ(host("192.0.2.10:443").toString(), "192.0.2.10/32");
  EXPECT_EQ(host("[2001:db8::10]:443").toString(), "2001:db8::10/128");
  EXPECT_EQ(host("192.0.2.10:443"), host("192.0.2.10:80"));
  EXPECT_EQ(host("192.0.2.10:443").prefixLength(), 32u);
  EXPECT_EQ(host("[2001:db8::10]:443").size(), 16u);
}

TEST(HostAddr, OrdersAndComparesAsASetKey) {
  const std::set<HostAddr> set = {host("192.0.2.10:1"), host("192.0.2.10:2"),
                                  host("192.0.2.9:1"), host("[2001:db8::10]:1")};
  EXPECT_EQ(set.size(), 3u);
  EXPECT_NE(host("192.0.2.10:1"), host("[::ffff:192.0.2.10]:1"));
}

}  // namespace
}  // namespace weir::net
