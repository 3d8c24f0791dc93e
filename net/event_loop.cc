#include "net/event_loop.h"

#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "base/check.h"

namespace keel::net {
namespace {

// The eventfd's epoll data; real watches count up from 1.
constexpr uint64_t kWakeWatchId = 0;

Nanos clock_now(clockid_t id) {
  timespec ts;
  const int rc = clock_gettime(id, &ts);
  KEEL_CHECK(rc == 0, "clock_gettime: {}", std::strerror(errno));
  return Nanos(int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec);
}

absl::StatusCode errno_code(int err) {
  switch (err) {
    case ENOENT:
      return absl::StatusCode::kNotFound;
    case EEXIST:
    case EADDRINUSE:
      return absl::StatusCode::kAlreadyExists;
    case ENOSPC:
    case EDQUOT:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case ENOBUFS:
    case EFBIG:
      return absl::StatusCode::kResourceExhausted;
    case EIO:
      return absl::StatusCode::kDataLoss;
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::StatusCode::kPermissionDenied;
    case EINVAL:
    case ENAMETOOLONG:
    case ENOTDIR:
    case EISDIR:
    case ENOTEMPTY:
    case EAFNOSUPPORT:
    case EADDRNOTAVAIL:
      return absl::StatusCode::kInvalidArgument;
    case ECONNREFUSED:
    case ECONNRESET:
    case ECONNABORTED:
    case EPIPE:
    case ETIMEDOUT:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ENETDOWN:
    case EHOSTDOWN:
    case ENOTCONN:
    case EAGAIN:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kInternal;
  }
}

int timeout_ms_ceil(Nanos wait) {
  if (wait <= Nanos(0)) return 0;
  const int64_t ms = (wait.count() + 999'999) / 1'000'000;
  return ms > 60'000 ? 60'000 : int(ms);
}

}  // namespace

Nanos monotonic_now() { return clock_now(CLOCK_MONOTONIC); }

int64_t wall_now_ms() { return clock_now(CLOCK_REALTIME).count() / 1'000'000; }

absl::Status errno_status(int err, std::string_view what) {
  std::string message(what);
  message += ": ";
  message += std::strerror(err);
  return absl::Status(errno_code(err), message);
}

absl::StatusOr<std::unique_ptr<EventLoop>> EventLoop::create() {
  const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) return errno_status(errno, "epoll_create1");
  const int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    const int err = errno;
    close(epoll_fd);
    return errno_status(err, "eventfd");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeWatchId;
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &ev) != 0) {
    const int err = errno;
    close(wake_fd);
    close(epoll_fd);
    return errno_status(err, "epoll_ctl(eventfd)");
  }
  return std::unique_ptr<EventLoop>(new EventLoop(epoll_fd, wake_fd));
}

EventLoop::EventLoop(int epoll_fd, int wake_fd) : epoll_fd_(epoll_fd), wake_fd_(wake_fd) {}

EventLoop::~EventLoop() {
  // Watchers must be gone first: a live watch here would be a dangling pointer later.
  KEEL_CHECK(watches_.empty(), "{} fds still watched at loop destruction", watches_.size());
  close(wake_fd_);
  close(epoll_fd_);
}

EventLoop::TimerId EventLoop::add_timer(Nanos deadline, Fn fn) {
  KEEL_CHECK(fn != nullptr);
  const TimerId id = next_timer_id_++;
  timers_.emplace(TimerKey{deadline.count(), id}, std::move(fn));
  timer_deadlines_.emplace(id, deadline.count());
  return id;
}

bool EventLoop::cancel_timer(TimerId id) {
  auto it = timer_deadlines_.find(id);
  if (it == timer_deadlines_.end()) return false;
  timers_.erase(TimerKey{it->second, id});
  timer_deadlines_.erase(it);
  return true;
}

void EventLoop::run_soon(Fn fn) {
  KEEL_CHECK(fn != nullptr);
  deferred_.push_back(std::move(fn));
}

void EventLoop::post(Fn fn) {
  KEEL_CHECK(fn != nullptr);
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    KEEL_CHECK(posted_.size() < kPostedPendingMax, "posted work queue overflow");
    was_empty = posted_.empty();
    posted_.push_back(std::move(fn));
    posted_nonempty_.store(true, std::memory_order_release);
  }
  // One wake-up per batch: the loop drains the whole queue when it wakes.
  if (was_empty) wake();
}

void EventLoop::stop() {
  stop_requested_.store(true, std::memory_order_release);
  wake();
}

void EventLoop::wake() {
  const uint64_t one = 1;
  for (;;) {
    const ssize_t n = write(wake_fd_, &one, sizeof(one));
    if (n == ssize_t(sizeof(one))) return;
    if (n < 0 && errno == EINTR) continue;
    // EAGAIN: the counter is saturated, so the loop is certainly going to wake.
    if (n < 0 && errno == EAGAIN) return;
    KEEL_CHECK(false, "eventfd write: {}", std::strerror(errno));
  }
}

