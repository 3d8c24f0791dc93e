#include "tests/log/log_util.h"

#include <gtest/gtest.h>

#include "log/batch.h"

namespace keel::log::testing {

Bytes make_batch(int records, int32_t epoch, uint64_t tag, int64_t timestamp, size_t value_bytes) {
  BatchSpec spec;
  spec.leader_epoch = epoch;
  spec.base_timestamp = timestamp;
  for (int i = 0; i < records; i++) {
    Record r;
    Bytes value(value_bytes);
    uint64_t x = tag * 0x9E3779B97F4A7C15ull + uint64_t(i);
    for (size_t j = 0; j < value_bytes; j++) {
      x ^= x >> 29;
      x *= 0xBF58476D1CE4E5B9ull;
      value[j] = uint8_t(x >> 56);
    }
    r.value = std::move(value);
    r.timestamp_delta = i;
    spec.records.push_back(std::move(r));
  }
  return build_batch(spec);
}

SimRig::SimRig(uint64_t seed, const sim::DiskFaults& faults)
    : disk(scheduler, env::Random(seed), "n1") {
  disk.set_faults(faults);
}

void SimRig::run() {
  for (int i = 0; i < 10'000'000; i++) {
    if (!scheduler.step()) return;
  }
  ADD_FAILURE() << "scheduler did not go idle";
}

absl::Status sync_and_wait(SimRig& rig, Log& log) {
  std::optional<absl::Status> result;
  log.sync([&](absl::Status s) { result = s; });
  rig.run();
  if (!result.has_value()) return absl::InternalError("sync never completed");
  return *result;
}

bool sync_then_crash(SimRig& rig, std::unique_ptr<Log>& log, int steps) {
  bool synced = false;
  log->sync([&](absl::Status s) { synced = s.ok(); });
  for (int i = 0; i < steps; i++) {
    if (!rig.scheduler.step()) break;
  }
  log.reset();
  rig.disk.crash();
  return synced;
}

absl::StatusOr<Bytes> read_all(Log& log, int64_t from) {
  Bytes all;
  int64_t at = from;
  while (at < log.next_offset()) {
    auto r = log.read(at, 1);
    if (!r.ok()) return r.status();
    all.insert(all.end(), r->batches.begin(), r->batches.end());
    at = r->next_offset;
  }
  return all;
}

}  // namespace keel::log::testing
