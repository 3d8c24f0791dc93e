// Per-node clocks: drift moves only that node's clock, jumps, and timers mapped through them.
#include "sim/clock.h"

#include <gtest/gtest.h>

#include "tests/sim/probe.h"

namespace keel::sim {
namespace {

using testing::probe;
using testing::probe_world;
using testing::ProbeLog;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSecond = 1'000 * kMs;

TEST(SimClock, DriftMovesOnlyThatNodesClock) {
  ProbeLog log;
  auto world = probe_world(1, 3, &log);
  world->node(0).clock().set_drift_ppm(100'000);   // 10% fast
  world->node(1).clock().set_drift_ppm(-100'000);  // 10% slow
  const int64_t start = world->scheduler().now_ns();
  world->run_for(10 * kSecond);
  EXPECT_EQ(world->scheduler().now_ns() - start, 10 * kSecond);
  EXPECT_EQ(world->node(0).clock().now().count(), start + 11 * kSecond);
  EXPECT_EQ(world->node(1).clock().now().count(), start + 9 * kSecond);
  EXPECT_EQ(world->node(2).clock().now().count(), start + 10 * kSecond);
}

TEST(SimClock, TimersFireAtTheLocalDeadlineThroughDrift) {
  Scheduler scheduler;
  SimClock clock(scheduler, "n1");
  clock.set_drift_ppm(250'000);  // 1.25x: one local second takes 0.8 global seconds
  int64_t fired_global = -1, fired_local = -1;
  clock.start_timer(env::Nanos(kSecond), [&] {
    fired_global = scheduler.now_ns();
    fired_local = clock.now().count();
  });
  scheduler.run_until(10 * kSecond);
  EXPECT_EQ(fired_global, 800 * kMs);
  EXPECT_EQ(fired_local, kSecond);
}

TEST(SimClock, ADriftChangeWhileATimerIsPendingNeverFiresItEarly) {
  Scheduler scheduler;
  SimClock clock(scheduler, "n1");
  clock.set_drift_ppm(400'000);
  int64_t fired_local = -1;
  clock.start_timer(env::Nanos(kSecond), [&] { fired_local = clock.now().count(); });
  scheduler.run_until(300 * kMs);
  clock.set_drift_ppm(-400'000);  // now slow: the remaining local time takes longer
  scheduler.run_until(10 * kSecond);
  EXPECT_GE(fired_local, kSecond);
  EXPECT_LT(fired_local, kSecond + kMs);
}

TEST(SimClock, MonotonicJumpsGoForwardAndFireOverdueTimers) {
  Scheduler scheduler;
  SimClock clock(scheduler, "n1");
  bool fired = false;
  clock.start_timer(env::Nanos(10 * kSecond), [&] { fired = true; });
  scheduler.run_until(kSecond);
  const int64_t before = clock.now().count();
  clock.jump_monotonic(20 * kSecond);
  EXPECT_EQ(clock.now().count(), before + 20 * kSecond);
  scheduler.run_until(kSecond);  // same global instant: the overdue timer runs now
  EXPECT_TRUE(fired);
  EXPECT_DEATH(clock.jump_monotonic(-1), "only go forward");
}

TEST(SimClock, WallClockStepsEitherWayWithoutMovingMonotonicTime) {
  Scheduler scheduler;
  SimClock clock(scheduler, "n1");
  scheduler.run_until(kSecond);
  const int64_t wall = clock.wall_time_ms();
  const int64_t mono = clock.now().count();
  clock.jump_wall(-3'600'000);
  EXPECT_EQ(clock.wall_time_ms(), wall - 3'600'000);
  EXPECT_EQ(clock.now().count(), mono);
  clock.jump_wall(+7'200'000);
  EXPECT_EQ(clock.wall_time_ms(), wall + 3'600'000);
}

TEST(SimClock, CancelledAndStoppedTimersNeverFire) {
  Scheduler scheduler;
  SimClock clock(scheduler, "n1");
  int fired = 0;
  const env::TimerId a = clock.start_timer(env::Nanos(kMs), [&] { fired++; });
  clock.start_timer(env::Nanos(2 * kMs), [&] { fired++; });
  clock.cancel_timer(a);
  clock.cancel_timer(a);  // a no-op
  clock.stop();
  clock.start_timer(env::Nanos(kMs), [&] { fired++; });  // ignored while stopped
  scheduler.run_until(kSecond);
  EXPECT_EQ(fired, 0);
  EXPECT_EQ(clock.timers_pending(), 0u);
}

// Clock arithmetic runs in 64 bits for spans up to about 100 minutes and in 128 bits past
// them; both give the exact floor/ceiling of the linear map.
TEST(SimClock, LongSpansMapExactlyLikeShortOnes) {
  constexpr int64_t kHour = 3'600 * kSecond;
  for (const int64_t drift : {-333'333, 0, 123'457, 500'000}) {
    for (const int64_t span : {7 * kSecond + 3, 101 * 60 * kSecond, 3 * kHour + 11}) {
      Scheduler scheduler;
      SimClock clock(scheduler, "n1");
      clock.set_drift_ppm(drift);
      const __int128 rate = SimClock::kPpmOne + drift;
      scheduler.run_until(span);
      EXPECT_EQ(clock.now().count(), int64_t(__int128(span) * rate / SimClock::kPpmOne));
      // The first global instant at which the clock reads a local deadline `span` ahead.
      const int64_t local = clock.now().count() + span;
      const int64_t global = clock.global_for_local(local);
      EXPECT_GE(clock.local_at(global), local);
      EXPECT_LT(clock.local_at(global - 1), local);
    }
  }
}

TEST(SimClock, ANodesDriftAndJumpsSurviveItsCrash) {
  ProbeLog log;
  auto world = probe_world(2, 2, &log);
  world->node(0).clock().set_drift_ppm(50'000);
  world->node(0).clock().jump_monotonic(kSecond);
  world->run_for(kSecond);
  const int64_t before = world->node(0).clock().now().count();
  world->restart(0);
  EXPECT_EQ(world->node(0).clock().now().count(), before);
  EXPECT_EQ(world->node(0).clock().drift_ppm(), 50'000);
  EXPECT_EQ(probe(*world, 0).env().clock().now().count(), before);
}

}  // namespace
}  // namespace keel::sim
