#include "env/random.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>

namespace keel::env {
namespace {

TEST(Random, SameSeedSameSequence) {
  Random a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; i++) {
    uint64_t x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    differs |= x != c.next_u64();
  }
  EXPECT_TRUE(differs);
}

// Pins the algorithm: a change to the generator or the seeding silently changes every
// recorded seed's behaviour, so it must show up as a test failure.
TEST(Random, KnownValues) {
  Random r(0);
  EXPECT_EQ(r.next_u64(), 0x99ec5f36cb75f2b4ULL);
  EXPECT_EQ(r.uniform(10), 7u);
}

TEST(Random, DeriveIsIndependentOfDrawsSoFar) {
  Random a(7), b(7);
  for (int i = 0; i < 10; i++) (void)b.next_u64();
  Random da = a.derive("net"), db = b.derive("net"), dc = a.derive("disk");
  EXPECT_EQ(da.next_u64(), db.next_u64());
  EXPECT_NE(a.derive("net").next_u64(), dc.next_u64());
}

TEST(Random, UniformCoversRangeWithoutBias) {
  Random r(1);
  std::map<uint64_t, int> counts;
  for (int i = 0; i < 60000; i++) counts[r.uniform(6)]++;
  ASSERT_EQ(counts.size(), 6u);
  for (auto& [v, n] : counts) EXPECT_NEAR(n, 10000, 500) << v;
}

RC_GTEST_PROP(Random, RangeStaysInBounds, (uint64_t seed, int32_t lo, uint16_t width)) {
  Random r(seed);
  const int64_t hi = int64_t(lo) + width;
  for (int i = 0; i < 20; i++) {
    int64_t v = r.range(lo, hi);
    RC_ASSERT(v >= lo);
    RC_ASSERT(v <= hi);
  }
}

TEST(Random, ChanceExtremes) {
  Random r(3);
  for (int i = 0; i < 100; i++) {
    EXPECT_FALSE(r.chance(0, 5));
    EXPECT_TRUE(r.chance(5, 5));
  }
}

}  // namespace
}  // namespace keel::env
