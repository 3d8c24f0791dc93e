// SimClock: one node's clock in the simulated world, over the Scheduler's global time.
//
// Each node's hardware clock runs at its own rate (drift, an integer ratio in parts per
// million) and can jump: the monotonic clock only forward (a pause: the process stopped and
// time went on), the wall clock either way (an NTP step). Drift and jumps belong to the node,
// so they survive crashes; timers belong to the running process and die with it.
//
// Timers map a node-local delay to global time through the current rate; when the rate
// changes or the clock jumps, pending timers are re-mapped, and a timer never fires before
// its local deadline (the env::Clock contract). Every fired timer is recorded in the trace.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "env/clock.h"
#include "sim/scheduler.h"

namespace keel::sim {

class SimClock final : public env::Clock {
 public:
  // Rates are (kPpmOne + drift_ppm) / kPpmOne local nanoseconds per global nanosecond.
  static constexpr int64_t kPpmOne = 1'000'000;
  // The fastest and slowest a simulated clock may run: 0.5x to 1.5x real rate.
  static constexpr int64_t kDriftPpmMax = 500'000;
  // Wall time at global time zero: 2026-01-01T00:00:00Z, so timestamps look plausible.
  static constexpr int64_t kWallEpochMs = 1'767'225'600'000;

  SimClock(Scheduler& scheduler, std::string node);
  SimClock(const SimClock&) = delete;
  SimClock& operator=(const SimClock&) = delete;
  ~SimClock() override;

  env::Nanos now() const override { return env::Nanos(local_at(scheduler_->now_ns())); }
  int64_t wall_time_ms() const override;
  // Timers started while the node is down (stopped()) are ignored: they would belong to a
  // process that no longer exists.
  env::TimerId start_timer(env::Nanos delay, absl::AnyInvocable<void()> fire) override;
  void cancel_timer(env::TimerId id) override;

  // Faults (the nemesis). Drift is clamped to +-kDriftPpmMax.
  void set_drift_ppm(int64_t drift_ppm);
  int64_t drift_ppm() const { return drift_ppm_; }
  // Moves the monotonic (and wall) clock forward by `forward_ns` >= 0 at once.
  void jump_monotonic(int64_t forward_ns);
  // Steps the wall clock by `delta_ms` (either sign); the monotonic clock is unaffected.
  void jump_wall(int64_t delta_ms);

  // Crash: drops every pending timer (none of them will ever fire) and ignores new ones
  // until resume().
  void stop();
  void resume() { stopped_ = false; }
  bool stopped() const { return stopped_; }

  size_t timers_pending() const { return order_.size(); }
  uint64_t timers_fired() const { return timers_fired_; }

  // The smallest global time at which the local clock reads >= local_ns.
  int64_t global_for_local(int64_t local_ns) const;
  // The local clock reading at global time global_ns (>= the last rebase point).
  int64_t local_at(int64_t global_ns) const;

 private:
  struct PendingTimer {
    int64_t deadline_local_ns;
    Scheduler::EventId event;
    absl::AnyInvocable<void()> fire;
  };

  // Largest spans whose products in local_at and global_for_local fit in 64 bits.
  static constexpr int64_t kElapsed64Max = INT64_MAX / (kPpmOne + kDriftPpmMax);
  static constexpr int64_t kAhead64Max = (INT64_MAX - (kPpmOne + kDriftPpmMax)) / kPpmOne;

  // Makes the current instant the base of the linear map, before a rate change or jump.
  void rebase();
  void schedule(env::TimerId id, PendingTimer& timer);
  void on_due(env::TimerId id);
  void remap_all();
  // The index in order_ of timer `id`, or order_.size() if it is not pending.
  size_t find(env::TimerId id) const;
  // Removes order_[i] and returns its callback; the slot is free again.
  absl::AnyInvocable<void()> remove(size_t i);

  Scheduler* scheduler_;
  std::string node_;
  int64_t drift_ppm_ = 0;
  int64_t base_global_ns_ = 0;
  int64_t base_local_ns_ = 0;
  int64_t wall_offset_ms_ = 0;
  bool stopped_ = false;
  env::TimerId next_id_ = 1;
  uint64_t timers_fired_ = 0;
  // Pending timers: (id, slot) sorted by id, the timers themselves in reusable slots. Ids
  // grow, so a new timer appends; a node has few timers at once, and a map's node allocation
  // and rebalancing per timer were a visible cost.
  struct Order {
    env::TimerId id;
    uint32_t slot;
  };
  std::vector<Order> order_;
  std::vector<PendingTimer> slots_;
  std::vector<uint32_t> free_slots_;
};

}  // namespace keel::sim
