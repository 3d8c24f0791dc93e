#include "net/signals.h"

#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>

#include "base/check.h"

namespace keel::net {

absl::StatusOr<std::unique_ptr<SignalWatcher>> SignalWatcher::create(
    EventLoop& loop, std::initializer_list<int> signals, SignalFn on_signal) {
  KEEL_CHECK(on_signal != nullptr && signals.size() > 0);
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : signals) {
    if (sigaddset(&mask, s) != 0) return errno_status(errno, "sigaddset");
  }
  sigset_t previous;
  if (const int rc = pthread_sigmask(SIG_BLOCK, &mask, &previous); rc != 0) {
    return errno_status(rc, "pthread_sigmask");
  }
  const int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    return errno_status(err, "signalfd");
  }
  std::unique_ptr<SignalWatcher> watcher(
      new SignalWatcher(loop, fd, previous, std::move(on_signal)));
  auto id = loop.watch(fd, EPOLLIN, watcher.get());
  if (!id.ok()) return id.status();  // the destructor closes fd and restores the mask
  watcher->watch_ = *id;
  return watcher;
}

SignalWatcher::SignalWatcher(EventLoop& loop, int fd, sigset_t previous_mask, SignalFn on_signal)
    : loop_(&loop), fd_(fd), previous_mask_(previous_mask), on_signal_(std::move(on_signal)) {}

SignalWatcher::~SignalWatcher() {
  *alive_ = false;
  if (watch_ != 0) loop_->unwatch(watch_);
  (void)::close(fd_);
  pthread_sigmask(SIG_SETMASK, &previous_mask_, nullptr);
}

void SignalWatcher::on_ready(uint32_t events) {
  signalfd_siginfo info;
  ssize_t n;
  do {
    n = ::read(fd_, &info, sizeof(info));
  } while (n < 0 && errno == EINTR);
  if (n != ssize_t(sizeof(info))) return;  // EAGAIN: nothing pending
  // One signal per readiness event, because the callback may destroy this watcher (a
  // shutdown); level-triggered epoll brings us back for any other pending signal.
  // The callback runs from a local: destroying the watcher inside it must not destroy the
  // callable (and its captures) while it executes.
  std::shared_ptr<bool> alive = alive_;
  SignalFn fn = std::move(on_signal_);
  fn(int(info.ssi_signo));
  if (*alive) on_signal_ = std::move(fn);
}

}  // namespace keel::net
