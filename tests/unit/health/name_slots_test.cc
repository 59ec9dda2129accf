// planSlots: which slots of a named backend empty and fill after an answer.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "health/name_slots.h"

namespace weir::health {
namespace {

net::SockAddr at(const std::string& text) { return *net::SockAddr::parse(text); }

using Slots = std::vector<std::optional<net::SockAddr>>;

TEST(NameSlots, FillsEmptySlotsInOrder) {
  SlotPlan plan = planSlots(Slots(3), {0, 0, 0}, {at("10.0.0.2:80"), at("10.0.0.1:80")});
  EXPECT_TRUE(plan.empty.empty());
  ASSERT_EQ(plan.fill.size(), 2u);
  EXPECT_EQ(plan.fill[0].first, 0u);
  EXPECT_EQ(plan.fill[0].second.toString(), "10.0.0.1:80");  // sorted
  EXPECT_EQ(plan.fill[1].first, 1u);
  EXPECT_EQ(plan.fill[1].second.toString(), "10.0.0.2:80");
  EXPECT_EQ(plan.dropped, 0u);
}

TEST(NameSlots, AnAddressThatStaysKeepsItsSlot) {
  Slots current = {at("10.0.0.1:80"), std::nullopt, at("10.0.0.3:80")};
  SlotPlan plan = planSlots(current, {5, 0, 7}, {at("10.0.0.3:80"), at("10.0.0.1:80")});
  EXPECT_TRUE(plan.empty.empty());
  EXPECT_TRUE(plan.fill.empty());
}

TEST(NameSlots, GoneAddressesEmptyAndNewOnesPreferIdleSlots) {
  // Slot 0 loses its address but still holds 4 connections; slot 2 is empty and idle: the
  // new address goes to slot 2, not into slot 0's counts.
  Slots current = {at("10.0.0.1:80"), at("10.0.0.2:80"), std::nullopt};
  SlotPlan plan = planSlots(current, {4, 1, 0}, {at("10.0.0.2:80"), at("[2001:db8::5]:80")});
  ASSERT_EQ(plan.empty.size(), 1u);
  EXPECT_EQ(plan.empty[0], 0u);
  ASSERT_EQ(plan.fill.size(), 1u);
  EXPECT_EQ(plan.fill[0].first, 2u);
  EXPECT_EQ(plan.fill[0].second.toString(), "[2001:db8::5]:80");
}

TEST(NameSlots, ABusySlotIsReusedOnlyWhenNothingElseIsFree) {
  Slots current = {at("10.0.0.1:80"), at("10.0.0.2:80")};
  SlotPlan plan = planSlots(current, {4, 9}, {at("10.0.0.7:80"), at("10.0.0.8:80"),
                                              at("10.0.0.9:80")});
  EXPECT_EQ(plan.empty, (std::vector<size_t>{0, 1}));
  ASSERT_EQ(plan.fill.size(), 2u);
  EXPECT_EQ(plan.fill[0].first, 0u);  // fewer connections first
  EXPECT_EQ(plan.fill[1].first, 1u);
  EXPECT_EQ(plan.fill[0].second.toString(), "10.0.0.7:80");
  EXPECT_EQ(plan.fill[1].second.toString(), "10.0.0.8:80");
  EXPECT_EQ(plan.dropped, 1u);  // the last in sorted order: the same one every time
}

TEST(NameSlots, DuplicatesInTheAnswerCountOnce) {
  SlotPlan plan = planSlots(Slots(2), {0, 0}, {at("10.0.0.1:80"), at("10.0.0.1:80")});
  ASSERT_EQ(plan.fill.size(), 1u);
  EXPECT_EQ(plan.dropped, 0u);
}

TEST(NameSlots, TheSameAddressInTwoSlotsKeepsOne) {
  // Cannot come from planSlots itself, but a region carried over may hold anything.
  Slots current = {at("10.0.0.1:80"), at("10.0.0.1:80")};
  SlotPlan plan = planSlots(current, {0, 0}, {at("10.0.0.1:80")});
  EXPECT_EQ(plan.empty, (std::vector<size_t>{1}));
  EXPECT_TRUE(plan.fill.empty());
}

}  // namespace
}  // namespace weir::health
