// RaftLog: the core's view of its log = the stable entries in LogStorage, below `offset`, plus
// the unstable entries (and possibly an unstable snapshot) the core holds in memory until the
// caller reports them durable (docs/raft.md). Internal to the core.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "raft/log_storage.h"
#include "raft/raft.pb.h"

namespace keel::raft {

// Offset and term of one position of the log.
struct LogPosition {
  uint64_t index = 0;
  uint64_t term = 0;
};

class RaftLog {
 public:
  // Starts from what `storage` holds: everything in it is durable.
  explicit RaftLog(const LogStorage& storage);

  uint64_t first_index() const;
  uint64_t last_index() const {
    return unstable_.empty() ? offset_ - 1
                             : unstable_.back().index() + unstable_.back().count() - 1;
  }
  uint64_t last_term() const { return *term(last_index()); }
  // The term of the entry containing `offset`, or nullopt when offset is outside
  // [first_index() - 1, last_index()].
  std::optional<uint64_t> term(uint64_t offset) const;
  // First offset of the entry containing `offset` (first_index() <= offset <= last_index()).
  uint64_t entry_start(uint64_t offset) const;
  bool match_term(uint64_t offset, uint64_t t) const { return term(offset) == t; }
  // Whether a log ending at (last, t) is at least as up to date as this one.
  bool is_up_to_date(uint64_t last, uint64_t t) const;
  // The snapshot point: the log starts right after it.
  SnapshotMeta snapshot_meta() const;

  // Entries starting at `lo` (an entry start) with first offset < hi, at most max_bytes of
  // data (at least one entry).
  absl::StatusOr<std::vector<Entry>> slice(uint64_t lo, uint64_t hi, uint64_t max_bytes) const;
  // slice() appended to `out` (a message's entries) without a vector in between: the same
  // entries. On an error nothing was appended.
  absl::Status slice_into(uint64_t lo, uint64_t hi, uint64_t max_bytes,
                          google::protobuf::RepeatedPtrField<Entry>& out) const;

  // AppendEntries on a follower: if (prev, prev_term) matches, appends what is new in
  // `entries` (truncating at the first conflict), advances the commit to
  // min(commit, last new offset) and returns the last new offset; otherwise nullopt.
  std::optional<uint64_t> maybe_append(uint64_t prev, uint64_t prev_term, uint64_t commit,
                                       std::vector<Entry> entries);
  // Appends entries (entries[0] starts at or before last_index() + 1, at an entry start),
  // dropping every offset >= entries[0].index() first.
  // The lowest offset removed from the log (a conflict, a snapshot, damage) since the last
  // call, or UINT64_MAX; acknowledgements of offsets from there on must not be sent.
  uint64_t take_cut() { return std::exchange(cut_from_, UINT64_MAX); }
  void append(std::vector<Entry> entries);
  // The largest offset <= index whose term is <= t (fast backoff), stopping at the
  // snapshot point.
  LogPosition find_conflict_by_term(uint64_t index, uint64_t t) const;

  uint64_t committed() const { return committed_; }
  uint64_t applied() const { return applied_; }
  void commit_to(uint64_t c);
  // The last offset known durable and part of this log; 0 while a restored snapshot (a new
  // log start) is not yet durable, since the old log is gone and the new one not yet stored.
  uint64_t durable_last() const { return snapshot_ ? 0 : offset_ - 1; }
  // The highest offset ever known durable in this log's lifetime (it may since have been
  // truncated or reset): everything this replica might have acknowledged.
  uint64_t durable_high() const { return durable_high_; }

  // Replaces the log by an empty one starting after meta.index() (InstallSnapshot).
  void restore(const SnapshotMeta& meta);
  // Storage fault: the caller removed every offset >= from (an entry start). Commit and
  // applied indexes are clamped below it.
  void truncate_damaged(uint64_t from);

  // The ready cycle: what to hand the caller next, and what the caller made durable.
  bool has_unsent_entries() const;
  std::vector<Entry> take_unsent_entries();
  std::optional<SnapshotMeta> take_unsent_snapshot();
  bool has_unsent_snapshot() const { return snapshot_ && !snapshot_sent_; }
  // Entries up to and including (index, term) are durable, if that position is still ours.
  void stable_to(LogPosition pos);
  // The unstable snapshot at `index` is durable.
  void stable_snapshot_to(uint64_t index);
  // Committed and durable entries not yet handed out, up to max_bytes (at least one); none
  // when the storage cannot read them.
  bool has_next_committed() const { return applied_ < apply_limit(); }
  // Without `with_data`, the entries' data may be left out (LogStorage::entries_without_data).
  std::vector<Entry> take_next_committed(uint64_t max_bytes, bool with_data = true);

 private:
  uint64_t apply_limit() const { return std::min(committed_, durable_last()); }
  // Position in unstable_ of the entry containing offset (offset >= offset_).
  size_t unstable_position(uint64_t offset) const;
  void truncate_unstable(uint64_t from);

  const LogStorage& storage_;
  std::optional<SnapshotMeta> snapshot_;  // unstable snapshot, if any
  bool snapshot_sent_ = false;
  std::deque<Entry> unstable_;      // contiguous, starting at offset_
  uint64_t offset_;                 // offsets < offset_ are stable (in storage, durable)
  uint64_t unsent_;                 // first unstable offset not yet handed to the caller
  uint64_t cut_from_ = UINT64_MAX;  // see take_cut()
  uint64_t committed_ = 0;
  uint64_t applied_ = 0;
  uint64_t durable_high_ = 0;
};

}  // namespace keel::raft
