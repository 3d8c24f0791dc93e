// SignalWatcher: process signals (SIGINT, SIGTERM, ...) delivered as events on an EventLoop,
// through a signalfd, so a real node shuts down from its loop instead of inside an
// asynchronous signal handler. For the composition root (`keel serve`).
//
// The signals are blocked for the calling thread (call it before starting other threads, so
// they inherit the mask) and restored when the watcher is destroyed; a signal still pending
// then is delivered with its usual disposition.
#pragma once

#include <signal.h>

#include <initializer_list>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "net/event_loop.h"

namespace keel::net {

class SignalWatcher final : public EventLoop::Watcher {
 public:
  using SignalFn = absl::AnyInvocable<void(int signal)>;

  // `on_signal` runs on the loop once per delivered signal (signals of one kind arriving
  // together may be merged, as POSIX allows).
  static absl::StatusOr<std::unique_ptr<SignalWatcher>> create(EventLoop& loop,
                                                               std::initializer_list<int> signals,
                                                               SignalFn on_signal);
  ~SignalWatcher() override;
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  void on_ready(uint32_t events) override;

 private:
  SignalWatcher(EventLoop& loop, int fd, sigset_t previous_mask, SignalFn on_signal);

  EventLoop* loop_;
  int fd_;
  sigset_t previous_mask_;
  SignalFn on_signal_;
  // False once destroyed: the callback may destroy this watcher while it runs.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  EventLoop::WatchId watch_ = 0;
};

}  // namespace keel::net
