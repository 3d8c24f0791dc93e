// The scheduler's queue: events run in (time, tie, seq) order, cancel removes exactly the
// named event (destroying its callback at once), and time never runs backwards.
#include "sim/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <vector>

#include "env/random.h"

namespace keel::sim {
namespace {

TEST(Scheduler, SameTimeEventsRunInSchedulingOrderWithoutShuffle) {
  Scheduler scheduler;
  std::vector<int> ran;
  scheduler.at(20, [&] { ran.push_back(3); });
  scheduler.at(10, [&] { ran.push_back(1); });
  scheduler.at(10, [&] { ran.push_back(2); });
  scheduler.run_until(100);
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(scheduler.now_ns(), 100);
}

TEST(Scheduler, CancelDestroysTheCallbackAtOnceAndIsIdempotent) {
  Scheduler scheduler;
  auto token = std::make_shared<int>(0);
  bool ran = false;
  const Scheduler::EventId id = scheduler.at(10, [&ran, token] { ran = true; });
  EXPECT_EQ(token.use_count(), 2);
  scheduler.cancel(id);
  EXPECT_EQ(token.use_count(), 1);
  EXPECT_EQ(scheduler.pending(), 0u);
  scheduler.cancel(id);
  // Its spare node is reused for the next event; the old id must not cancel that one.
  bool later = false;
  scheduler.at(10, [&later] { later = true; });
  scheduler.cancel(id);
  EXPECT_EQ(scheduler.pending(), 1u);
  scheduler.run_until(100);
  EXPECT_FALSE(ran);
  EXPECT_TRUE(later);
}

TEST(Scheduler, CancelledEventsDoNotAdvanceTime) {
  Scheduler scheduler;
  const Scheduler::EventId id = scheduler.at(50, [] {});
  scheduler.cancel(id);
  EXPECT_FALSE(scheduler.step());
  EXPECT_EQ(scheduler.now_ns(), 0);
  EXPECT_TRUE(scheduler.run_until(10));
  EXPECT_EQ(scheduler.now_ns(), 10);
}

// Many cancelled events (timers restarted over and over) recycle their nodes; the survivors
// still run in order.
TEST(Scheduler, ManyCancelsKeepTheOrder) {
  Scheduler scheduler;
  scheduler.shuffle_ties(3);
  std::vector<int> ran;
  std::vector<std::pair<Scheduler::EventId, int>> kept;
  for (int i = 0; i < 10'000; i++) {
    const Scheduler::EventId id = scheduler.at(1000 - i % 1000, [&ran, i] { ran.push_back(i); });
    if (i % 97 == 0) {
      kept.emplace_back(id, i);
    } else {
      scheduler.cancel(id);
    }
  }
  EXPECT_EQ(scheduler.pending(), kept.size());
  std::sort(kept.begin(), kept.end());
  std::vector<int> expected;
  for (const auto& [id, i] : kept) expected.push_back(i);
  scheduler.run_until(2000);
  EXPECT_EQ(ran, expected);
}

// A model of the queue as it used to be (an ordered map of ids), driven with random
// schedules, cancels and steps, including events scheduled from inside events.
TEST(Scheduler, MatchesAnOrderedMapModel) {
  for (uint64_t seed = 1; seed <= 20; seed++) {
    Scheduler scheduler;
    scheduler.shuffle_ties(seed);
    env::Random rng(seed * 7919);
    std::map<Scheduler::EventId, int> model;  // id -> label
    std::vector<Scheduler::EventId> ids;
    std::vector<int> ran;
    int next_label = 0;
    auto schedule = [&](auto& self, int64_t when) -> void {
      const int label = next_label++;
      const Scheduler::EventId id = scheduler.at(when, [&, label] {
        ran.push_back(label);
        if (label % 5 == 0) self(self, scheduler.now_ns() + int64_t(rng.uniform(3)));
      });
      model.emplace(id, label);
      ids.push_back(id);
    };
    std::vector<int> expected;
    for (int round = 0; round < 2000; round++) {
      const uint64_t op = rng.uniform(10);
      if (op < 5) {
        schedule(schedule, scheduler.now_ns() + int64_t(rng.uniform(4)));
      } else if (op < 7 && !ids.empty()) {
        const Scheduler::EventId id = ids[rng.uniform(ids.size())];
        scheduler.cancel(id);
        model.erase(id);
      } else if (!model.empty()) {
        const auto [id, label] = *model.begin();
        model.erase(model.begin());
        expected.push_back(label);
        const size_t before = ran.size();
        ASSERT_TRUE(scheduler.step());
        ASSERT_EQ(ran.size(), before + 1);
        EXPECT_EQ(ran.back(), label) << "seed " << seed << " round " << round;
        EXPECT_EQ(scheduler.now_ns(), id.time_ns);
      } else {
        EXPECT_FALSE(scheduler.step());
      }
      ASSERT_EQ(scheduler.pending(), model.size());
    }
    EXPECT_EQ(ran, expected);
  }
}

}  // namespace
}  // namespace keel::sim
