// RealClock: env::Clock on a real EventLoop. now() is CLOCK_MONOTONIC, wall_time_ms() is
// CLOCK_REALTIME; timers run on the loop.
//
// Beyond env::Clock's contract: destroying the RealClock cancels every timer it started and
// has not yet fired, so a node torn down inside a still-running loop (a restart in a test)
// leaves no callback behind.
#pragma once

#include <map>

#include "env/clock.h"
#include "net/event_loop.h"

namespace keel::net {

class RealClock final : public env::Clock {
 public:
  explicit RealClock(EventLoop& loop) : loop_(&loop) {}
  ~RealClock() override;
  RealClock(const RealClock&) = delete;
  RealClock& operator=(const RealClock&) = delete;

  env::Nanos now() const override { return monotonic_now(); }
  int64_t wall_time_ms() const override { return wall_now_ms(); }

  // Negative delays count as zero. The callback runs on the loop, never inside this call.
  env::TimerId start_timer(env::Nanos delay, absl::AnyInvocable<void()> fire) override;
  void cancel_timer(env::TimerId id) override;

  size_t timers_pending() const { return loop_timers_.size(); }

 private:
  EventLoop* loop_;
  env::TimerId next_id_ = 1;
  // Our ids to the loop's ids, for the timers not yet fired or cancelled.
  std::map<env::TimerId, EventLoop::TimerId> loop_timers_;
};

}  // namespace keel::net
