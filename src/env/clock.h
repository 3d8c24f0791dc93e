// Clock: the node's only view of time, and its timers.
//
// Contract:
// - now() is monotonic for this node: it never decreases. It may run faster or slower than
//   other nodes' clocks (drift) and may jump forward (a pause). Safety must never depend on
//   it; only liveness (timeouts) may.
// - wall_time_ms() is Unix time in milliseconds, used for record timestamps and retention
//   by age only. It may jump in either direction.
// - start_timer(delay, fire) calls `fire` once, on the node's event loop, no earlier than
//   `delay` after now() by this clock. Callbacks never run inside start_timer itself.
// - cancel_timer(id) guarantees `fire` will not run. Cancelling a fired or unknown id is a
//   no-op. Timers of a crashed node never fire.
#pragma once

#include <chrono>
#include <cstdint>

#include "absl/functional/any_invocable.h"

namespace keel::env {

using Nanos = std::chrono::nanoseconds;
using TimerId = uint64_t;

class Clock {
 public:
  virtual ~Clock() = default;

  virtual Nanos now() const = 0;
  virtual int64_t wall_time_ms() const = 0;

  virtual TimerId start_timer(Nanos delay, absl::AnyInvocable<void()> fire) = 0;
  virtual void cancel_timer(TimerId id) = 0;
};

// A timer that cancels itself when destroyed or re-armed: the usual way for an object to
// own a timeout without risking a callback after its death.
class Timer {
 public:
  explicit Timer(Clock& clock) : clock_(&clock) {}
  ~Timer() { cancel(); }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Arms the timer (cancelling any earlier arming).
  void start(Nanos delay, absl::AnyInvocable<void()> fire) {
    cancel();
    armed_ = true;
    id_ = clock_->start_timer(delay, [this, f = std::move(fire)]() mutable {
      armed_ = false;
      f();
    });
  }
  void cancel() {
    if (armed_) clock_->cancel_timer(id_);
    armed_ = false;
  }
  bool armed() const { return armed_; }

 private:
  Clock* clock_;
  TimerId id_ = 0;
  bool armed_ = false;
};

}  // namespace keel::env
