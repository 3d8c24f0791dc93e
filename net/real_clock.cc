#include "net/real_clock.h"

#include "base/check.h"

namespace keel::net {

RealClock::~RealClock() {
  for (const auto& [id, loop_id] : loop_timers_) loop_->cancel_timer(loop_id);
}

env::TimerId RealClock::start_timer(env::Nanos delay, absl::AnyInvocable<void()> fire) {
  KEEL_CHECK(fire != nullptr);
  const env::TimerId id = next_id_++;
  const env::Nanos deadline = monotonic_now() + std::max(delay, env::Nanos(0));
  // Captures `this`: safe, because the destructor cancels every timer still in loop_timers_.
  const EventLoop::TimerId loop_id =
      loop_->add_timer(deadline, [this, id, fire = std::move(fire)]() mutable {
        loop_timers_.erase(id);
        fire();
      });
  loop_timers_.emplace(id, loop_id);
  return id;
}

void RealClock::cancel_timer(env::TimerId id) {
  auto it = loop_timers_.find(id);
  if (it == loop_timers_.end()) return;  // fired, cancelled or unknown: a no-op
  const bool cancelled = loop_->cancel_timer(it->second);
  KEEL_CHECK(cancelled, "timer {} pending here but unknown to the loop", id);
  loop_timers_.erase(it);
}

}  // namespace keel::net
