#include "sim/scheduler.h"

#include <fmt/format.h>

#include "base/bytes.h"
#include "base/check.h"

namespace keel::sim {

Scheduler::~Scheduler() {
  if (trace_file_ != nullptr) std::fclose(trace_file_);
}

Scheduler::EventId Scheduler::at(int64_t time_ns, Fn fn) {
  EventId id{std::max(time_ns, now_ns_), next_seq_++};
  queue_.emplace(id, std::move(fn));
  return id;
}

bool Scheduler::step() {
  if (queue_.empty()) return false;
  auto it = queue_.begin();
  KEEL_CHECK(it->first.time_ns >= now_ns_);
  now_ns_ = it->first.time_ns;
  Fn fn = std::move(it->second);
  queue_.erase(it);
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

void Scheduler::record(std::string_view node, std::string_view kind, std::string_view detail) {
  uint8_t t[8];
  put_be64(t, uint64_t(now_ns_));
  uint64_t h = fnv1a64(ByteView(t, 8), hash_);
  h = fnv1a64(node, h);
  h = fnv1a64("\x1f", h);
  h = fnv1a64(kind, h);
  h = fnv1a64("\x1f", h);
  hash_ = fnv1a64(detail, h);
  trace_events_++;
  if (trace_file_ != nullptr) {
    std::fprintf(trace_file_, "{\"t\":%lld,\"n\":", static_cast<long long>(now_ns_));
    write_json_string(trace_file_, node);
    std::fputs(",\"k\":", trace_file_);
    write_json_string(trace_file_, kind);
    std::fputs(",\"d\":", trace_file_);
    write_json_string(trace_file_, detail);
    std::fprintf(trace_file_, ",\"h\":\"%016llx\"}\n", static_cast<unsigned long long>(hash_));
  }
}

bool Scheduler::open_trace_file(const std::string& path) {
  if (trace_file_ != nullptr) std::fclose(trace_file_);
  trace_file_ = std::fopen(path.c_str(), "w");
  return trace_file_ != nullptr;
}

}  // namespace keel::sim
