// EventLoop: the one thread of a real node. Every callback of a real Env (timers, socket
// readiness, disk completions) runs here, one at a time, exactly as the simulator runs a
// node's events one at a time.
//
// Built on epoll (level-triggered), an eventfd that wakes the loop for work posted from other
// threads (fsync completions), and a timer queue ordered by (deadline, id) whose nearest
// deadline bounds each epoll_wait.
//
// Threading: post() and stop() may be called from any thread. Everything else must be called
// on the thread that runs the loop (or, before it runs, on the thread that owns it).
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace keel::net {

using Nanos = std::chrono::nanoseconds;

// CLOCK_MONOTONIC as nanoseconds since an arbitrary origin (boot).
Nanos monotonic_now();
// CLOCK_REALTIME in milliseconds since the Unix epoch.
int64_t wall_now_ms();

// An errno value as a Status whose message is "<what>: <strerror text>". The code follows
// the meaning: ENOENT -> NotFound, ENOSPC/EDQUOT/EMFILE/ENFILE/ENOMEM -> ResourceExhausted,
// EIO -> DataLoss, ECONNREFUSED/ECONNRESET/EPIPE/ETIMEDOUT/... -> Unavailable, and so on.
absl::Status errno_status(int err, std::string_view what);

class EventLoop {
 public:
  using Fn = absl::AnyInvocable<void()>;
  using TimerId = uint64_t;
  using WatchId = uint64_t;

  // Receives readiness of a watched file descriptor (EPOLLIN, EPOLLOUT, EPOLLERR, ...).
  class Watcher {
   public:
    virtual ~Watcher() = default;
    virtual void on_ready(uint32_t events) = 0;
  };

  // Limits.
  static constexpr int kEventsPerWaitMax = 128;
  static constexpr size_t kPostedPendingMax = 1 << 20;  // a runaway producer is a bug

  // Creates the epoll instance and the wake-up eventfd.
  static absl::StatusOr<std::unique_ptr<EventLoop>> create();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // --- Timers (loop thread). `fn` runs once on the loop, no earlier than `deadline`
  // (monotonic_now() scale), never inside add_timer. Timers due at one instant run in the
  // order they were added.
  TimerId add_timer(Nanos deadline, Fn fn);
  // Guarantees the timer's fn will not run. Returns false if it already ran or is unknown.
  bool cancel_timer(TimerId id);
  size_t timers_pending() const { return timers_.size(); }

  // --- Deferred work (loop thread): runs `fn` on the next loop iteration, before waiting.
  void run_soon(Fn fn);

  // --- Thread-safe: runs `fn` on the loop thread soon. Wakes the loop if it is waiting.
  void post(Fn fn);
  // Thread-safe: makes the current (or next) run() / run_until() return after the event
  // being handled.
  void stop();

  // --- File descriptors (loop thread). The watcher must outlive the watch (unwatch it in
  // its destructor). After unwatch(), on_ready is never called again for that watch, even
  // for events already returned by the current epoll_wait.
  absl::StatusOr<WatchId> watch(int fd, uint32_t events, Watcher* watcher);
  absl::Status rewatch(WatchId id, uint32_t events);
  void unwatch(WatchId id);

  // --- Running.
  // Runs until stop().
  void run();
  // Runs until done() holds (checked after every iteration) or `timeout` passed; returns
  // done(). For tests and tools.
  bool run_until(absl::FunctionRef<bool()> done, Nanos timeout);
  // One iteration: runs deferred work, waits at most `max_wait` (less if a timer is due
  // sooner; not at all if deferred or posted work is pending), dispatches ready fds, runs due
  // timers and posted work. Returns the number of callbacks run.
  size_t run_once(Nanos max_wait);

  // How long run_once(max_wait) would wait before anything is due; for multiplexing several
  // loops on one thread (see LoopGroup).
  Nanos idle_wait(Nanos max_wait) const;
  // Readable when some watched fd or posted work is ready (an epoll fd is pollable).
  int poll_fd() const { return epoll_fd_; }

 private:
  struct Watch {
    int fd;
    uint32_t events;
    Watcher* watcher;
  };
  using TimerKey = std::pair<int64_t, TimerId>;  // (deadline ns, id)

  EventLoop(int epoll_fd, int wake_fd);
  size_t run_deferred();
  size_t run_posted();
  size_t run_due_timers();
  size_t dispatch(const epoll_event* events, int count);
  void wake();

  const int epoll_fd_;
  const int wake_fd_;
  std::atomic<bool> stop_requested_{false};

  TimerId next_timer_id_ = 1;
  std::map<TimerKey, Fn> timers_;
  std::unordered_map<TimerId, int64_t> timer_deadlines_;

  std::vector<Fn> deferred_;

  WatchId next_watch_id_ = 1;
  std::unordered_map<WatchId, Watch> watches_;

  mutable std::mutex posted_mu_;
  std::vector<Fn> posted_;  // guarded by posted_mu_
  std::atomic<bool> posted_nonempty_{false};
};

}  // namespace keel::net
