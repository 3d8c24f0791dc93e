// Fuzzes segment recovery: arbitrary bytes as a segment file (and optionally a checkpoint
// file), then Log::open on the simulated disk, then reading everything back. Recovery must
// never crash, never return a batch that fails verification, and leave a log that accepts
// appends and reopens to the same state.
//
// Input: u8 flags | u16 checkpoint length n (big-endian) | n checkpoint bytes | segment bytes.
#include <cstddef>
#include <cstdint>

#include "base/check.h"
#include "log/batch.h"
#include "log/log.h"
#include "log/segment.h"
#include "sim/disk.h"
#include "sim/scheduler.h"

namespace {

void write_file(keel::sim::SimDisk& disk, const std::string& path, keel::ByteView bytes) {
  auto f = disk.open(path, keel::env::OpenMode::kCreate);
  KEEL_CHECK(f.ok());
  KEEL_CHECK((*f)->write(0, bytes).ok());
}

void run(keel::sim::Scheduler& s) {
  for (int i = 0; i < 100000 && s.step(); i++) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace keel;
  using namespace keel::log;
  if (size < 3) return 0;
  const uint8_t flags = data[0];
  size_t cp_len = std::min<size_t>(get_be16(data + 1), size - 3);
  ByteView cp(data + 3, cp_len);
  ByteView seg(data + 3 + cp_len, size - 3 - cp_len);

  sim::Scheduler scheduler;
  sim::SimDisk disk(scheduler, env::Random(1), "fuzz");
  KEEL_CHECK(disk.make_dir("log").ok());
  const int64_t base = (flags & 1) ? 5 : 0;
  write_file(disk, "log/" + segment_file_name(base), seg);
  if (flags & 2) write_file(disk, "log/checkpoint", cp);
  Options o;
  o.segment_bytes_max = 1 << 20;
  o.batch_bytes_max = 64 << 10;
  o.write_buffer_bytes_max = 1 << 20;
  o.index_interval_bytes = 256;
  auto log = Log::open(disk, "log", o);
  if (!log.ok()) return 0;
  run(scheduler);
  Log& l = **log;
  KEEL_CHECK(l.start_offset() <= l.next_offset());
  for (int64_t at = l.start_offset(); at < l.next_offset();) {
    auto r = l.read(at, 1 << 16);
    if (!r.ok()) break;  // damage: reported, never returned
    ByteView rest(r->batches);
    while (!rest.empty()) {
      auto h = parse_batch_header(rest, o.batch_bytes_max);
      KEEL_CHECK(h.ok());
      KEEL_CHECK(validate_batch(rest.first(h->total_bytes()), o.batch_bytes_max).ok());
      rest = rest.subspan(h->total_bytes());
    }
    KEEL_CHECK(r->next_offset > at);
    at = r->next_offset;
  }
  if (!l.damage().empty() || !l.health().ok()) return 0;
  // The recovered log takes appends and reopens to the same end.
  BatchSpec spec;
  spec.leader_epoch = l.last_term().value_or(0);
  spec.records.push_back({std::nullopt, to_bytes("x"), 0});
  Bytes b = build_batch(spec);
  if (!l.append(b, std::nullopt).ok()) return 0;
  bool synced = false;
  l.sync([&](absl::Status s) { synced = s.ok(); });
  run(scheduler);
  if (!synced) return 0;
  const int64_t next = l.next_offset();
  log->reset();
  auto again = Log::open(disk, "log", o);
  KEEL_CHECK(again.ok());
  run(scheduler);
  KEEL_CHECK_EQ((*again)->next_offset(), next);
  return 0;
}
