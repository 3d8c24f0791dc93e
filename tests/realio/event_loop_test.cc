// The real event loop and RealClock: timer order and cancellation, the env::Clock contract
// (never inside start_timer, cancel means never), posting from other threads, stop().
#include "net/event_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "net/loop_group.h"
#include "net/real_clock.h"

namespace keel::net {
namespace {

using std::chrono::milliseconds;

std::unique_ptr<EventLoop> make_loop() {
  auto loop = EventLoop::create();
  EXPECT_TRUE(loop.ok()) << loop.status();
  return std::move(*loop);
}

TEST(EventLoopTest, TimersFireInDeadlineOrder) {
  auto loop = make_loop();
  RealClock clock(*loop);
  std::vector<int> order;
  clock.start_timer(milliseconds(30), [&] { order.push_back(30); });
  clock.start_timer(milliseconds(10), [&] { order.push_back(10); });
  clock.start_timer(milliseconds(20), [&] { order.push_back(20); });
  clock.start_timer(milliseconds(0), [&] { order.push_back(0); });
  EXPECT_TRUE(loop->run_until([&] { return order.size() == 4; }, std::chrono::seconds(5)));
  EXPECT_EQ(order, (std::vector<int>{0, 10, 20, 30}));
  EXPECT_EQ(clock.timers_pending(), 0u);
}

TEST(EventLoopTest, EqualDeadlinesFireInInsertionOrder) {
  auto loop = make_loop();
  std::vector<int> order;
  const Nanos at = monotonic_now() + milliseconds(5);
  for (int i = 0; i < 50; i++) loop->add_timer(at, [&order, i] { order.push_back(i); });
  EXPECT_TRUE(loop->run_until([&] { return order.size() == 50; }, std::chrono::seconds(5)));
  for (int i = 0; i < 50; i++) EXPECT_EQ(order[i], i);
}

TEST(EventLoopTest, TimerNeverRunsInsideStartTimerAndNeverEarly) {
  auto loop = make_loop();
  RealClock clock(*loop);
  bool fired = false;
  const env::Nanos start = clock.now();
  env::Nanos fired_at{0};
  clock.start_timer(env::Nanos(0), [&] { fired = true; });
  EXPECT_FALSE(fired);  // a zero delay still waits for the loop
  bool late_fired = false;
  clock.start_timer(milliseconds(25), [&] {
    late_fired = true;
    fired_at = clock.now();
  });
  EXPECT_TRUE(loop->run_until([&] { return late_fired; }, std::chrono::seconds(5)));
  EXPECT_TRUE(fired);
  EXPECT_GE(fired_at - start, milliseconds(25));
}

TEST(EventLoopTest, CancelGuaranteesNoFireEvenWhenAlreadyDue) {
  auto loop = make_loop();
  RealClock clock(*loop);
  int second_fired = 0;
  env::TimerId second = 0;
  // Both due at about the same time: the first cancels the second from inside its callback,
  // after the second was already due in the same pass.
  clock.start_timer(milliseconds(5), [&] { clock.cancel_timer(second); });
  second = clock.start_timer(milliseconds(5), [&] { second_fired++; });
  const env::TimerId third = clock.start_timer(milliseconds(1), [&] { second_fired += 100; });
  clock.cancel_timer(third);
  clock.cancel_timer(third);      // twice: a no-op
  clock.cancel_timer(123456789);  // unknown: a no-op
  bool done = false;
  clock.start_timer(milliseconds(40), [&] { done = true; });
  EXPECT_TRUE(loop->run_until([&] { return done; }, std::chrono::seconds(5)));
  EXPECT_EQ(second_fired, 0);
  clock.cancel_timer(second);  // already cancelled: a no-op
}

TEST(EventLoopTest, DestroyingTheClockCancelsItsTimers) {
  auto loop = make_loop();
  int fired = 0;
  {
    RealClock clock(*loop);
    clock.start_timer(milliseconds(1), [&] { fired++; });
    clock.start_timer(milliseconds(2), [&] { fired++; });
    EXPECT_EQ(loop->timers_pending(), 2u);
  }
  EXPECT_EQ(loop->timers_pending(), 0u);
  loop->run_until([] { return false; }, milliseconds(20));
  EXPECT_EQ(fired, 0);
}

TEST(EventLoopTest, EnvTimerRearmsAndCancelsOnDestruction) {
  auto loop = make_loop();
  RealClock clock(*loop);
  int fired = 0;
  {
    env::Timer timer(clock);
    timer.start(milliseconds(1), [&] { fired += 1; });
    timer.start(milliseconds(2), [&] { fired += 10; });  // re-arming cancels the first
    EXPECT_TRUE(loop->run_until([&] { return fired > 0; }, std::chrono::seconds(5)));
    EXPECT_EQ(fired, 10);
    EXPECT_FALSE(timer.armed());
    timer.start(milliseconds(1), [&] { fired += 100; });
  }  // destroyed while armed
  loop->run_until([] { return false; }, milliseconds(20));
  EXPECT_EQ(fired, 10);
}

TEST(EventLoopTest, SelfRearmingZeroDelayTimerDoesNotStarveOthers) {
  auto loop = make_loop();
  RealClock clock(*loop);
  int spins = 0;
  std::function<void()> arm = [&] {
    clock.start_timer(env::Nanos(0), [&] {
      spins++;
      arm();
    });
  };
  arm();
  bool other = false;
  clock.start_timer(milliseconds(10), [&] { other = true; });
  EXPECT_TRUE(loop->run_until([&] { return other; }, std::chrono::seconds(5)));
  EXPECT_GT(spins, 0);
}

TEST(EventLoopTest, PostFromOtherThreadsRunsOnTheLoopInOrderPerThread) {
  auto loop = make_loop();
  constexpr int kThreads = 4;
  constexpr int kPosts = 5000;
  std::vector<std::vector<int>> seen(kThreads);
  std::atomic<int> wrong_thread{0};
  const std::thread::id loop_thread = std::this_thread::get_id();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPosts; i++) {
        loop->post([&, t, i] {
          if (std::this_thread::get_id() != loop_thread) wrong_thread++;
          seen[t].push_back(i);
        });
      }
    });
  }
  size_t total = 0;
  EXPECT_TRUE(loop->run_until(
      [&] {
        total = 0;
        for (auto& s : seen) total += s.size();
        return total == size_t(kThreads * kPosts);
      },
      std::chrono::seconds(10)));
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong_thread.load(), 0);
  for (int t = 0; t < kThreads; t++) {
    ASSERT_EQ(seen[t].size(), size_t(kPosts));
    for (int i = 0; i < kPosts; i++) EXPECT_EQ(seen[t][i], i);
  }
}

