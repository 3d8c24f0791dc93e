// LogStorage: the core's read-only view of the stable (durable) part of a replica's log, and an
// in-memory implementation for tests and benchmarks (docs/raft.md).
//
// Offsets: an entry covers [index, index + count - 1]; entries are contiguous. The log holds
// offsets [first_index(), last_index()]; offset first_index() - 1 is the snapshot point, whose
// term snapshot().term() is remembered (index 0 and term 0 when nothing was ever removed, so a
// fresh log starts at offset 1). last_index() == first_index() - 1 when the log is empty.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "raft/raft.pb.h"

namespace keel::raft {

class LogStorage {
 public:
  virtual ~LogStorage() = default;

  // The hard state last made durable (term, vote, commit); zeros on a fresh replica.
  virtual HardState hard_state() const = 0;
  // Where the log starts: offsets <= snapshot().index() were removed by retention (or never
  // existed). snapshot().conf() holds the voters.
  virtual SnapshotMeta snapshot() const = 0;
  virtual uint64_t first_index() const = 0;  // == snapshot().index() + 1
  virtual uint64_t last_index() const = 0;   // >= first_index() - 1

  // The term of the entry containing `offset`. Requires first_index() - 1 <= offset <=
  // last_index(); at first_index() - 1 it is snapshot().term(). Metadata only: no IO.
  virtual uint64_t term(uint64_t offset) const = 0;
  // The first offset of the entry containing `offset`. Requires first_index() <= offset <=
  // last_index(). Metadata only: no IO.
  virtual uint64_t entry_start(uint64_t offset) const = 0;
  // The entries starting at `lo` (an entry start) whose first offset is < `hi`, stopping
  // before the total data size would exceed max_bytes, but always at least one entry.
  // Requires first_index() <= lo < hi <= last_index() + 1. May fail with an IO or
  // corruption error (the caller then reports a storage fault to the core).
  virtual absl::StatusOr<std::vector<Entry>> entries(uint64_t lo, uint64_t hi,
                                                     uint64_t max_bytes) const = 0;
  // The entries entries() returns (the byte limit counts their data as there), with the same
  // IO and errors, but their data may be left out: for a caller that needs only index, count,
  // term and type. By default, entries().
  virtual absl::StatusOr<std::vector<Entry>> entries_without_data(uint64_t lo, uint64_t hi,
                                                                  uint64_t max_bytes) const {
    return entries(lo, hi, max_bytes);
  }
};

// A LogStorage held in memory. Writes are visible at once; tests model durability by keeping
// a second copy (see tests/raft/).
class MemoryStorage final : public LogStorage {
 public:
  // An empty log starting at offset 1 (snapshot point 0, term 0) with the given voters.
  explicit MemoryStorage(std::vector<uint64_t> voters);

  HardState hard_state() const override { return hard_state_; }
  SnapshotMeta snapshot() const override { return snapshot_; }
  uint64_t first_index() const override { return snapshot_.index() + 1; }
  uint64_t last_index() const override;
  uint64_t term(uint64_t offset) const override;
  uint64_t entry_start(uint64_t offset) const override;
  absl::StatusOr<std::vector<Entry>> entries(uint64_t lo, uint64_t hi,
                                             uint64_t max_bytes) const override;

  void set_hard_state(const HardState& hs) { hard_state_ = hs; }
  // Removes every offset >= entries[0].index() (an entry start, <= last_index() + 1), then
  // appends `entries` (contiguous).
  void append(const std::vector<Entry>& entries);
  // Resets the log to start right after `meta.index()`, dropping every entry.
  void apply_snapshot(const SnapshotMeta& meta);
  // Retention: removes the entries up to and including `offset`, which must be the last
  // offset of an entry (or the snapshot point).
  void compact(uint64_t offset);
  // Removes every offset >= `offset` (an entry start).
  void truncate_from(uint64_t offset);
  size_t entry_count() const { return entries_.size(); }

 private:
  // Position in entries_ of the entry containing `offset`.
  size_t position(uint64_t offset) const;

  HardState hard_state_;
  SnapshotMeta snapshot_;
  std::vector<Entry> entries_;
};

}  // namespace keel::raft
