// Log: one partition's segmented log of Kafka RecordBatch v2 batches on env::Disk.
//
// Offsets. The log holds batches covering [start_offset(), next_offset()) with no holes: each
// batch's base offset is the previous batch's last offset + 1. A batch's
// partitionLeaderEpoch (the Raft term) never decreases along the log.
//
// Durability. append() and truncate_suffix() act at once on the log as this process sees it;
// nothing is durable until sync() reports it. A crash keeps the durable prefix
// [start, durable_offset()) and possibly some prefix of what followed; never a hole, never
// a changed byte (docs/log.md). Bytes below the checkpoint (see checkpoint.h and
// mark_stable) are trusted at recovery and never re-read then; everything after it is
// re-verified and a torn tail is truncated.
//
// Integrity. Every batch returned by read() was verified (frame CRC, Kafka CRC, expected
// offset) after being read from the disk. A batch that fails is never returned: its range is
// recorded in damage() and the read returns DataLoss (or stops before it). Damage is
// repaired with truncate_damaged() and appending the batches again (from a peer).
//
// Errors. Read errors are reported per call. A failed write, truncate or sync makes the log
// failed: every later mutation and sync returns the error (the node must restart and
// recover; retrying a failed sync cannot make earlier writes safe).
//
// Threading: single-threaded, on the node's event loop. Callbacks run on the loop.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "base/bytes.h"
#include "env/disk.h"
#include "log/batch.h"
#include "log/checkpoint.h"
#include "log/state_file.h"

namespace keel::log {

struct Options {
  // A segment is rolled when the next batch would take it past this size...
  uint64_t segment_bytes_max = 64u << 20;
  // ...or when its first append is at least this old (ms, by the now_ms given to append);
  // 0 disables rolling by age.
  int64_t segment_age_ms_max = 0;
  // Largest accepted batch (<= kBatchBytesMax).
  size_t batch_bytes_max = kBatchBytesMax;
  // One sparse index entry per this many bytes of a segment.
  uint64_t index_interval_bytes = 4096;
  // Appends are kept in memory until a sync or until this many bytes are pending.
  uint64_t write_buffer_bytes_max = 8u << 20;
  // The checkpoint is rewritten once this many stable, durable bytes accumulated after it.
  uint64_t checkpoint_interval_bytes = 4u << 20;
  // Open-file budget: segment files kept open at once (the active one included). Files
  // closed to keep it stay open until the next sync round has synced their changes.
  size_t open_files_max = 32;
  // Bound on the number of segments (a limit, not a tuning knob).
  size_t segments_max = 1u << 20;
  // The first offset of a new, empty log.
  int64_t initial_offset = 0;
};

inline constexpr uint64_t kSegmentBytesMaxLimit = 1ull << 40;
inline constexpr size_t kOpenFilesMin = 2;

struct AppendResult {
  int64_t base_offset = 0;
  int64_t last_offset = 0;
  BatchHeader header;  // the batch's, as stored (base offset stamped)
};

struct ReadResult {
  Bytes batches;             // whole batches, as stored, back to back
  int64_t first_offset = 0;  // base offset of the first batch
  int64_t next_offset = 0;   // the offset after the last batch returned
  size_t batch_count = 0;
};

// A range of offsets whose bytes failed verification (inclusive). last_offset may extend to
// the end of the segment when the damaged batch's own length could not be trusted.
struct Damage {
  int64_t first_offset = 0;
  int64_t last_offset = 0;
  std::string reason;
};

struct RecoveryReport {
  bool checkpoint_found = false;
  bool checkpoint_used = false;      // false: every segment was scanned from its start
  int64_t checkpoint_offset = 0;     // scanning resumed here
  uint64_t bytes_scanned = 0;        // bytes read and verified by recovery
  uint64_t bytes_truncated = 0;      // torn or stale tail dropped
  uint64_t bytes_rewritten = 0;      // kept tail written again so that it is really synced
  int64_t truncated_at_offset = -1;  // where the tail was cut (-1: nothing cut)
  std::string truncate_reason;
  size_t segments_removed = 0;  // stale segments removed
  size_t segments = 0;
};

class Log {
 public:
  // Opens (creating if needed) the log in directory `dir` of `disk` and recovers it (reads
  // only; see docs/log.md). What recovery kept after the checkpoint may not be durable yet:
  // a sync round starts at once, durable_offset() advances when it completes, and nothing
  // new is written to the files before it has (appends are buffered meanwhile). Call sync()
  // to be told. The Disk must outlive the log.
  //
  // Bytes the checkpoint trusts are not read (that is what makes open fast), so damage there
  // does not fail open: reads find it and report it in damage(), and truncate_damaged repairs
  // it. A replica that must know before voting reads its log from start_offset() to its
  // commit index (each DataLoss names the damage). Only IO errors fail open.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Log>> open(env::Disk& disk, std::string dir,
                                                                 Options options);

