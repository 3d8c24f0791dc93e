// RaftStorage: the Raft core's view (raft::LogStorage) of a replica's partition log and
// state file, plus the writes the replica driver makes on the core's behalf.
//
// One Raft entry is one Kafka RecordBatch: entry.index = baseOffset, entry.count =
// lastOffsetDelta + 1, entry.term = partitionLeaderEpoch. A leader no-op arrives from the
// core with empty data and is written as a control batch built from (index, term) alone,
// so every replica writes the same bytes for it (entry_batch()).
//
// The adapter keeps the entry boundaries (offset -> count, term, CRC) in memory, because the
// core asks for terms and entry starts without IO. They are rebuilt by scanning the log at
// open (docs/architecture.md notes the memory cost: ~48 bytes per batch).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "cluster/cluster.pb.h"
#include "log/log.h"
#include "raft/log_storage.h"
#include "raft/raft.pb.h"

namespace keel::cluster {

// The batch bytes to store for `entry`: its data, or for an empty no-op, a control batch
// stamped (index, term), built into `scratch`. Requires term to fit the Kafka epoch (int32).
// The view lives as long as `entry` and `scratch`.
ByteView entry_batch(const raft::Entry& entry, Bytes& scratch);

// Checks that `entry` carries a well-formed batch stamped with its own index, count and
// term (or is an empty no-op). Peers' entries are checked before they reach the core.
[[nodiscard]] absl::Status check_entry(const raft::Entry& entry);

class RaftStorage final : public raft::LogStorage {
 public:
  static constexpr uint64_t kCacheBytesMax = 4u << 20;
  struct EntryMeta {
    uint32_t count = 0;
    uint64_t term = 0;
    uint32_t crc = 0;  // the batch's Kafka CRC: a digest of its records, for checkers
    bool control = false;
  };

  // Scans `log` (which must start at state.snapshot().index() + 1 or later) to build the
  // boundaries. The log must outlive this object.
  static absl::StatusOr<std::unique_ptr<RaftStorage>> load(log::Log& log, ReplicaState state);

  // raft::LogStorage.
  raft::HardState hard_state() const override { return state_.hard_state(); }
  raft::SnapshotMeta snapshot() const override { return state_.snapshot(); }
  uint64_t first_index() const override { return state_.snapshot().index() + 1; }
  uint64_t last_index() const override;
  uint64_t term(uint64_t offset) const override;
  uint64_t entry_start(uint64_t offset) const override;
  absl::StatusOr<std::vector<raft::Entry>> entries(uint64_t lo, uint64_t hi,
                                                   uint64_t max_bytes) const override;
  // The same reads as entries(), without copying data (the CRCs are in boundaries()).
  absl::StatusOr<std::vector<raft::Entry>> entries_without_data(uint64_t lo, uint64_t hi,
                                                                uint64_t max_bytes) const override;

  // Writes on the core's behalf (immediately visible; durable after the log's sync).
  // Drops every offset >= entries[0].index(), then appends. The entries' data moves into
  // the cache.
  [[nodiscard]] absl::Status write_entries(std::vector<raft::Entry> entries, int64_t now_ms);
  // Drops every offset >= `from` (an entry start, or last_index() + 1).
  [[nodiscard]] absl::Status drop_suffix(uint64_t from);
  // Repair: drops every offset >= `from`, the first damaged offset the log reported, even
  // below its stable offset (log::Log::truncate_damaged has the contract).
  [[nodiscard]] absl::Status drop_damaged(uint64_t from);
  // Resets the log to start after meta.index(): drops the entries the snapshot replaces and
  // records meta in the state. The caller persists the state, and only then moves the log's
  // start (as for compact()); it acknowledges once the state is durable, since recovery
  // finishes a start move the state records.
  [[nodiscard]] absl::Status install_snapshot(const raft::SnapshotMeta& meta);
  // Retention: the log now logically starts after `index`, the last offset of an applied
  // entry. Updates the snapshot point (index, its term) in the state; the caller persists
  // the state, and only then moves the log's start (recovery finishes a move the state
  // records; it cannot undo one the state does not).
  void compact(uint64_t index);
  // Records (term, vote) to be persisted; commit is kept only in memory.
  void set_hard_state(const raft::HardState& hs) { *state_.mutable_hard_state() = hs; }
  const ReplicaState& state() const { return state_; }

  const std::map<uint64_t, EntryMeta>& boundaries() const { return boundaries_; }
  // The first offset of every removal of entries from the tail (truncation on conflict,
  // repair, a snapshot: 0), in order. An observer that verified the boundaries up to some
  // offset needs to re-verify only from the lowest cut it has not seen yet.
  const std::vector<uint64_t>& cuts() const { return cuts_; }
  log::Log& log() { return log_; }

 private:
  RaftStorage(log::Log& log, ReplicaState state) : log_(log), state_(std::move(state)) {}
  absl::Status scan();
  absl::StatusOr<std::vector<raft::Entry>> read_entries(uint64_t lo, uint64_t hi,
                                                        uint64_t max_bytes, bool with_data) const;
  void forget_from(uint64_t from);  // the boundaries and cache of a dropped suffix
  std::map<uint64_t, EntryMeta>::const_iterator containing(uint64_t offset) const;

  // `batch` is e's data, or for an empty no-op, its control batch (entry_batch).
  void cache_put(raft::Entry&& e, ByteView batch);

  log::Log& log_;
  ReplicaState state_;
  std::map<uint64_t, EntryMeta> boundaries_;  // by base offset
  // The newest entries written, as batches, so that applying them and sending them to
  // followers that keep up needs no log read: a contiguous run ending at last_index().
  std::map<uint64_t, raft::Entry> cache_;
  uint64_t cache_bytes_ = 0;
  std::vector<uint64_t> cuts_;
};

}  // namespace keel::cluster
