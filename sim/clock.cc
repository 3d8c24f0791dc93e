#include "sim/clock.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/check.h"

namespace keel::sim {

SimClock::SimClock(Scheduler& scheduler, std::string node)
    : scheduler_(&scheduler), node_(std::move(node)) {
  base_global_ns_ = scheduler_->now_ns();
  base_local_ns_ = base_global_ns_;
}

SimClock::~SimClock() { stop(); }

int64_t SimClock::local_at(int64_t global_ns) const {
  KEEL_CHECK(global_ns >= base_global_ns_);
  const int64_t elapsed = global_ns - base_global_ns_;
  const int64_t rate = kPpmOne + drift_ppm_;
  // The same value in 64 bits while the product fits (about 100 minutes since the last
  // rebase): 128-bit division is a library call, and every clock read and timer comes here.
  if (elapsed <= kElapsed64Max) return base_local_ns_ + elapsed * rate / kPpmOne;
  return base_local_ns_ + int64_t(__int128(elapsed) * rate / kPpmOne);
}

int64_t SimClock::global_for_local(int64_t local_ns) const {
  const int64_t now_global = scheduler_->now_ns();
  if (local_ns <= local_at(now_global)) return now_global;
  // local(g) = base_local + floor((g - base_global) * rate / kPpmOne) >= local_ns
  //   <=> (g - base_global) >= ceil((local_ns - base_local) * kPpmOne / rate).
  const int64_t ahead = local_ns - base_local_ns_;  // > 0: local_ns is past local_at(now)
  const int64_t rate = kPpmOne + drift_ppm_;
  int64_t g;
  if (ahead <= kAhead64Max) {  // as in local_at: the same value in 64 bits while it fits
    g = base_global_ns_ + (ahead * kPpmOne + rate - 1) / rate;
  } else {
    const __int128 need = __int128(ahead) * kPpmOne;
    g = base_global_ns_ + int64_t((need + rate - 1) / rate);
  }
  KEEL_CHECK(local_at(g) >= local_ns);
  return std::max(g, now_global);
}

int64_t SimClock::wall_time_ms() const {
  return kWallEpochMs + now().count() / 1'000'000 + wall_offset_ms_;
}

env::TimerId SimClock::start_timer(env::Nanos delay, absl::AnyInvocable<void()> fire) {
  const env::TimerId id = next_id_++;
  if (stopped_) return id;  // a dying process: the timer can never fire
  KEEL_CHECK(delay.count() >= 0, "negative timer delay {}", delay.count());
  PendingTimer& timer = timers_[id];
  timer.deadline_local_ns = now().count() + delay.count();
  timer.fire = std::move(fire);
  schedule(id, timer);
  return id;
}

void SimClock::cancel_timer(env::TimerId id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return;
  scheduler_->cancel(it->second.event);
  timers_.erase(it);
}

void SimClock::schedule(env::TimerId id, PendingTimer& timer) {
  // A timer set for "now" still runs later, never inside start_timer (the contract); the
  // scheduler guarantees that by queueing it.
  timer.event =
      scheduler_->at(global_for_local(timer.deadline_local_ns), [this, id] { on_due(id); });
}

void SimClock::on_due(env::TimerId id) {
  auto it = timers_.find(id);
  KEEL_CHECK(it != timers_.end(), "timer {} fired after cancel on {}", id, node_);
  KEEL_CHECK(!stopped_);
  KEEL_CHECK(now().count() >= it->second.deadline_local_ns);
  absl::AnyInvocable<void()> fire = std::move(it->second.fire);
  timers_.erase(it);
  timers_fired_++;
  scheduler_->recordf(node_, "timer", "{}", id);
  fire();
}

void SimClock::rebase() {
  const int64_t now_global = scheduler_->now_ns();
  base_local_ns_ = local_at(now_global);
  base_global_ns_ = now_global;
}

void SimClock::remap_all() {
  for (auto& [id, timer] : timers_) {
    scheduler_->cancel(timer.event);
    schedule(id, timer);
  }
}

void SimClock::set_drift_ppm(int64_t drift_ppm) {
  rebase();
  drift_ppm_ = std::clamp(drift_ppm, -kDriftPpmMax, kDriftPpmMax);
  scheduler_->record(node_, "clock.drift", fmt::format("{}ppm", drift_ppm_));
  remap_all();
}

void SimClock::jump_monotonic(int64_t forward_ns) {
  KEEL_CHECK(forward_ns >= 0, "monotonic jumps only go forward");
  rebase();
  base_local_ns_ += forward_ns;
  scheduler_->record(node_, "clock.jump", fmt::format("+{}ns", forward_ns));
  remap_all();  // overdue timers fire now, as after a pause
}

void SimClock::jump_wall(int64_t delta_ms) {
  wall_offset_ms_ += delta_ms;
  scheduler_->record(node_, "clock.wall", fmt::format("{:+}ms", delta_ms));
}

void SimClock::stop() {
  stopped_ = true;
  for (auto& [id, timer] : timers_) scheduler_->cancel(timer.event);
  timers_.clear();
}

}  // namespace keel::sim