  ~Log();
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  // Appends one batch. Leader: expected_base_offset empty, the log stamps base offset =
  // next_offset(). Follower: the batch's base offset must equal *expected_base_offset, which
  // must equal next_offset(). The batch is validated (size, magic 2, CRC) and its epoch must
  // be >= the last batch's. now_ms drives rolling by age (pass the wall clock; 0 if unused).
  [[nodiscard]] absl::StatusOr<AppendResult> append(ByteView batch,
                                                    std::optional<int64_t> expected_base_offset,
                                                    int64_t now_ms = 0);

  // Whole batches starting with the one containing from_offset, up to max_bytes (at least
  // one batch, however large). OutOfRange unless start <= from_offset < next. DataLoss if the
  // first batch fails verification (see damage()).
  [[nodiscard]] absl::StatusOr<ReadResult> read(int64_t from_offset, size_t max_bytes);

  // read() without the bytes: the same disk reads and the same verification (damage is
  // recorded alike), but the result's batches stay empty. For scrubbing.
  [[nodiscard]] absl::StatusOr<ReadResult> verify(int64_t from_offset, size_t max_bytes);

  // Group commit: makes everything done before the call durable (appends, truncations,
  // advance_start), then runs done(Ok) on the loop (or the error). Calls made while a sync
  // is in flight share the next one.
  void sync(env::DoneFn done);

  // Drops [offset, next_offset()). offset must be a batch boundary (or next_offset()), >=
  // start_offset() and >= the stable offset (stable data is truncated only by
  // truncate_damaged). DataLoss (and a damage() record) if the batch before the cut fails
  // verification.
  [[nodiscard]] absl::Status truncate_suffix(int64_t offset);

  // Repair of damage in the stable prefix (Raft's storage-fault rule: a replica whose
  // committed data is damaged drops it and fetches it again from its peers, abstaining from
  // votes until then). Drops [offset, next_offset()) like truncate_suffix, but is allowed
  // below the stable offset, only when damage() is not empty, and only at or below the first
  // damaged offset: start_offset() <= offset <= max(start_offset(), min first_offset of
  // damage()); offset must be a batch boundary (a Damage's first_offset always is), else
  // InvalidArgument (the damage's own first batch begins before start_offset(): reset the
  // log with advance_start instead). FailedPrecondition if there is no damage or offset lies
  // above it; DataLoss (and a new damage() record) if a batch before offset turns out to be
  // damaged too: call again with the new first damaged offset.
  //
  // Effects, at once: next_offset() = offset; stable_offset() and durable_offset() drop to
  // at most offset; damage() keeps only what lies below offset. Then, before any byte is
  // written to a file again: the truncation barrier (a sync round that started after the cut
  // completes), and, if the checkpoint trusted bytes past the cut, a new checkpoint ending at
  // the cut is durable (the files are not even truncated before it is), so recovery never
  // takes re-appended bytes on trust before they were synced, nor finds a trusted segment
  // gone. Appends are accepted meanwhile (kept in memory, readable). A sync() called after
  // this completes only once the cut and the new checkpoint are durable. A crash before that
  // recovers a prefix of the log as it was before or after the cut (never a mix).
  //
  // Typical use (cluster/raft_storage): a read() reports damage at d (open() does not read
  // what the checkpoint trusts; a scrub of the log with read() finds it);
  // the replica stops voting, calls truncate_damaged(d), re-fetches [d, leader's end) from
  // the leader as follower appends, sync()s, and votes again once the log reaches the commit
  // index it had promised.
  [[nodiscard]] absl::Status truncate_damaged(int64_t offset);

  // Moves the log start to `offset` (retention, or a snapshot that covers the prefix);
  // offset may exceed next_offset() (the log becomes empty at `offset`). Whole segments
  // below it are removed; the exact start is recorded durably; done runs when it is.
  void advance_start(int64_t offset, env::DoneFn done);

  // Offsets below `offset` will never be truncated (Raft: the commit index), except by
  // truncate_damaged. Lets the log checkpoint them. Never decreases, except through
  // truncate_damaged.
  void mark_stable(int64_t offset);

  // The partitionLeaderEpoch of the batch containing `offset`; OutOfRange outside the log.
  [[nodiscard]] absl::StatusOr<int32_t> term_at(int64_t offset) const;
  // The epoch of the last batch, if any.
  std::optional<int32_t> last_term() const;

