// The simulator's heart: one thread, one queue of events ordered by (virtual time, sequence
// number). Running an event advances virtual time to it; time jumps over idle gaps.
//
// Every event that matters to behaviour is also recorded in the trace: (time, node, kind,
// detail) folded into a running 64-bit hash, and optionally written as JSON lines, so two
// runs of one seed can be compared and the first differing event found.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "base/bytes.h"
#include "env/random.h"

namespace keel::sim {

class Scheduler {
 public:
  using Fn = absl::AnyInvocable<void()>;
  // Events run in (time, tie, seq) order. `tie` is 0 unless shuffle_ties() is on, in which
  // case it is a seeded random key, so events due at the same instant run in a seeded
  // random order (exploring interleavings) instead of the order they were scheduled.
  struct EventId {
    int64_t time_ns = 0;
    uint64_t tie = 0;
    uint64_t seq = 0;
    auto operator<=>(const EventId&) const = default;
  };

  Scheduler() = default;
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;
  ~Scheduler();

  // Global virtual time (nodes see it through their own, possibly drifting, clocks).
  int64_t now_ns() const { return now_ns_; }

  // Seeded tie-breaking: from now on, events due at the same instant run in an order drawn
  // from `seed` rather than in scheduling order. Code that needs an order among same-time
  // events must not rely on the scheduler for it (keep its own queue instead).
  void shuffle_ties(uint64_t seed);

  // Schedules fn at absolute time max(time_ns, now). Events at one time run in the order
  // they were scheduled, unless shuffle_ties() is on.
  EventId at(int64_t time_ns, Fn fn);
  EventId after(int64_t delay_ns, Fn fn) { return at(now_ns_ + delay_ns, std::move(fn)); }
  // Removes a pending event; a no-op if it already ran or was cancelled.
  void cancel(EventId id);

  // Runs the next event; false if there is none.
  bool step();
  // Runs events with time <= end_ns, then sets the time to end_ns. Stops early (returning
  // false) after `events_max` events, a bound against runaway loops.
  bool run_until(int64_t end_ns, uint64_t events_max = UINT64_MAX);

  size_t pending() const { return queue_.size() - head_; }
  uint64_t events_run() const { return events_run_; }

  // Trace: folds the event into the hash; writes a JSON line when a trace file is open.
  void record(std::string_view node, std::string_view kind, std::string_view detail);
  // The same for a detail given as a format and its arguments: the hash folds in the
  // arguments themselves (integers as words, strings as bytes), and the detail is formatted
  // only when a trace file is open. For the hottest events (disk IO, deliveries, timers).
  template <typename... Args>
  void recordf(std::string_view node, std::string_view kind, fmt::format_string<Args...> format,
               const Args&... args) {
    uint64_t h = record_head(node, kind);
    ((h = fold(h, args)), ...);
    hash_ = h;
    trace_events_++;
    if (trace_file_ != nullptr) {
      write_trace(node, kind,
                  fmt::vformat(fmt::string_view(format), fmt::make_format_args(args...)));
    }
  }
  uint64_t trace_hash() const { return hash_; }
  uint64_t trace_events() const { return trace_events_; }
  // Writes every later record to `path` as JSON lines {"t":..,"n":..,"k":..,"d":..,"h":..}.
  bool open_trace_file(const std::string& path);
  // Stops writing (and flushes) the trace file; events still fold into the hash.
  void close_trace_file();

 private:
  static constexpr uint64_t kFoldPrime = 0x100000001b3ULL;
  // The queue: pending ids sorted by (time, tie, seq) in queue_[head_, end), each naming the
  // slot that holds its callback; the next event is queue_[head_]. Few events are pending at
  // once (tens), and a new one usually lands a few places from the front, so a sorted array
  // with room before its head beats a tree or a heap: an insert or a cancel moves the fewer
  // of the entries before or after its place.
  struct Entry {
    EventId id;
    uint32_t slot;
  };
  // Room kept before the head after a compaction, for inserts near the front.
  static constexpr size_t kFrontRoom = 32;
  static bool before(const EventId& a, const EventId& b) {
    if (a.time_ns != b.time_ns) return a.time_ns < b.time_ns;
    if (a.tie != b.tie) return a.tie < b.tie;
    return a.seq < b.seq;
  }
  void insert(const Entry& entry);
  // Moves the pending entries to start at kFrontRoom.
  void recenter();
  // Takes the callback out of queue_[i]'s slot and removes the entry.
  Fn take(size_t i);
  uint64_t record_head(std::string_view node, std::string_view kind) const;
  // Writes the event just folded into hash_ to the trace file.
  void write_trace(std::string_view node, std::string_view kind, std::string_view detail);
  // fnv1a64 (the same values), unrolled: the trace hashes a few strings per event, and the
  // byte loop's own overhead was most of its cost.
  static uint64_t fnv(std::string_view s, uint64_t h) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    size_t n = s.size();
    for (; n >= 4; n -= 4, p += 4) {
      h = (h ^ p[0]) * kFoldPrime;
      h = (h ^ p[1]) * kFoldPrime;
      h = (h ^ p[2]) * kFoldPrime;
      h = (h ^ p[3]) * kFoldPrime;
    }
    for (; n > 0; n--, p++) h = (h ^ *p) * kFoldPrime;
    return h;
  }
  template <typename T>
  static uint64_t fold(uint64_t h, const T& v) {
    if constexpr (std::is_integral_v<T> || std::is_enum_v<T>) {
      return (h ^ uint64_t(v)) * kFoldPrime;
    } else {
      const std::string_view s(v);
      return fnv(s, (h ^ s.size()) * kFoldPrime);
    }
  }

  int64_t now_ns_ = 0;
  uint64_t next_seq_ = 0;
  uint64_t events_run_ = 0;
  uint64_t hash_ = 0xcbf29ce484222325ULL;
  uint64_t trace_events_ = 0;
  std::FILE* trace_file_ = nullptr;
  bool shuffle_ = false;
  env::Random tie_rng_{0};
  std::vector<Entry> queue_;
  size_t head_ = 0;  // queue_[0, head_) is free room
  std::vector<Fn> slots_;
  std::vector<uint32_t> free_slots_;
};

}  // namespace keel::sim
