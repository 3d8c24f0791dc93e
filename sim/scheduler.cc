#include "sim/scheduler.h"

#include <fmt/format.h>

#include <algorithm>
#include <csignal>
#include <cstring>

#include "base/bytes.h"
#include "base/check.h"

namespace keel::sim {
namespace {

// The open trace file, flushed when a CHECK aborts the process: the events leading to a
// failed invariant are the ones worth reading.
std::FILE* g_trace_file = nullptr;

void flush_trace_on_abort(int signal) {
  if (g_trace_file != nullptr) std::fflush(g_trace_file);
  std::signal(signal, SIG_DFL);
  std::raise(signal);
}

}  // namespace

Scheduler::~Scheduler() { close_trace_file(); }

Scheduler::EventId Scheduler::at(int64_t time_ns, Fn fn) {
  const uint64_t tie = shuffle_ ? tie_rng_.next_u64() : 0;
  const EventId id{std::max(time_ns, now_ns_), tie, next_seq_++};
  uint32_t slot;
  if (free_slots_.empty()) {
    KEEL_CHECK(slots_.size() < UINT32_MAX, "too many pending events");
    slot = uint32_t(slots_.size());
    slots_.push_back(std::move(fn));
  } else {
    slot = free_slots_.back();
    free_slots_.pop_back();
    slots_[slot] = std::move(fn);
  }
  insert(Entry{id, slot});
  return id;
}

void Scheduler::insert(const Entry& entry) {
  const size_t end = queue_.size();
  if (head_ == end || before(queue_.back().id, entry.id)) {
    queue_.push_back(entry);
    return;
  }
  // Open a hole at the nearer end of the queue and move it to the entry's place: the middle
  // entry (after it, or before it) bounds either walk.
  if (before(entry.id, queue_[head_ + (end - head_) / 2].id)) {
    if (head_ == 0) recenter();
    size_t hole = --head_;
    for (; before(queue_[hole + 1].id, entry.id); hole++) queue_[hole] = queue_[hole + 1];
    queue_[hole] = entry;
  } else {
    queue_.push_back(queue_.back());
    size_t hole = end - 1;
    for (; before(entry.id, queue_[hole - 1].id); hole--) queue_[hole] = queue_[hole - 1];
    queue_[hole] = entry;
  }
}

void Scheduler::recenter() {
  const size_t n = queue_.size() - head_;
  if (head_ < kFrontRoom) queue_.resize(kFrontRoom + n);  // grows: move from the back
  std::memmove(queue_.data() + kFrontRoom, queue_.data() + head_, n * sizeof(Entry));
  queue_.resize(kFrontRoom + n);
  head_ = kFrontRoom;
}

Scheduler::Fn Scheduler::take(size_t i) {
  const uint32_t slot = queue_[i].slot;
  Fn fn = std::move(slots_[slot]);
  free_slots_.push_back(slot);
  const size_t end = queue_.size();
  if (i - head_ < end - 1 - i) {
    for (size_t k = i; k > head_; k--) queue_[k] = queue_[k - 1];
    head_++;
    // Keep the room before the head bounded: the array would only grow.
    if (head_ >= 4 * kFrontRoom && head_ >= 2 * (end - head_)) recenter();
  } else {
    for (size_t k = i + 1; k < end; k++) queue_[k - 1] = queue_[k];
    queue_.pop_back();
  }
  return fn;
}

void Scheduler::cancel(EventId id) {
  auto it = std::lower_bound(queue_.begin() + ptrdiff_t(head_), queue_.end(), id,
                             [](const Entry& a, const EventId& b) { return before(a.id, b); });
  if (it == queue_.end() || it->id != id) return;
  // Destroyed at once, as erasing it from a map did (a destructor may have effects), after
  // the queue is consistent again.
  take(size_t(it - queue_.begin()));
}

void Scheduler::shuffle_ties(uint64_t seed) {
  shuffle_ = true;
  tie_rng_ = env::Random(seed);
}

bool Scheduler::step() {
  if (queue_.size() == head_) return false;
  const int64_t time_ns = queue_[head_].id.time_ns;
  KEEL_CHECK(time_ns >= now_ns_);
  now_ns_ = time_ns;
  Fn fn = take(head_);
  events_run_++;
  fn();
  return true;
}

bool Scheduler::run_until(int64_t end_ns, uint64_t events_max) {
  uint64_t n = 0;
  while (queue_.size() > head_ && queue_[head_].id.time_ns <= end_ns) {
    if (n++ >= events_max) return false;
    step();
  }
  now_ns_ = std::max(now_ns_, end_ns);
  return true;
}

namespace {

void write_json_string(std::FILE* f, std::string_view s) {
  std::fputc('"', f);
  for (char c : s) {
    if (c == '"' || c == '\\') {
      std::fputc('\\', f);
      std::fputc(c, f);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      std::fprintf(f, "\\u%04x", c);
    } else {
      std::fputc(c, f);
    }
  }
  std::fputc('"', f);
}

}  // namespace

uint64_t Scheduler::record_head(std::string_view node, std::string_view kind) const {
  uint64_t h = (hash_ ^ uint64_t(now_ns_)) * kFoldPrime;
  constexpr uint8_t kSeparator = 0x1f;
  h = (fnv(node, h) ^ kSeparator) * kFoldPrime;
  return (fnv(kind, h) ^ kSeparator) * kFoldPrime;
}

void Scheduler::record(std::string_view node, std::string_view kind, std::string_view detail) {
  hash_ = fnv(detail, record_head(node, kind));
  trace_events_++;
  if (trace_file_ != nullptr) write_trace(node, kind, detail);
}

void Scheduler::write_trace(std::string_view node, std::string_view kind, std::string_view detail) {
  std::fprintf(trace_file_, "{\"t\":%lld,\"n\":", static_cast<long long>(now_ns_));
  write_json_string(trace_file_, node);
  std::fputs(",\"k\":", trace_file_);
  write_json_string(trace_file_, kind);
  std::fputs(",\"d\":", trace_file_);
  write_json_string(trace_file_, detail);
  std::fprintf(trace_file_, ",\"h\":\"%016llx\"}\n", static_cast<unsigned long long>(hash_));
}

void Scheduler::close_trace_file() {
  if (trace_file_ == nullptr) return;
  if (g_trace_file == trace_file_) g_trace_file = nullptr;
  std::fclose(trace_file_);
  trace_file_ = nullptr;
}

bool Scheduler::open_trace_file(const std::string& path) {
  close_trace_file();
  trace_file_ = std::fopen(path.c_str(), "w");
  if (trace_file_ == nullptr) return false;
  g_trace_file = trace_file_;
  std::signal(SIGABRT, flush_trace_on_abort);
  return true;
}

}  // namespace keel::sim
