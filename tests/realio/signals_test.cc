// SignalWatcher: signals become loop events; the mask is restored afterwards.
#include "net/signals.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <vector>

#include "net/event_loop.h"

namespace keel::net {
namespace {

TEST(SignalWatcherTest, SignalsArriveOnTheLoopAndTheMaskIsRestored) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop.ok());
  std::vector<int> got;
  {
    auto watcher = SignalWatcher::create(**loop, {SIGUSR1, SIGUSR2},
                                         [&](int signal) { got.push_back(signal); });
    ASSERT_TRUE(watcher.ok()) << watcher.status();
    ASSERT_EQ(raise(SIGUSR1), 0);  // blocked: pending until the loop reads it
    EXPECT_TRUE(got.empty());
    ASSERT_TRUE((*loop)->run_until([&] { return got.size() == 1; }, std::chrono::seconds(5)));
    ASSERT_EQ(raise(SIGUSR2), 0);
    ASSERT_TRUE((*loop)->run_until([&] { return got.size() == 2; }, std::chrono::seconds(5)));
    EXPECT_EQ(got, (std::vector<int>{SIGUSR1, SIGUSR2}));
  }
  sigset_t now;
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, nullptr, &now), 0);
  EXPECT_FALSE(sigismember(&now, SIGUSR1));
  EXPECT_FALSE(sigismember(&now, SIGUSR2));
}

TEST(SignalWatcherTest, CallbackMayDestroyTheWatcherToStopTheLoop) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop.ok());
  std::unique_ptr<SignalWatcher> watcher;
  auto created = SignalWatcher::create(**loop, {SIGTERM}, [&](int) {
    watcher.reset();
    (*loop)->stop();
  });
  ASSERT_TRUE(created.ok());
  watcher = std::move(*created);
  ASSERT_EQ(raise(SIGTERM), 0);
  (*loop)->run();  // returns because the handler stopped it
  EXPECT_EQ(watcher, nullptr);
}

}  // namespace
}  // namespace keel::net
