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
  uint32_t slot;
  if (free_slots_.empty()) {
    slot = uint32_t(slots_.size());
    slots_.emplace_back();
  } else {
    slot = free_slots_.back();
    free_slots_.pop_back();
  }
  order_.push_back(Order{id, slot});  // the largest id yet
  PendingTimer& timer = slots_[slot];
  timer.deadline_local_ns = now().count() + delay.count();
  timer.fire = std::move(fire);
  schedule(id, timer);
  return id;
}

size_t SimClock::find(env::TimerId id) const {
  auto it = std::lower_bound(order_.begin(), order_.end(), id,
                             [](const Order& o, env::TimerId v) { return o.id < v; });
  return it != order_.end() && it->id == id ? size_t(it - order_.begin()) : order_.size();
}

absl::AnyInvocable<void()> SimClock::remove(size_t i) {
  const uint32_t slot = order_[i].slot;
  order_.erase(order_.begin() + ptrdiff_t(i));
  free_slots_.push_back(slot);
  absl::AnyInvocable<void()> fire = std::move(slots_[slot].fire);
  slots_[slot].fire = nullptr;  // a free slot holds nothing alive
  return fire;
}

void SimClock::cancel_timer(env::TimerId id) {
  const size_t i = find(id);
  if (i == order_.size()) return;
  scheduler_->cancel(slots_[order_[i].slot].event);
  remove(i);  // the callback dies here
}

void SimClock::schedule(env::TimerId id, PendingTimer& timer) {
  // A timer set for "now" still runs later, never inside start_timer (the contract); the
  // scheduler guarantees that by queueing it.
  timer.event =
      scheduler_->at(global_for_local(timer.deadline_local_ns), [this, id] { on_due(id); });
}

void SimClock::on_due(env::TimerId id) {
  const size_t i = find(id);
  KEEL_CHECK(i != order_.size(), "timer {} fired after cancel on {}", id, node_);
  KEEL_CHECK(!stopped_);
  KEEL_CHECK(now().count() >= slots_[order_[i].slot].deadline_local_ns);
  absl::AnyInvocable<void()> fire = remove(i);
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
  for (const Order& o : order_) {
    scheduler_->cancel(slots_[o.slot].event);
    schedule(o.id, slots_[o.slot]);
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
  for (const Order& o : order_) scheduler_->cancel(slots_[o.slot].event);
  // Take the callbacks out first: destroying one must not see a half-cleared table.
  std::vector<absl::AnyInvocable<void()>> dead;
  dead.reserve(order_.size());
  for (const Order& o : order_) dead.push_back(std::move(slots_[o.slot].fire));
  order_.clear();
  slots_.clear();
  free_slots_.clear();
}

}  // namespace keel::sim