TEST(EventLoopTest, PostWakesALoopWaitingWithoutTimers) {
  auto loop = make_loop();
  bool ran = false;
  std::thread poster([&] {
    std::this_thread::sleep_for(milliseconds(50));
    loop->post([&] { ran = true; });
  });
  const Nanos start = monotonic_now();
  // No timers: the loop would sleep for the whole max_wait unless the post wakes it.
  loop->run_once(std::chrono::seconds(10));
  const Nanos waited = monotonic_now() - start;
  poster.join();
  loop->run_until([&] { return ran; }, std::chrono::seconds(1));
  EXPECT_TRUE(ran);
  EXPECT_LT(waited, std::chrono::seconds(5));
}

TEST(EventLoopTest, StopFromAnotherThreadEndsRun) {
  auto loop = make_loop();
  RealClock clock(*loop);
  int ticks = 0;
  std::function<void()> tick = [&] {
    ticks++;
    clock.start_timer(milliseconds(1), tick);
  };
  tick();
  std::thread stopper([&] {
    std::this_thread::sleep_for(milliseconds(50));
    loop->stop();
  });
  loop->run();
  stopper.join();
  EXPECT_GT(ticks, 1);
}

TEST(EventLoopTest, RunSoonRunsNextIterationInOrder) {
  auto loop = make_loop();
  std::vector<int> order;
  loop->run_soon([&] {
    order.push_back(1);
    loop->run_soon([&] { order.push_back(3); });
  });
  loop->run_soon([&] { order.push_back(2); });
  EXPECT_TRUE(order.empty());
  EXPECT_TRUE(loop->run_until([&] { return order.size() == 3; }, std::chrono::seconds(1)));
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(EventLoopTest, WallClockIsUnixTime) {
  auto loop = make_loop();
  RealClock clock(*loop);
  const int64_t unix_ms = int64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
  EXPECT_NEAR(double(clock.wall_time_ms()), double(unix_ms), 5000.0);
  const env::Nanos a = clock.now();
  const env::Nanos b = clock.now();
  EXPECT_LE(a, b);
}

TEST(EventLoopTest, LoopGroupStepsSeveralLoopsOnOneThread) {
  auto a = make_loop();
  auto b = make_loop();
  RealClock clock_a(*a), clock_b(*b);
  int fired_a = 0, fired_b = 0;
  clock_a.start_timer(milliseconds(5), [&] { fired_a++; });
  clock_b.start_timer(milliseconds(15), [&] { fired_b++; });
  std::thread poster([&] { b->post([&] { fired_b += 10; }); });
  EventLoop* loops[] = {a.get(), b.get()};
  EXPECT_TRUE(run_loops_until(
      loops, [&] { return fired_a == 1 && fired_b == 11; }, std::chrono::seconds(5)));
  poster.join();
}

TEST(EventLoopTest, ErrnoStatusMapsCodesAndKeepsText) {
  EXPECT_EQ(errno_status(ENOENT, "open x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(errno_status(ENOSPC, "w").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(errno_status(EIO, "w").code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(errno_status(ECONNREFUSED, "c").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(errno_status(ECONNRESET, "c").code(), absl::StatusCode::kUnavailable);
  const absl::Status s = errno_status(ENOENT, "open x");
  EXPECT_NE(s.message().find("open x"), std::string_view::npos);
  EXPECT_NE(s.message().find(std::strerror(ENOENT)), std::string_view::npos);
}

}  // namespace
}  // namespace keel::net