  // The first offset whose batch has maxTimestamp >= ts (Kafka ListOffsets); next_offset()
  // if none.
  [[nodiscard]] absl::StatusOr<int64_t> offset_for_timestamp(int64_t ts);

  // Where retention by size (keep at most bytes_max) and age (drop segments whose newest
  // batch is older than now_ms - age_ms_max; <= 0 disables) would move the start: a segment
  // base, or nullopt if nothing would go. The caller decides (and calls advance_start).
  std::optional<int64_t> retention_point(int64_t now_ms, uint64_t bytes_max, int64_t age_ms_max);

  int64_t start_offset() const { return start_offset_; }
  int64_t next_offset() const { return next_offset_; }
  int64_t durable_offset() const { return durable_offset_; }
  int64_t stable_offset() const { return stable_offset_; }
  int64_t checkpoint_offset() const { return checkpoint_.offset; }
  uint64_t size_bytes() const;
  size_t segment_count() const { return segments_.size(); }
  size_t open_file_count() const { return open_files_; }
  const std::vector<Damage>& damage() const { return damage_; }
  const RecoveryReport& recovery() const { return recovery_; }
  // OK, or the error that made the log failed.
  const absl::Status& health() const { return failed_; }
  // True when a sync() now would have nothing to make durable: every append, truncation,
  // start move and file or name change is durable, and no round is in flight.
  bool synced() const;

 private:
  struct IndexEntry {
    int64_t offset;  // base offset of the batch at `position`
    uint64_t position;
    int64_t max_timestamp;  // max timestamp of the batches before `position` in the segment
  };
  struct Segment {
    int64_t base_offset = 0;
    int64_t next_offset = 0;  // after its last batch
    uint64_t size = 0;        // bytes, including pending
    uint64_t flushed = 0;     // bytes written to the file
    Bytes pending;            // [flushed, size): not yet written
    std::unique_ptr<env::File> file;
    bool on_disk = false;     // the file was created
    bool needs_sync = false;  // writes or a truncate since its last sync
    bool sync_in_flight = false;
    uint64_t last_use = 0;  // for the open-file budget (a counter, deterministic)
    bool indexed = false;   // index and max_timestamp cover every batch
    std::vector<IndexEntry> index;
    uint64_t last_indexed_position = 0;
    int64_t max_timestamp = INT64_MIN;
    int64_t first_append_ms = -1;
    uint64_t bad_position = UINT64_MAX;  // index stops at a damaged frame here
  };
  class SegmentView;
  struct Waiter {
    int64_t target;   // durable_offset_ must reach this...
    uint64_t starts;  // ...and advance_start number `starts` must be durable...
    uint64_t round;   // ...and sync round number `round` must have completed
    env::DoneFn done;
  };

  Log(env::Disk& disk, std::string dir, Options options);

  absl::Status recover();
  // Drops [offset, next_offset_) (truncate_suffix and truncate_damaged, after their checks).
  // With `deferred`, the files are left as they are and what to do to them is recorded
  // there, for finish_cut once the checkpoint no longer trusts them.
  struct DeferredCut {
    int64_t segment_base = -1;
    uint64_t position = 0;
    std::vector<std::string> doomed;  // segment file names
  };
  absl::Status cut(int64_t offset, DeferredCut* deferred);
  void finish_cut(const DeferredCut& deferred);
  absl::Status recover_scan(const Checkpoint& cp);
  void drop_segments_from(std::map<int64_t, Segment>::iterator it, bool in_recovery);
  absl::Status rewrite(env::File& file, uint64_t from, uint64_t to);
  // Takes a segment's file as the segment leaves the map: retired, or, when it has changes
  // not yet synced, kept in orphans_ for the next round to sync first.
  void drop_file(Segment& seg);
  // Closes a file (once any sync pending on it is done); it leaves the open-file budget.
  void retire(std::unique_ptr<env::File> file);
  void bury_after_round(std::unique_ptr<env::File> file);
  // Hands a file with unsynced changes to the next round, which syncs it and then closes
  // it; it leaves the open-file budget now.
  void orphan(std::unique_ptr<env::File> file);
  void bury();
  bool gated() const { return rounds_done_ < gate_round_; }
  bool repair_pending() const { return starts_durable_ < repair_seq_; }
  // Nothing may be written to the files: a truncation barrier, or a repair's checkpoint.
  bool write_blocked() const { return gated() || repair_pending(); }
  void add_damage(int64_t first, int64_t last, std::string reason);

