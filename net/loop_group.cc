#include "net/loop_group.h"

#include <poll.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "base/check.h"

namespace keel::net {

bool run_loops_until(std::span<EventLoop* const> loops, absl::FunctionRef<bool()> done,
                     Nanos timeout) {
  KEEL_CHECK(!loops.empty());
  const Nanos end = monotonic_now() + timeout;
  std::vector<pollfd> fds(loops.size());
  for (size_t i = 0; i < loops.size(); i++) fds[i] = pollfd{loops[i]->poll_fd(), POLLIN, 0};
  while (!done()) {
    const Nanos now = monotonic_now();
    if (now >= end) return false;
    size_t ran = 0;
    for (EventLoop* loop : loops) ran += loop->run_once(Nanos(0));
    if (ran > 0) continue;
    Nanos wait = end - now;
    for (EventLoop* loop : loops) wait = std::min(wait, loop->idle_wait(wait));
    if (wait <= Nanos(0)) continue;
    const int64_t wait_ms = (wait.count() + 999'999) / 1'000'000;
    const int rc = poll(fds.data(), fds.size(), int(std::min<int64_t>(wait_ms, 1000)));
    KEEL_CHECK(rc >= 0 || errno == EINTR, "poll: {}", std::strerror(errno));
  }
  return true;
}

}  // namespace keel::net
