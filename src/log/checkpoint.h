// The log's checkpoint: what recovery may trust without re-reading it. Stored in a
// StateFile ("checkpoint" in the log's directory).
//
// Everything in [log_start_offset, offset) is durable and was verified when written or
// scanned, and lies in segments with base <= segment_base, ending at `position` within
// segment `segment_base`. Those bytes are never rewritten (the log only checkpoints offsets
// the caller declared stable, see Log::mark_stable), so recovery resumes scanning at
// (segment_base, position, offset). Corruption inside the trusted range is found by reads,
// which verify every batch, and is reported as damage, never truncated.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "base/bytes.h"

namespace keel::log {

// partitionLeaderEpoch changes: epoch `epoch` starts at `start_offset`.
struct EpochRun {
  int64_t start_offset = 0;
  int32_t epoch = 0;
  bool operator==(const EpochRun&) const = default;
};

inline constexpr size_t kEpochRunsMax = 1u << 16;

struct Checkpoint {
  int64_t log_start_offset = 0;
  int64_t segment_base = -1;  // -1: nothing trusted; scan every segment from its start
  uint64_t position = 0;
  int64_t offset = 0;
  std::vector<EpochRun> epochs;  // runs starting before `offset`, increasing
  bool operator==(const Checkpoint&) const = default;
};

Bytes encode_checkpoint(const Checkpoint& cp);
// DataLoss unless the payload is exactly one well-formed checkpoint whose fields agree
// (offsets non-negative, start <= offset, runs strictly increasing and < offset, at most
// kEpochRunsMax runs).
[[nodiscard]] absl::StatusOr<Checkpoint> decode_checkpoint(ByteView payload);

}  // namespace keel::log
