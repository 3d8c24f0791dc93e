// Helpers for the log tests: batches with recognisable contents, and a simulated disk whose
// scheduler is run until idle to deliver sync completions.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/bytes.h"
#include "log/log.h"
#include "sim/disk.h"
#include "sim/scheduler.h"

namespace keel::log::testing {

// An uncompressed batch of `records` records (>= 1) whose values derive from `tag`, with
// base offset 0 (the leader stamps it), epoch `epoch`, timestamps starting at `timestamp`.
Bytes make_batch(int records, int32_t epoch, uint64_t tag, int64_t timestamp = 0,
                 size_t value_bytes = 16);

struct SimRig {
  explicit SimRig(uint64_t seed, const sim::DiskFaults& faults = {});
  // Runs scheduled events until none is left (bounded; fails the test on a runaway loop).
  void run();
  sim::Scheduler scheduler;
  sim::SimDisk disk;
};

// Calls log.sync and runs the rig until it completes; returns its status.
absl::Status sync_and_wait(SimRig& rig, Log& log);

// Calls log.sync, runs at most `steps` events, then drops the log and crashes the disk (a
// power loss mid-round); returns whether the sync had completed successfully.
bool sync_then_crash(SimRig& rig, std::unique_ptr<Log>& log, int steps);

// The bytes of every batch in [from, log.next_offset()) read one batch at a time, or the
// first read error.
absl::StatusOr<Bytes> read_all(Log& log, int64_t from);

}  // namespace keel::log::testing