  absl::StatusOr<env::File*> file_of(Segment& seg);
  absl::Status flush();
  absl::Status roll(int64_t now_ms);
  Segment& active() { return std::prev(segments_.end())->second; }
  void note_index(Segment& seg, const BatchHeader& h, uint64_t position);
  absl::Status ensure_indexed(Segment& seg);
  absl::StatusOr<ReadResult> read_batches(int64_t from_offset, size_t max_bytes, bool keep_bytes);
  absl::StatusOr<size_t> read_segment(Segment& seg, uint64_t position, std::span<uint8_t> out);
  // Locates the frame of the batch containing `offset` in `seg`: (position, header).
  struct Located {
    uint64_t position;
    BatchHeader header;
  };
  absl::StatusOr<Located> locate(Segment& seg, int64_t offset);
  // The indexed frame at or before `offset`: (position, base offset), or the segment start.
  static std::pair<uint64_t, int64_t> index_floor(const Segment& seg, int64_t offset);
  // locate() relies on what the frame CRC covers (base offset, length) of the frames it
  // steps over: a wrong lastOffsetDelta there shows as the next frame's base not matching.
  // The located frame's own lastOffsetDelta (and timestamps) are covered only by the Kafka
  // CRC: this reads and verifies the whole frame before a caller acts on them (DataLoss and
  // a damage record if it fails).
  absl::Status verify_located(Segment& seg, const Located& loc);
  // The file position at which the batch starting at `offset` begins (seg.size at the
  // segment's end). Verifies every frame it steps over (their lastOffsetDelta decides where
  // the next one begins), so it reaches a damaged batch that begins exactly at `offset`.
  // InvalidArgument inside a batch; DataLoss (damage recorded) if a frame before is damaged.
  absl::StatusOr<uint64_t> boundary_position(Segment& seg, int64_t offset);
  void record_damage(Segment& seg, int64_t first_offset, uint64_t position, std::string reason);
  std::map<int64_t, Segment>::iterator segment_for(int64_t offset);

  void start_round();
  void finish_round(uint64_t round);
  void fail(absl::Status status);
  std::vector<env::DoneFn> take_ready_waiters();
  void maybe_checkpoint();
  void write_checkpoint(Checkpoint cp, env::DoneFn done);
  std::vector<EpochRun> runs_before(int64_t offset) const;

  env::Disk& disk_;
  std::string dir_;
  Options options_;
  std::shared_ptr<bool> alive_;
  StateFile checkpoint_file_;
  Checkpoint checkpoint_;  // the newest one written (maybe not yet durable)

  std::map<int64_t, Segment> segments_;  // by base offset; never empty once open
  std::vector<EpochRun> epochs_;         // partitionLeaderEpoch changes, increasing
  int64_t start_offset_ = 0;
  int64_t next_offset_ = 0;
  int64_t flushed_offset_ = 0;  // batches below are written to files
  int64_t durable_offset_ = 0;
  int64_t stable_offset_ = 0;
  uint64_t pending_bytes_ = 0;
  size_t open_files_ = 0;
  uint64_t use_counter_ = 0;
  bool dir_dirty_ = false;
  bool parent_dirty_ = false;
  uint64_t starts_requested_ = 0;  // checkpoints syncs wait for (advance_start, repairs)
  uint64_t starts_durable_ = 0;    // ...whose checkpoint is durable
  uint64_t repair_seq_ = 0;        // the newest truncate_damaged checkpoint (same sequence)

  // Group commit. A round flushes (unless gated), syncs every dirty file and the
  // directory, then advances durable_offset_ to what it covered.
  std::vector<Waiter> waiters_;
  bool round_in_flight_ = false;
  uint64_t rounds_started_ = 0;
  uint64_t rounds_done_ = 0;
  int64_t round_covers_ = 0;
  size_t round_outstanding_ = 0;
  absl::Status round_status_;
  // After truncating bytes that were already written, nothing may be written again until a
  // round that started after the truncate has completed (so a crash cannot mix old and new
  // bytes in one place). Flushing is allowed once rounds_done_ >= gate_round_.
  uint64_t gate_round_ = 0;
  // Files dropped while a sync may still be pending on them; destroyed once a later round
  // completed (never inside their own callback).
  struct Buried {
    uint64_t round;
    std::unique_ptr<env::File> file;
  };
  std::deque<Buried> graveyard_;
  // Files with changes not yet synced whose segments left the map (advance_start, a repair)
  // or were closed to keep the open-file budget; the next round syncs them, then closes them.
  // They no longer count against open_files_max.
  std::vector<std::unique_ptr<env::File>> orphans_;

  Bytes read_buf_;  // read()'s window into a segment, kept between calls
  std::vector<Damage> damage_;
  RecoveryReport recovery_;
  absl::Status failed_;
};

}  // namespace keel::log
