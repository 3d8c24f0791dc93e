// Runs several EventLoops on one thread, one iteration of each in turn, sleeping in poll()
// on all their epoll fds when none has work. For tests and tools that host a whole cluster of
// real nodes (each with its own loop, sockets and files) in one process.
#pragma once

#include <span>

#include "absl/functional/function_ref.h"
#include "net/event_loop.h"

namespace keel::net {

// Steps `loops` until done() holds (checked after every round) or `timeout` passed; returns
// done(). Each loop only ever runs on the calling thread.
bool run_loops_until(std::span<EventLoop* const> loops, absl::FunctionRef<bool()> done,
                     Nanos timeout);

}  // namespace keel::net