absl::StatusOr<EventLoop::WatchId> EventLoop::watch(int fd, uint32_t events, Watcher* watcher) {
  KEEL_CHECK(fd >= 0 && watcher != nullptr);
  const WatchId id = next_watch_id_++;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = id;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0)
    return errno_status(errno, "epoll_ctl(ADD)");
  watches_.emplace(id, Watch{fd, events, watcher});
  return id;
}

absl::Status EventLoop::rewatch(WatchId id, uint32_t events) {
  auto it = watches_.find(id);
  KEEL_CHECK(it != watches_.end(), "rewatch of unknown watch {}", id);
  if (it->second.events == events) return absl::OkStatus();
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = id;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, it->second.fd, &ev) != 0) {
    return errno_status(errno, "epoll_ctl(MOD)");
  }
  it->second.events = events;
  return absl::OkStatus();
}

void EventLoop::unwatch(WatchId id) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  // Failure is harmless (the fd was already closed, which removes it from the epoll set), and
  // dispatch ignores ids no longer in watches_.
  epoll_event ev{};
  (void)epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second.fd, &ev);
  watches_.erase(it);
}

void EventLoop::run() {
  while (!stop_requested_.load(std::memory_order_acquire)) run_once(Nanos(std::chrono::hours(1)));
  stop_requested_.store(false, std::memory_order_release);
}

bool EventLoop::run_until(absl::FunctionRef<bool()> done, Nanos timeout) {
  const Nanos end = monotonic_now() + timeout;
  while (!done()) {
    const Nanos now = monotonic_now();
    if (now >= end) return false;
    if (stop_requested_.load(std::memory_order_acquire)) {
      stop_requested_.store(false, std::memory_order_release);
      return done();
    }
    run_once(end - now);
  }
  return true;
}

Nanos EventLoop::idle_wait(Nanos max_wait) const {
  if (!deferred_.empty() || posted_nonempty_.load(std::memory_order_acquire)) return Nanos(0);
  if (stop_requested_.load(std::memory_order_acquire)) return Nanos(0);
  if (timers_.empty()) return max_wait;
  const Nanos until_timer = Nanos(timers_.begin()->first.first) - monotonic_now();
  return std::max(Nanos(0), std::min(max_wait, until_timer));
}

size_t EventLoop::run_once(Nanos max_wait) {
  size_t ran = run_deferred();
  const Nanos wait = ran > 0 ? Nanos(0) : idle_wait(max_wait);
  epoll_event events[kEventsPerWaitMax];
  const int n = epoll_wait(epoll_fd_, events, kEventsPerWaitMax, timeout_ms_ceil(wait));
  if (n < 0) {
    KEEL_CHECK(errno == EINTR, "epoll_wait: {}", std::strerror(errno));
  } else {
    ran += dispatch(events, n);
  }
  ran += run_due_timers();
  ran += run_posted();
  return ran;
}

size_t EventLoop::dispatch(const epoll_event* events, int count) {
  size_t ran = 0;
  for (int i = 0; i < count; i++) {
    const uint64_t id = events[i].data.u64;
    if (id == kWakeWatchId) {
      uint64_t value;
      // Resets the counter; EAGAIN means another read already did.
      while (read(wake_fd_, &value, sizeof(value)) < 0 && errno == EINTR) {
      }
      continue;  // posted work runs in run_posted()
    }
    // Looked up per event: an earlier callback in this batch may have unwatched it.
    auto it = watches_.find(id);
    if (it == watches_.end()) continue;
    it->second.watcher->on_ready(events[i].events);
    ran++;
  }
  return ran;
}

size_t EventLoop::run_due_timers() {
  size_t ran = 0;
  const int64_t now = monotonic_now().count();
  // Only timers that existed when this pass began: a zero-delay timer re-arming itself runs
  // once per iteration instead of starving the loop.
  const TimerId id_limit = next_timer_id_;
  while (!timers_.empty()) {
    auto it = timers_.begin();
    if (it->first.first > now) break;
    if (it->first.second >= id_limit) {
      // Skip over timers added during this pass, without losing earlier-added due ones.
      auto next = std::find_if(it, timers_.end(), [&](const auto& entry) {
        return entry.first.first > now || entry.first.second < id_limit;
      });
      if (next == timers_.end() || next->first.first > now) break;
      it = next;
    }
    Fn fn = std::move(it->second);
    timer_deadlines_.erase(it->first.second);
    timers_.erase(it);
    fn();
    ran++;
  }
  return ran;
}

size_t EventLoop::run_deferred() {
  if (deferred_.empty()) return 0;
  std::vector<Fn> batch;
  batch.swap(deferred_);
  for (Fn& fn : batch) fn();
  return batch.size();
}

size_t EventLoop::run_posted() {
  if (!posted_nonempty_.load(std::memory_order_acquire)) return 0;
  std::vector<Fn> batch;
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    batch.swap(posted_);
    posted_nonempty_.store(false, std::memory_order_release);
  }
  for (Fn& fn : batch) fn();
  return batch.size();
}

}  // namespace keel::net
