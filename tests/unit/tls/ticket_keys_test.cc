#include "tls/ticket_keys.h"

#include <gtest/gtest.h>

#include <cstring>

namespace weir::tls {
namespace {

bool sameKey(const TicketKeys::Key& a, const TicketKeys::Key& b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

constexpr time_t kStart = 1800000000;  // any time; periods count from the epoch
constexpr uint32_t kHour = 3600;

// Two copies of one chain (a worker forked from the master) advanced separately, at different
// times, agree on every period's key: that is what lets workers share tickets without talking.
TEST(TicketKeys, CopiesAdvancedSeparatelyAgree) {
  TicketKeys master(kHour, kStart);
  TicketKeys worker = master;  // as fork copies it
  worker.advance(kStart + 3 * kHour);
  master.advance(kStart + kHour);
  master.advance(kStart + 3 * kHour + 5);
  EXPECT_EQ(master.epoch(), worker.epoch());
  EXPECT_TRUE(sameKey(master.current(), worker.current()));
}

TEST(TicketKeys, IndependentChainsDiffer) {
  TicketKeys a(kHour, kStart);
  TicketKeys b(kHour, kStart);
  EXPECT_FALSE(sameKey(a.current(), b.current()));
  const TicketKeys::Key* k = nullptr;
  EXPECT_EQ(b.find(a.current().name, &k), 0);
}

// A key encrypts for one period, decrypts (to be renewed) in the next, and is gone after.
TEST(TicketKeys, CurrentThenPreviousThenGone) {
  TicketKeys keys(kHour, kStart);
  const TicketKeys::Key first = keys.current();
  const TicketKeys::Key* k = nullptr;
  EXPECT_EQ(keys.find(first.name, &k), 1);
  EXPECT_TRUE(sameKey(*k, first));

  keys.advance(kStart + kHour);
  EXPECT_FALSE(sameKey(keys.current(), first));
  EXPECT_EQ(keys.find(first.name, &k), 2);
  EXPECT_TRUE(sameKey(*k, first));

  keys.advance(kStart + 2 * kHour);
  EXPECT_EQ(keys.find(first.name, &k), 0);
}

TEST(TicketKeys, TheClockSteppingBackKeepsTheCurrentKey) {
  TicketKeys keys(kHour, kStart);
  keys.advance(kStart + 2 * kHour);
  const TicketKeys::Key now = keys.current();
  keys.advance(kStart);
  EXPECT_TRUE(sameKey(keys.current(), now));
}

TEST(TicketKeys, PartsOfAKeyDiffer) {
  TicketKeys keys(kHour, kStart);
  const TicketKeys::Key& k = keys.current();
  EXPECT_NE(std::memcmp(k.aes, k.hmac, sizeof k.aes), 0);
  EXPECT_NE(std::memcmp(k.name, k.aes, sizeof k.name), 0);
}

}  // namespace
}  // namespace weir::tls
