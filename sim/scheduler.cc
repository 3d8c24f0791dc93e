#include "sim/scheduler.h"

#include <fmt/format.h>

#include <csignal>

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
  EventId id{std::max(time_ns, now_ns_), tie, next_seq_++};
  if (spare_.empty()) {
    queue_.emplace(id, std::move(fn));
  } else {
    Queue::node_type node = std::move(spare_.back());
    spare_.pop_back();
    node.key() = id;
    node.mapped() = std::move(fn);
    queue_.insert(std::move(node));
  }
  return id;
}

void Scheduler::cancel(EventId id) {
  Queue::node_type node = queue_.extract(id);
  if (node.empty()) return;
  node.mapped() = nullptr;  // destroyed now, as erase() did: a destructor may have effects
  recycle(std::move(node));
}

void Scheduler::recycle(Queue::node_type node) {
  if (spare_.size() < kSpareNodesMax) spare_.push_back(std::move(node));
}

void Scheduler::shuffle_ties(uint64_t seed) {
  shuffle_ = true;
  tie_rng_ = env::Random(seed);
}

bool Scheduler::step() {
  if (queue_.empty()) return false;
  Queue::node_type node = queue_.extract(queue_.begin());
  KEEL_CHECK(node.key().time_ns >= now_ns_);
  now_ns_ = node.key().time_ns;
  Fn fn = std::move(node.mapped());
  node.mapped() = nullptr;
  recycle(std::move(node));
  events_run_++;
  fn();
  return true;
}

bool Scheduler::run_until(int64_t end_ns, uint64_t events_max) {
  uint64_t n = 0;
  while (!queue_.empty() && queue_.begin()->first.time_ns <= end_ns) {
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
