#include "log/log.h"

#include <algorithm>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "log/segment.h"

namespace keel::log {
namespace {

constexpr char kCheckpointName[] = "checkpoint";
// A read fetches at most this much from a file at once (bounds memory for huge max_bytes).
constexpr uint64_t kReadWindowBytesMax = 4u << 20;

absl::Status check_options(const Options& o) {
  if (o.batch_bytes_max < kBatchHeaderBytes || o.batch_bytes_max > kBatchBytesMax) {
    return absl::InvalidArgumentError("log: batch_bytes_max out of range");
  }
  if (o.segment_bytes_max < kFrameHeaderBytes + o.batch_bytes_max ||
      o.segment_bytes_max > kSegmentBytesMaxLimit) {
    return absl::InvalidArgumentError("log: segment_bytes_max must hold one largest batch");
  }
  if (o.index_interval_bytes == 0) return absl::InvalidArgumentError("log: index interval 0");
  if (o.write_buffer_bytes_max < kFrameHeaderBytes + o.batch_bytes_max) {
    return absl::InvalidArgumentError("log: write buffer must hold one largest batch");
  }
  if (o.open_files_max < kOpenFilesMin) return absl::InvalidArgumentError("log: open files < 2");
  if (o.segments_max == 0) return absl::InvalidArgumentError("log: segments_max 0");
  if (o.initial_offset < 0) return absl::InvalidArgumentError("log: negative initial offset");
  return absl::OkStatus();
}

}  // namespace

// Reads a segment (file bytes and pending bytes) as an env::File, so scan_frames can index a
// segment whatever part of it is still in memory. Read-only.
class Log::SegmentView final : public env::File {
 public:
  SegmentView(Log& log, Segment& seg) : log_(log), seg_(seg) {}
  absl::StatusOr<size_t> read(uint64_t offset, std::span<uint8_t> out) override {
    return log_.read_segment(seg_, offset, out);
  }
  absl::Status write(uint64_t, ByteView) override { KEEL_UNREACHABLE(); }
  absl::Status truncate(uint64_t) override { KEEL_UNREACHABLE(); }
  uint64_t size() const override { return seg_.size; }
  void sync(env::DoneFn) override { KEEL_UNREACHABLE(); }

 private:
  Log& log_;
  Segment& seg_;
};

Log::Log(env::Disk& disk, std::string dir, Options options)
    : disk_(disk),
      dir_(std::move(dir)),
      options_(options),
      alive_(std::make_shared<bool>(true)),
      checkpoint_file_(disk, dir_, kCheckpointName) {}

Log::~Log() { *alive_ = false; }

absl::StatusOr<std::unique_ptr<Log>> Log::open(env::Disk& disk, std::string dir, Options options) {
  if (absl::Status s = check_options(options); !s.ok()) return s;
  if (!dir.empty()) {
    if (absl::Status s = disk.make_dir(dir); !s.ok()) return s;
  }
  std::unique_ptr<Log> log(new Log(disk, std::move(dir), options));
  // The directory's own name is durable only once its parent is synced: the first round
  // does it (whether or not make_dir just created it).
  log->parent_dirty_ = !log->dir_.empty();
  if (absl::Status s = log->recover(); !s.ok()) return s;
  return log;
}

// ---------------------------------------------------------------------------------------
// Recovery

absl::Status Log::recover() {
  Checkpoint cp;
  cp.log_start_offset = options_.initial_offset;
  cp.offset = options_.initial_offset;
  auto payload = checkpoint_file_.read();
  if (payload.ok()) {
    recovery_.checkpoint_found = true;
    auto decoded = decode_checkpoint(*payload);
    if (decoded.ok()) {
      cp = *decoded;
    } else {
      recovery_.truncate_reason = absl::StrCat("checkpoint ignored: ", decoded.status().message());
    }
  } else if (payload.status().code() == absl::StatusCode::kDataLoss) {
    recovery_.checkpoint_found = true;
    recovery_.truncate_reason = absl::StrCat("checkpoint ignored: ", payload.status().message());
  } else if (payload.status().code() != absl::StatusCode::kNotFound) {
    return payload.status();
  }

  auto names = disk_.list(dir_);
  if (!names.ok()) return names.status();
  std::vector<int64_t> bases;
  for (const std::string& name : *names) {
    int64_t base;
    if (parse_segment_file_name(name, &base)) bases.push_back(base);
  }
  std::sort(bases.begin(), bases.end());
  if (bases.size() > options_.segments_max) {
    return absl::ResourceExhaustedError("log: more segments than segments_max");
  }
  // A checkpoint naming an empty segment at its start that was never created (advance_start
  // past the end): the log is empty there, and older segments are leftovers.
  std::optional<int64_t> virtual_base;
  if (cp.segment_base >= 0 && cp.position == 0 && cp.offset == cp.segment_base &&
      cp.segment_base == cp.log_start_offset &&
      !std::binary_search(bases.begin(), bases.end(), cp.segment_base) &&
      (bases.empty() || bases.back() < cp.segment_base)) {
    virtual_base = cp.segment_base;
    bases.push_back(cp.segment_base);
  }
  // Segments wholly below the start are leftovers of an unfinished retention.
  std::vector<int64_t> kept;
  for (size_t i = 0; i < bases.size(); i++) {
    if (i + 1 < bases.size() && bases[i + 1] <= cp.log_start_offset) {
      if (absl::Status s = disk_.remove(join_path(dir_, segment_file_name(bases[i]))); !s.ok()) {
        return s;
      }
      dir_dirty_ = true;
      recovery_.segments_removed++;
      continue;
    }
    kept.push_back(bases[i]);
  }
  for (int64_t base : kept) {
    Segment seg;
    seg.base_offset = base;
    seg.next_offset = base;
    seg.on_disk = true;
    if (virtual_base == base) {
      seg.on_disk = false;
      seg.indexed = true;
      segments_.emplace(base, std::move(seg));
      continue;
    }
    auto inserted = segments_.emplace(base, std::move(seg));
    Segment& s = inserted.first->second;
    auto file = file_of(s);
    if (!file.ok()) return file.status();
    s.size = s.flushed = (*file)->size();
  }
  return recover_scan(cp);
}

absl::Status Log::recover_scan(const Checkpoint& cp) {
  auto cp_it = cp.segment_base >= 0 ? segments_.find(cp.segment_base) : segments_.end();
  bool trusted =
      cp_it != segments_.end() && cp_it->second.size >= cp.position && cp.offset >= cp.segment_base;
  if (trusted && cp.position == 0 && cp.offset != cp.segment_base) trusted = false;
  recovery_.checkpoint_used = trusted;
  auto it = segments_.begin();
  int64_t expected = segments_.empty() ? cp.log_start_offset : segments_.begin()->first;
  uint64_t position = 0;
  int32_t min_epoch = INT32_MIN;
  if (trusted) {
    // Segments before the checkpoint's are sealed and trusted: each ends where the next
    // begins. They are indexed lazily, on first read.
    for (auto t = segments_.begin(); t != cp_it; ++t) {
      t->second.next_offset = std::next(t)->first;
    }
    it = cp_it;
    expected = cp.offset;
    position = cp.position;
    epochs_ = cp.epochs;
    if (!epochs_.empty()) min_epoch = epochs_.back().epoch;
  }
  recovery_.checkpoint_offset = expected;
  checkpoint_ = trusted ? cp : Checkpoint{};
  int64_t trusted_offset = expected;

  for (; it != segments_.end(); ++it) {
    Segment& seg = it->second;
    if (position == 0 && seg.base_offset != expected) {
      // A segment that does not continue the log: left over from a truncation whose
      // removals were not durable. It and everything after it are stale.
      recovery_.truncated_at_offset = expected;
      recovery_.truncate_reason = absl::StrCat("stale segment ", seg.base_offset);
      drop_segments_from(it, true);
      break;
    }
    auto file = file_of(seg);
    if (!file.ok()) return file.status();
    seg.indexed = position == 0;
    ScanResult r =
        scan_frames(**file, position, expected, min_epoch, options_.batch_bytes_max,
                    [&](const ScannedBatch& b) {
                      recovery_.bytes_scanned += b.frame_bytes;
                      note_index(seg, b.header, b.position);
                      if (epochs_.empty() || epochs_.back().epoch != b.header.leader_epoch) {
                        epochs_.push_back({b.header.base_offset, b.header.leader_epoch});
                      }
                    });
    expected = r.next_offset;
    min_epoch = r.last_epoch;
    seg.next_offset = expected;
    // What recovery kept after the checkpoint may exist only in the page cache, and after a
    // failed sync in the previous incarnation those pages may never be written back (a later
    // sync would report success without them). Writing the bytes again makes them dirty, so
    // the recovery round really makes them durable.
    if (absl::Status s = rewrite(**file, position, r.end_position); !s.ok()) return s;
    if (r.clean_end && seg.size == r.end_position) {
      // The size too may be an orphaned, never-durable shrink of the previous incarnation
      // (its truncate was cut off by a failed sync): issue it again so this incarnation's
      // sync covers it, or stale batches past it could come back after a power loss.
      if (absl::Status s = (*file)->truncate(r.end_position); !s.ok()) return s;
    }
    seg.needs_sync = true;
    position = 0;
    if (!r.clean_end) {
      recovery_.bytes_truncated += seg.size - r.end_position;
      recovery_.truncated_at_offset = expected;
      recovery_.truncate_reason = r.stop_reason;
      if (absl::Status s = (*file)->truncate(r.end_position); !s.ok()) return s;
      seg.size = seg.flushed = r.end_position;
      drop_segments_from(std::next(it), true);
      gate_round_ = rounds_started_ + 1;
      break;
    }
  }
  if (epochs_.size() > kEpochRunsMax) return absl::ResourceExhaustedError("log: epoch runs");

  start_offset_ = std::max(cp.log_start_offset,
                           segments_.empty() ? cp.log_start_offset : segments_.begin()->first);
  if (segments_.empty() || expected <= start_offset_) {
    // Nothing at or after the start survived: an empty log at the start.
    // An empty segment already based at the start is kept: removing a name and creating it
    // again would leave the two operations racing in the directory.
    bool keep = segments_.size() == 1 && segments_.begin()->first == start_offset_ &&
                segments_.begin()->second.size == 0;
    if (!segments_.empty() && !keep) drop_segments_from(segments_.begin(), true);
    epochs_.clear();
    expected = start_offset_;
    trusted_offset = start_offset_;
    checkpoint_ = Checkpoint{};
  }
  if (segments_.empty()) {
    Segment seg;
    seg.base_offset = seg.next_offset = expected;
    seg.indexed = true;
    segments_.emplace(expected, std::move(seg));
  }
  next_offset_ = flushed_offset_ = expected;
  durable_offset_ = std::max(start_offset_, std::min(trusted_offset, expected));
  stable_offset_ = durable_offset_;
  if (checkpoint_.segment_base < 0) {
    checkpoint_ = Checkpoint{start_offset_, -1, 0, start_offset_, {}};
  }
  checkpoint_.log_start_offset = start_offset_;
  recovery_.segments = segments_.size();
  // Make the recovered state durable before anything new is written (see gate_round_). The
  // directory too: names the previous incarnation created may not be durable yet (its
  // sync_dir may have failed or never run), though they are visible now.
  dir_dirty_ = true;
  gate_round_ = rounds_started_ + 1;
  start_round();
  if (!recovery_.checkpoint_used || start_offset_ != cp.log_start_offset) {
    // The start was derived from the segments, which later removals may take away: record it,
    // and let syncs wait for it like for advance_start.
    const uint64_t seq = ++starts_requested_;
    std::weak_ptr<bool> alive = alive_;
    write_checkpoint(checkpoint_, [this, alive, seq](absl::Status s) {
      if (alive.expired() || !s.ok()) return;  // write_checkpoint failed the log
      starts_durable_ = std::max(starts_durable_, seq);
      for (auto& done : take_ready_waiters()) done(absl::OkStatus());
    });
  }
  return absl::OkStatus();
}

absl::Status Log::rewrite(env::File& file, uint64_t from, uint64_t to) {
  Bytes buf;
  for (uint64_t at = from; at < to;) {
    buf.resize(size_t(std::min<uint64_t>(to - at, kReadWindowBytesMax)));
    auto got = file.read(at, buf);
    if (!got.ok()) return got.status();
    if (*got != buf.size()) return absl::DataLossError("log: segment shrank during recovery");
    if (absl::Status s = file.write(at, buf); !s.ok()) return s;
    at += buf.size();
    recovery_.bytes_rewritten += buf.size();
  }
  return absl::OkStatus();
}

void Log::drop_segments_from(std::map<int64_t, Segment>::iterator it, bool in_recovery) {
  while (it != segments_.end()) {
    Segment& seg = it->second;
    if (seg.file) retire(std::move(seg.file));
    if (seg.on_disk) {
      absl::Status s = disk_.remove(join_path(dir_, segment_file_name(seg.base_offset)));
      if (!s.ok()) fail(s);
      dir_dirty_ = true;
      if (seg.flushed > 0) gate_round_ = rounds_started_ + 1;
    }
    if (in_recovery) {
      recovery_.segments_removed++;
      recovery_.bytes_truncated += seg.size;
    }
    it = segments_.erase(it);
  }
}

// ---------------------------------------------------------------------------------------
// Files

void Log::drop_file(Segment& seg) {
  if (!seg.file) return;
  if (seg.needs_sync) {
    // Its last changes (a truncation, say) are not durable yet: the next round syncs them,
    // so a truncation barrier covers them even though the segment left the map.
    seg.needs_sync = false;
    orphan(std::move(seg.file));
    return;
  }
  retire(std::move(seg.file));
}

void Log::retire(std::unique_ptr<env::File> file) {
  KEEL_CHECK(open_files_ > 0);
  open_files_--;
  bury_after_round(std::move(file));
}

void Log::bury_after_round(std::unique_ptr<env::File> file) {
  // A sync may be pending on it; destroying it would drop that callback and stall the round.
  graveyard_.push_back({rounds_started_, std::move(file)});
}

void Log::orphan(std::unique_ptr<env::File> file) {
  KEEL_CHECK(open_files_ > 0);
  open_files_--;
  orphans_.push_back(std::move(file));
}

void Log::bury() {
  while (!graveyard_.empty() && graveyard_.front().round < rounds_done_) {
    graveyard_.pop_front();
  }
}

absl::StatusOr<env::File*> Log::file_of(Segment& seg) {
  seg.last_use = ++use_counter_;
  if (seg.file) return seg.file.get();
  while (open_files_ >= options_.open_files_max) {
    // The least recently used file is closed, preferring one with no unsynced changes (if
    // its sync is in flight, it is closed once its round is done: retire); one with unsynced
    // changes goes to the next round, which syncs it and then closes it. Recovery without a trusted
    // checkpoint rewrites every segment, so its round may hold them all open at once, and the
    // replica's scan reads every segment while that round is in flight: a full budget used to
    // fail the open, or fail the scan's reads, which counted as damage
    // (`keel sim --seed 791 --seconds 60` at e9c253f).
    Segment* idle = nullptr;
    Segment* dirty = nullptr;
    Segment* syncing = nullptr;
    for (auto& [base, s] : segments_) {
      if (!s.file || &s == &seg) continue;
      // Unsynced changes decide first: a file written again while its sync is in flight
      // still needs the next round's.
      Segment*& victim = s.needs_sync ? dirty : s.sync_in_flight ? syncing : idle;
      if (victim == nullptr || s.last_use < victim->last_use) victim = &s;
    }
    if (idle != nullptr || syncing != nullptr) {
      retire(std::move((idle != nullptr ? idle : syncing)->file));
    } else if (dirty != nullptr) {
      drop_file(*dirty);
    } else {
      return absl::ResourceExhaustedError("log: open-file budget exhausted");
    }
  }
  auto file = disk_.open(join_path(dir_, segment_file_name(seg.base_offset)),
                         seg.on_disk ? env::OpenMode::kExisting : env::OpenMode::kCreate);
  if (!file.ok()) return file.status();
  if (!seg.on_disk) dir_dirty_ = true;
  seg.on_disk = true;
  seg.file = std::move(*file);
  open_files_++;
  return seg.file.get();
}

absl::StatusOr<size_t> Log::read_segment(Segment& seg, uint64_t position, std::span<uint8_t> out) {
  if (position >= seg.size) return size_t(0);
  size_t n = size_t(std::min<uint64_t>(out.size(), seg.size - position));
  size_t done = 0;
  if (position < seg.flushed) {
    size_t from_file = size_t(std::min<uint64_t>(n, seg.flushed - position));
    auto file = file_of(seg);
    if (!file.ok()) return file.status();
    auto got = (*file)->read(position, out.first(from_file));
    if (!got.ok()) return got.status();
    done = *got;
    if (done < from_file) return done;  // the file is shorter than we believe: caller verifies
  }
  if (done < n) {
    uint64_t at = position + done - seg.flushed;
    std::memcpy(out.data() + done, seg.pending.data() + at, n - done);
    done = n;
  }
  return done;
}

// ---------------------------------------------------------------------------------------
// Index

void Log::note_index(Segment& seg, const BatchHeader& h, uint64_t position) {
  if (!seg.indexed) return;
  if (seg.index.empty() || position - seg.index.back().position >= options_.index_interval_bytes) {
    seg.index.push_back({h.base_offset, position, seg.max_timestamp});
  }
  seg.max_timestamp = std::max(seg.max_timestamp, h.max_timestamp);
}

absl::Status Log::ensure_indexed(Segment& seg) {
  if (seg.indexed) return absl::OkStatus();
  seg.index.clear();
  seg.max_timestamp = INT64_MIN;
  seg.indexed = true;
  SegmentView view(*this, seg);
  ScanResult r = scan_frames(view, 0, seg.base_offset, INT32_MIN, options_.batch_bytes_max,
                             [&](const ScannedBatch& b) { note_index(seg, b.header, b.position); });
  if (!r.clean_end || r.next_offset != seg.next_offset) {
    seg.bad_position = r.end_position;
    std::string why = r.clean_end ? "segment ends early" : r.stop_reason;
    add_damage(r.next_offset, seg.next_offset - 1, why);
  }
  return absl::OkStatus();
}

void Log::add_damage(int64_t first, int64_t last, std::string reason) {
  if (last < first) last = first;
  for (Damage& d : damage_) {
    if (d.first_offset == first) {
      d.last_offset = std::max(d.last_offset, last);  // the segment may have grown since
      return;
    }
  }
  damage_.push_back({first, last, std::move(reason)});
}

void Log::record_damage(Segment& seg, int64_t first_offset, uint64_t position, std::string reason) {
  int64_t last = seg.next_offset - 1;
  for (const IndexEntry& e : seg.index) {
    if (e.position > position) {
      last = e.offset - 1;
      break;
    }
  }
  add_damage(first_offset, last, std::move(reason));
}

std::map<int64_t, Log::Segment>::iterator Log::segment_for(int64_t offset) {
  auto it = segments_.upper_bound(offset);
  if (it == segments_.begin()) return segments_.end();
  return std::prev(it);
}

std::pair<uint64_t, int64_t> Log::index_floor(const Segment& seg, int64_t offset) {
  auto e = std::upper_bound(seg.index.begin(), seg.index.end(), offset,
                            [](int64_t o, const IndexEntry& x) { return o < x.offset; });
  if (e == seg.index.begin()) return {0, seg.base_offset};
  return {std::prev(e)->position, std::prev(e)->offset};
}

absl::StatusOr<Log::Located> Log::locate(Segment& seg, int64_t offset) {
  KEEL_CHECK(offset >= seg.base_offset && offset < seg.next_offset);
  if (absl::Status s = ensure_indexed(seg); !s.ok()) return s;
  // Plain variables: the lambdas below capture them (clang-14 cannot capture bindings).
  uint64_t position;
  int64_t expected;
  std::tie(position, expected) = index_floor(seg, offset);
  // The frame stepped over last: its lastOffsetDelta (not covered by the frame CRC) decided
  // `expected`, so when the next frame does not match, the fault may be in it.
  std::optional<Located> stepped;
  auto damaged = [&](std::string reason) -> absl::Status {
    if (stepped.has_value()) {
      if (absl::Status v = verify_located(seg, *stepped); !v.ok()) return v;
    }
    record_damage(seg, expected, position, std::move(reason));
    return absl::DataLossError(absl::StrCat("log: offset ", expected, " damaged"));
  };
  uint8_t probe[kFrameProbeBytes];
  while (position < seg.size && position < seg.bad_position) {
    auto got = read_segment(seg, position, probe);
    if (!got.ok() || *got < kFrameProbeBytes) return damaged("unreadable frame header");
    auto h = parse_frame_header(ByteView(probe, kFrameProbeBytes), options_.batch_bytes_max);
    if (!h.ok()) return damaged(std::string(h.status().message()));
    if (h->base_offset != expected) return damaged("unexpected offset");
    if (h->next_offset() > offset) return Located{position, *h};
    stepped = Located{position, *h};
    position += kFrameHeaderBytes + h->total_bytes();
    expected = h->next_offset();
  }
  return damaged("offset beyond readable segment");
}

absl::StatusOr<uint64_t> Log::boundary_position(Segment& seg, int64_t offset) {
  KEEL_CHECK(offset >= seg.base_offset && offset <= seg.next_offset);
  if (offset == seg.base_offset) return uint64_t{0};
  if (offset == seg.next_offset) return seg.size;
  if (absl::Status s = ensure_indexed(seg); !s.ok()) return s;
  // Plain variables: the lambdas below capture them (clang-14 cannot capture bindings).
  uint64_t position;
  int64_t expected;
  std::tie(position, expected) = index_floor(seg, offset);
  Bytes& frame = read_buf_;
  while (expected < offset) {
    auto damaged = [&](std::string reason) {
      record_damage(seg, expected, position, std::move(reason));
      return absl::DataLossError(absl::StrCat("log: offset ", expected, " damaged"));
    };
    if (position >= seg.size) return damaged("segment ends early");
    frame.resize(kFrameProbeBytes);
    auto got = read_segment(seg, position, frame);
    if (!got.ok() || *got < kFrameProbeBytes) return damaged("unreadable frame header");
    auto h = parse_frame_header(frame, options_.batch_bytes_max);
    if (!h.ok()) return damaged(std::string(h.status().message()));
    if (h->base_offset != expected) return damaged("unexpected offset");
    frame.resize(kFrameHeaderBytes + h->total_bytes());
    got = read_segment(seg, position, frame);
    if (!got.ok() || *got < frame.size()) return damaged("unreadable batch");
    if (!verify_frame(frame, options_.batch_bytes_max).ok()) return damaged("batch CRC mismatch");
    if (h->next_offset() > offset) {
      return absl::InvalidArgumentError(
          absl::StrCat("log: offset ", offset, " is not a batch boundary"));
    }
    position += frame.size();
    expected = h->next_offset();
  }
  return position;
}

absl::Status Log::verify_located(Segment& seg, const Located& loc) {
  Bytes& frame = read_buf_;
  frame.resize(kFrameHeaderBytes + loc.header.total_bytes());
  auto got = read_segment(seg, loc.position, frame);
  if (!got.ok() || *got < frame.size()) {
    record_damage(seg, loc.header.base_offset, loc.position, "unreadable batch");
    return absl::DataLossError(
        absl::StrCat("log: batch at offset ", loc.header.base_offset, " unreadable"));
  }
  if (!verify_frame(frame, options_.batch_bytes_max).ok()) {
    record_damage(seg, loc.header.base_offset, loc.position, "batch CRC mismatch");
    return absl::DataLossError(
        absl::StrCat("log: batch at offset ", loc.header.base_offset, " damaged"));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// Append

absl::Status Log::roll(int64_t now_ms) {
  if (segments_.size() >= options_.segments_max) {
    return absl::ResourceExhaustedError("log: segments_max reached");
  }
  Segment seg;
  seg.base_offset = seg.next_offset = next_offset_;
  seg.indexed = true;
  segments_.emplace(next_offset_, std::move(seg));
  return absl::OkStatus();
}

absl::StatusOr<AppendResult> Log::append(ByteView batch,
                                         std::optional<int64_t> expected_base_offset,
                                         int64_t now_ms) {
  if (!failed_.ok()) return failed_;
  bury();
  auto h = validate_batch(batch, options_.batch_bytes_max);
  if (!h.ok()) return h.status();
  if (expected_base_offset.has_value()) {
    if (*expected_base_offset != next_offset_) {
      return absl::FailedPreconditionError(absl::StrCat(
          "log: expected base ", *expected_base_offset, " but next offset is ", next_offset_));
    }
    if (h->base_offset != *expected_base_offset) {
      return absl::InvalidArgumentError(absl::StrCat("log: batch base offset ", h->base_offset,
                                                     " != expected ", *expected_base_offset));
    }
  }
  if (next_offset_ > INT64_MAX - 1 - h->last_offset_delta) {
    return absl::OutOfRangeError("log: offset overflow");
  }
  std::optional<int32_t> last = last_term();
  if (last.has_value() && h->leader_epoch < *last) {
    return absl::InvalidArgumentError(
        absl::StrCat("log: epoch ", h->leader_epoch, " after epoch ", *last));
  }
  // Runs left over from before an empty log (all truncated or below the start) describe no
  // offset any more; dropping them keeps the runs strictly increasing.
  if (!last.has_value()) epochs_.clear();
  bool new_run = epochs_.empty() || h->leader_epoch != epochs_.back().epoch;
  if (new_run && epochs_.size() >= kEpochRunsMax) {
    return absl::ResourceExhaustedError("log: too many epoch changes");
  }
  const uint64_t frame_bytes = kFrameHeaderBytes + batch.size();
  if (pending_bytes_ + frame_bytes > options_.write_buffer_bytes_max) {
    if (write_blocked()) {
      return absl::UnavailableError("log: write buffer full while a truncate syncs");
    }
    if (absl::Status s = flush(); !s.ok()) return s;
  }
  Segment* seg = &active();
  bool too_big = seg->size + frame_bytes > options_.segment_bytes_max;
  bool too_old = options_.segment_age_ms_max > 0 && seg->first_append_ms >= 0 &&
                 now_ms - seg->first_append_ms >= options_.segment_age_ms_max;
  if (seg->size > 0 && (too_big || too_old)) {
    if (absl::Status s = roll(now_ms); !s.ok()) return s;
    seg = &active();
  }
  // Copy into the pending buffer, stamp the offset, then frame it.
  Bytes& out = seg->pending;
  const size_t at = out.size();
  out.resize(at + kFrameHeaderBytes);
  out.insert(out.end(), batch.begin(), batch.end());
  std::span<uint8_t> stored(out.data() + at + kFrameHeaderBytes, batch.size());
  set_base_offset(stored, next_offset_);
  put_be32(out.data() + at, frame_crc(stored));
  BatchHeader stamped = *h;
  stamped.base_offset = next_offset_;
  note_index(*seg, stamped, seg->size);
  seg->size += frame_bytes;
  if (seg->first_append_ms < 0) seg->first_append_ms = now_ms;
  pending_bytes_ += frame_bytes;
  if (new_run) epochs_.push_back({next_offset_, h->leader_epoch});
  AppendResult result{next_offset_, stamped.last_offset(), stamped};
  next_offset_ = stamped.next_offset();
  seg->next_offset = next_offset_;
  return result;
}

absl::Status Log::flush() {
  KEEL_CHECK(!write_blocked());
  auto it = segment_for(flushed_offset_);
  if (it == segments_.end()) it = segments_.begin();
  for (; it != segments_.end(); ++it) {
    Segment& seg = it->second;
    if (seg.pending.empty()) continue;
    auto file = file_of(seg);
    absl::Status s = file.ok() ? (*file)->write(seg.flushed, seg.pending) : file.status();
    if (!s.ok()) {
      fail(s);
      return s;
    }
    seg.flushed += seg.pending.size();
    seg.pending.clear();
    seg.needs_sync = true;
    KEEL_CHECK_EQ(seg.flushed, seg.size);
  }
  pending_bytes_ = 0;
  flushed_offset_ = next_offset_;
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// Read

absl::StatusOr<ReadResult> Log::read(int64_t from_offset, size_t max_bytes) {
  return read_batches(from_offset, max_bytes, /*keep_bytes=*/true);
}

absl::StatusOr<ReadResult> Log::verify(int64_t from_offset, size_t max_bytes) {
  return read_batches(from_offset, max_bytes, /*keep_bytes=*/false);
}

absl::StatusOr<ReadResult> Log::read_batches(int64_t from_offset, size_t max_bytes,
                                             bool keep_bytes) {
  if (from_offset < start_offset_ || from_offset >= next_offset_) {
    return absl::OutOfRangeError(absl::StrCat("log: offset ", from_offset, " outside [",
                                              start_offset_, ", ", next_offset_, ")"));
  }
  bury();
  auto it = segment_for(from_offset);
  if (it == segments_.end()) {
    add_damage(start_offset_, segments_.begin()->first - 1, "segment missing");
    return absl::DataLossError("log: no segment holds the offset");
  }
  ReadResult result;
  result.first_offset = -1;
  // One buffer reused across reads: a fresh one would cost page faults on every call. It
  // only grows (growing zero-fills): `window` is the part the last read filled.
  Bytes& buf = read_buf_;
  auto read_window = [&](Segment& seg, uint64_t at, size_t n) {
    if (buf.size() < n) buf.resize(n);
    return read_segment(seg, at, std::span<uint8_t>(buf.data(), n));
  };
  ByteView window;
  if (keep_bytes) {
    result.batches.reserve(size_t(std::min<uint64_t>(max_bytes, kReadWindowBytesMax)));
  }
  size_t taken = 0;  // bytes of the batches returned (verified), kept or not
  for (; it != segments_.end(); ++it) {
    Segment& seg = it->second;
    if (seg.next_offset == seg.base_offset) continue;  // empty segment
    uint64_t position = 0;
    int64_t expected = seg.base_offset;
    if (result.batch_count == 0) {
      auto loc = locate(seg, std::max(from_offset, seg.base_offset));
      if (!loc.ok()) return loc.status();
      position = loc->position;
      expected = loc->header.base_offset;
    }
    while (position < seg.size) {
      // Read the rest of the byte budget at once (at least one frame header).
      uint64_t budget = max_bytes > taken ? max_bytes - taken : 0;
      budget = std::clamp<uint64_t>(budget, kFrameProbeBytes, kReadWindowBytesMax);
      auto got =
          read_window(seg, position, size_t(std::min<uint64_t>(seg.size - position, budget)));
      if (!got.ok() || *got < kFrameProbeBytes) {
        record_damage(seg, expected, position, "unreadable");
        break;
      }
      window = ByteView(buf.data(), *got);
      size_t w = 0;
      bool stop = false;
      while (w + kFrameProbeBytes <= window.size()) {
        auto h = parse_frame_header(window.subspan(w), options_.batch_bytes_max);
        if (!h.ok() || h->base_offset != expected) {
          record_damage(seg, expected, position + w,
                        h.ok() ? "unexpected offset" : std::string(h.status().message()));
          stop = true;
          break;
        }
        size_t frame_bytes = kFrameHeaderBytes + h->total_bytes();
        if (result.batch_count > 0 && taken + h->total_bytes() > max_bytes) {
          stop = true;
          break;
        }
        bool reread = false;
        if (w + frame_bytes > window.size()) {
          if (w > 0) break;  // read the frame again from its start
          got = read_window(seg, position, frame_bytes);
          if (!got.ok() || *got < frame_bytes) {
            record_damage(seg, expected, position, "unreadable batch");
            stop = true;
            break;
          }
          window = ByteView(buf.data(), frame_bytes);
          reread = true;
        }
        ByteView frame = window.subspan(w, frame_bytes);
        // The header was checked in these very bytes, unless they were just read again.
        const bool verified = reread ? verify_frame(frame, options_.batch_bytes_max).ok()
                                     : verify_frame_body(frame, *h).ok();
        if (!verified) {
          record_damage(seg, expected, position + w, "batch CRC mismatch");
          stop = true;
          break;
        }
        ByteView stored = frame.subspan(kFrameHeaderBytes);
        if (keep_bytes) result.batches.insert(result.batches.end(), stored.begin(), stored.end());
        taken += stored.size();
        if (result.first_offset < 0) result.first_offset = expected;
        result.batch_count++;
        expected = h->next_offset();
        result.next_offset = expected;
        w += frame_bytes;
        if (taken >= max_bytes) {
          stop = true;
          break;
        }
      }
      position += w;
      if (stop) break;
    }
    if (result.batch_count == 0) {
      return absl::DataLossError(absl::StrCat("log: batch at offset ", expected, " damaged"));
    }
    if (position < seg.size || taken >= max_bytes) break;
  }
  if (result.batch_count == 0) return absl::DataLossError("log: nothing readable");
  return result;
}

// ---------------------------------------------------------------------------------------
// Sync (group commit)

void Log::sync(env::DoneFn done) {
  if (!failed_.ok()) {
    // Report asynchronously, like every other completion.
    std::weak_ptr<bool> alive = alive_;
    disk_.sync_dir(dir_, [alive, status = failed_, done = std::move(done)](absl::Status) mutable {
      if (!alive.expired()) done(status);
    });
    return;
  }
  // Only a round that starts after this call covers everything done before it.
  waiters_.push_back({next_offset_, starts_requested_, rounds_started_ + 1, std::move(done)});
  if (!round_in_flight_) start_round();
}

bool Log::synced() const {
  if (!failed_.ok() || round_in_flight_ || !waiters_.empty() || pending_bytes_ > 0 ||
      durable_offset_ != next_offset_ || dir_dirty_ || parent_dirty_ || !orphans_.empty() ||
      write_blocked() || starts_durable_ != starts_requested_) {
    return false;
  }
  for (const auto& [base, seg] : segments_) {
    if (seg.needs_sync || seg.sync_in_flight) return false;
  }
  return true;
}

void Log::start_round() {
  KEEL_CHECK(!round_in_flight_);
  bury();
  round_in_flight_ = true;
  const uint64_t round = ++rounds_started_;
  round_status_ = absl::OkStatus();
  if (!write_blocked() && pending_bytes_ > 0) {
    if (absl::Status s = flush(); !s.ok()) {
      round_in_flight_ = false;
      rounds_done_ = round;
      return;  // flush() failed the log and ran the waiters
    }
  }
  round_covers_ = flushed_offset_;
  std::weak_ptr<bool> alive = alive_;
  auto part_done = [this, alive, round](Segment* seg_or_null, int64_t base) {
    return [this, alive, round, base, has_seg = seg_or_null != nullptr](absl::Status s) {
      if (alive.expired()) return;
      if (has_seg) {
        auto it = segments_.find(base);
        if (it != segments_.end()) it->second.sync_in_flight = false;
      }
      if (!s.ok() && round_status_.ok()) round_status_ = s;
      KEEL_CHECK(round_outstanding_ > 0);
      if (--round_outstanding_ == 0) finish_round(round);
    };
  };
  std::vector<Segment*> to_sync;
  for (auto& [base, seg] : segments_) {
    if (seg.needs_sync && seg.file) to_sync.push_back(&seg);
  }
  std::vector<std::unique_ptr<env::File>> orphans = std::move(orphans_);
  orphans_.clear();
  bool dir = dir_dirty_ || (to_sync.empty() && orphans.empty());
  bool parent = parent_dirty_;
  dir_dirty_ = false;
  parent_dirty_ = false;
  round_outstanding_ = to_sync.size() + orphans.size() + (dir ? 1 : 0) + (parent ? 1 : 0);
  for (Segment* seg : to_sync) {
    seg->needs_sync = false;
    seg->sync_in_flight = true;
    seg->file->sync(part_done(seg, seg->base_offset));
  }
  for (std::unique_ptr<env::File>& file : orphans) {
    file->sync(part_done(nullptr, 0));
    bury_after_round(std::move(file));  // destroyed once this round has completed
  }
  if (dir) disk_.sync_dir(dir_, part_done(nullptr, 0));
  if (parent) {
    size_t slash = dir_.rfind('/');
    disk_.sync_dir(slash == std::string::npos ? "" : dir_.substr(0, slash), part_done(nullptr, 0));
  }
}

void Log::finish_round(uint64_t round) {
  KEEL_CHECK(round_in_flight_ && round == rounds_started_);
  round_in_flight_ = false;
  rounds_done_ = round;
  if (!round_status_.ok()) {
    fail(round_status_);
    return;
  }
  durable_offset_ = std::max(durable_offset_, std::min(round_covers_, next_offset_));
  std::vector<env::DoneFn> ready = take_ready_waiters();
  // Another round if someone waits for data, or if a truncate still has to be made durable.
  bool need_data = false;
  for (const Waiter& w : waiters_)
    need_data |= w.round > rounds_done_ || w.target > durable_offset_;
  // While a repair's checkpoint is being written nothing can be flushed, and every waiter
  // waits for that checkpoint anyway: its completion starts the next round.
  if (gated() || (need_data && !repair_pending())) start_round();
  maybe_checkpoint();
  for (auto& done : ready) done(absl::OkStatus());
}

std::vector<env::DoneFn> Log::take_ready_waiters() {
  std::vector<env::DoneFn> ready;
  std::vector<Waiter> waiting;
  for (Waiter& w : waiters_) {
    if (w.round <= rounds_done_ && w.target <= durable_offset_ && w.starts <= starts_durable_) {
      ready.push_back(std::move(w.done));
    } else {
      waiting.push_back(std::move(w));
    }
  }
  waiters_ = std::move(waiting);
  return ready;
}

void Log::fail(absl::Status status) {
  KEEL_CHECK(!status.ok());
  if (failed_.ok()) failed_ = status;
  std::vector<Waiter> waiters = std::move(waiters_);
  waiters_.clear();
  for (Waiter& w : waiters) w.done(failed_);
}

// ---------------------------------------------------------------------------------------
// Checkpoint

std::vector<EpochRun> Log::runs_before(int64_t offset) const {
  std::vector<EpochRun> runs;
  for (const EpochRun& r : epochs_) {
    if (r.start_offset < offset) runs.push_back(r);
  }
  return runs;
}

void Log::maybe_checkpoint() {
  if (!failed_.ok() || checkpoint_file_.busy()) return;
  int64_t target = std::min(durable_offset_, stable_offset_);
  if (target <= checkpoint_.offset || target <= start_offset_) return;
  auto it = segment_for(target == next_offset_ ? target - 1 : target);
  if (it == segments_.end()) return;
  Segment& seg = it->second;
  Checkpoint cp;
  cp.log_start_offset = start_offset_;
  cp.segment_base = seg.base_offset;
  bool same_segment = seg.base_offset == checkpoint_.segment_base;
  if (target >= seg.next_offset) {
    if (same_segment && seg.size - checkpoint_.position < options_.checkpoint_interval_bytes) {
      return;
    }
    cp.position = seg.size;
    cp.offset = seg.next_offset;
  } else if (target == seg.base_offset) {
    cp.position = 0;
    cp.offset = target;
  } else {
    if (same_segment && seg.size - checkpoint_.position < options_.checkpoint_interval_bytes) {
      return;
    }
    auto loc = locate(seg, target);
    if (!loc.ok()) return;
    cp.position = loc->position;
    cp.offset = loc->header.base_offset;
  }
  if (cp.offset <= checkpoint_.offset) return;
  // Only durable, flushed bytes may be trusted.
  KEEL_CHECK(cp.position <= seg.flushed, "checkpoint beyond flushed bytes");
  cp.epochs = runs_before(cp.offset);
  write_checkpoint(std::move(cp), [](absl::Status) {});
}

void Log::write_checkpoint(Checkpoint cp, env::DoneFn done) {
  checkpoint_ = std::move(cp);
  std::weak_ptr<bool> alive = alive_;
  checkpoint_file_.replace(encode_checkpoint(checkpoint_),
                           [this, alive, done = std::move(done)](absl::Status s) mutable {
                             if (alive.expired()) return;
                             if (!s.ok()) fail(s);
                             done(s);
                           });
}

// ---------------------------------------------------------------------------------------
// Truncation, retention, stability

absl::Status Log::truncate_suffix(int64_t offset) {
  if (!failed_.ok()) return failed_;
  if (offset == next_offset_) return absl::OkStatus();
  if (offset < start_offset_ || offset > next_offset_) {
    return absl::OutOfRangeError(absl::StrCat("log: truncate to ", offset, " outside [",
                                              start_offset_, ", ", next_offset_, "]"));
  }
  if (offset < stable_offset_) {
    return absl::FailedPreconditionError(
        absl::StrCat("log: truncate to ", offset, " below stable offset ", stable_offset_));
  }
  return cut(offset, nullptr);
}

absl::Status Log::truncate_damaged(int64_t offset) {
  if (!failed_.ok()) return failed_;
  if (damage_.empty()) return absl::FailedPreconditionError("log: no damage to truncate");
  int64_t first_damaged = INT64_MAX;
  for (const Damage& d : damage_) first_damaged = std::min(first_damaged, d.first_offset);
  if (offset < start_offset_ || offset > next_offset_) {
    return absl::OutOfRangeError(absl::StrCat("log: truncate to ", offset, " outside [",
                                              start_offset_, ", ", next_offset_, "]"));
  }
  if (offset > std::max(first_damaged, start_offset_)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "log: truncate_damaged(", offset, ") above the first damaged offset ", first_damaged));
  }
  if (checkpoint_.offset <= offset) {
    // Nothing past the cut is trusted: an ordinary truncation.
    if (absl::Status s = cut(offset, nullptr); !s.ok()) return s;
    stable_offset_ = std::min(stable_offset_, offset);
    return absl::OkStatus();
  }
  // The checkpoint trusts bytes past the cut. Until a checkpoint ending at the cut is
  // durable, the files keep every byte (a crash then recovers the log as it was), and
  // nothing is written to them (write_blocked()): recovery must never take re-appended bytes
  // on trust, nor find a trusted segment removed. Then finish_cut truncates and removes.
  DeferredCut deferred;
  if (absl::Status s = cut(offset, &deferred); !s.ok()) return s;
  stable_offset_ = std::min(stable_offset_, offset);
  Segment& seg = active();
  KEEL_CHECK(seg.next_offset == offset && seg.size <= seg.flushed,
             "the cut is below the old checkpoint, so everything before it is written");
  Checkpoint cp;
  cp.log_start_offset = start_offset_;
  cp.segment_base = seg.base_offset;
  cp.position = seg.size;
  cp.offset = offset;
  cp.epochs = runs_before(offset);
  const uint64_t seq = ++starts_requested_;
  repair_seq_ = seq;
  for (Waiter& w : waiters_) w.starts = std::max(w.starts, seq);
  std::weak_ptr<bool> alive = alive_;
  write_checkpoint(std::move(cp),
                   [this, alive, seq, deferred = std::move(deferred)](absl::Status s) {
                     if (alive.expired() || !s.ok()) return;  // write_checkpoint failed the log
                     starts_durable_ = std::max(starts_durable_, seq);
                     finish_cut(deferred);
                   });
  return absl::OkStatus();
}

void Log::finish_cut(const DeferredCut& deferred) {
  if (!failed_.ok()) return;
  // A later truncate_suffix may have cut the segment shorter, and advance_start may have
  // taken it away: never extend a file, never touch one the log no longer has.
  if (auto it = segments_.find(deferred.segment_base); it != segments_.end()) {
    Segment& seg = it->second;
    auto file = file_of(seg);
    absl::Status s = file.ok() ? absl::OkStatus() : file.status();
    if (s.ok() && (*file)->size() > deferred.position) {
      KEEL_CHECK(seg.flushed <= deferred.position, "nothing is written before finish_cut");
      s = (*file)->truncate(deferred.position);
      seg.needs_sync = true;
    }
    if (!s.ok()) return fail(s);
  }
  for (const std::string& name : deferred.doomed) {
    if (absl::Status s = disk_.remove(join_path(dir_, name)); !s.ok()) return fail(s);
    dir_dirty_ = true;
  }
  // The truncation barrier, and every sync waiting now waits for it to be durable.
  gate_round_ = rounds_started_ + 1;
  for (Waiter& w : waiters_) w.round = std::max(w.round, rounds_started_ + 1);
  if (!round_in_flight_) start_round();
}

absl::Status Log::cut(int64_t offset, DeferredCut* deferred) {
  bury();
  auto it = segment_for(offset);
  KEEL_CHECK(it != segments_.end());
  Segment& seg = it->second;
  auto at = boundary_position(seg, offset);
  if (!at.ok()) return at.status();
  const uint64_t position = *at;
  if (deferred != nullptr) {
    // The files keep their bytes until finish_cut: only the map forgets them now.
    deferred->segment_base = seg.base_offset;
    deferred->position = position;
    for (auto d = std::next(it); d != segments_.end();) {
      drop_file(d->second);
      if (d->second.on_disk) deferred->doomed.push_back(segment_file_name(d->first));
      d = segments_.erase(d);
    }
  } else {
    drop_segments_from(std::next(it), false);
  }
  if (position < seg.flushed && deferred != nullptr) {
    seg.flushed = position;
    seg.pending.clear();
  } else if (position < seg.flushed) {
    auto file = file_of(seg);
    absl::Status s = file.ok() ? (*file)->truncate(position) : file.status();
    if (!s.ok()) {
      fail(s);
      return s;
    }
    seg.flushed = position;
    seg.pending.clear();
    seg.needs_sync = true;
    gate_round_ = rounds_started_ + 1;
  } else {
    seg.pending.resize(position - seg.flushed);
  }
  seg.size = position;
  seg.next_offset = offset;
  if (seg.indexed) {
    while (!seg.index.empty() && seg.index.back().position >= position) seg.index.pop_back();
    // Recompute the newest timestamp from the last kept index entry on.
    seg.max_timestamp = seg.index.empty() ? INT64_MIN : seg.index.back().max_timestamp;
    uint64_t p = seg.index.empty() ? 0 : seg.index.back().position;
    uint8_t probe[kFrameProbeBytes];
    while (p < position) {
      auto got = read_segment(seg, p, probe);
      auto h = got.ok() && *got == kFrameProbeBytes
                   ? parse_frame_header(ByteView(probe, kFrameProbeBytes), options_.batch_bytes_max)
                   : absl::StatusOr<BatchHeader>(absl::DataLossError("short"));
      if (!h.ok()) {
        seg.indexed = false;  // rebuilt (and damage reported) on next use
        break;
      }
      seg.max_timestamp = std::max(seg.max_timestamp, h->max_timestamp);
      p += kFrameHeaderBytes + h->total_bytes();
    }
  }
  if (seg.bad_position >= position) seg.bad_position = UINT64_MAX;  // the damage is cut away
  while (!epochs_.empty() && epochs_.back().start_offset >= offset) epochs_.pop_back();
  next_offset_ = offset;
  flushed_offset_ = std::min(flushed_offset_, offset);
  durable_offset_ = std::min(durable_offset_, offset);
  round_covers_ = std::min(round_covers_, offset);
  for (Waiter& w : waiters_) w.target = std::min(w.target, offset);
  pending_bytes_ = 0;
  for (auto p = segment_for(flushed_offset_); p != segments_.end(); ++p) {
    pending_bytes_ += p->second.pending.size();
  }
  // Damage reported beyond the new end no longer exists.
  for (Damage& d : damage_) d.last_offset = std::min(d.last_offset, offset - 1);
  std::erase_if(damage_, [&](const Damage& d) {
    return d.first_offset >= offset || d.last_offset < start_offset_;
  });
  // Make the truncation durable promptly, before anything is written over it.
  if (gated() && !round_in_flight_) start_round();
  return absl::OkStatus();
}

void Log::advance_start(int64_t offset, env::DoneFn done) {
  if (!failed_.ok()) {
    std::weak_ptr<bool> alive = alive_;
    disk_.sync_dir(dir_, [alive, status = failed_, done = std::move(done)](absl::Status) mutable {
      if (!alive.expired()) done(status);
    });
    return;
  }
  bury();
  offset = std::max(offset, start_offset_);
  start_offset_ = offset;
  // Segments leave the map now, but their files are removed only once the checkpoint
  // recording the new start is durable: a crash in between must find either the old log or
  // the new start, never an old start with its segments gone.
  std::vector<std::string> doomed;
  auto doom = [&](std::map<int64_t, Segment>::iterator it) {
    drop_file(it->second);
    if (it->second.on_disk) doomed.push_back(join_path(dir_, segment_file_name(it->first)));
    return segments_.erase(it);
  };
  if (offset >= next_offset_) {
    // An (empty) segment already based at `offset` stays: removing its name later would
    // remove the new segment's file.
    for (auto it = segments_.begin(); it != segments_.end();) {
      it = it->first == offset ? std::next(it) : doom(it);
    }
    if (segments_.empty()) {
      Segment seg;
      seg.base_offset = seg.next_offset = offset;
      seg.indexed = true;
      segments_.emplace(offset, std::move(seg));
    }
    epochs_.clear();
    next_offset_ = flushed_offset_ = durable_offset_ = offset;
    round_covers_ = std::min(round_covers_, offset);
    for (Waiter& w : waiters_) w.target = std::min(w.target, offset);
    pending_bytes_ = 0;
    damage_.clear();
  } else {
    while (segments_.size() > 1 && std::next(segments_.begin())->first <= offset) {
      doom(segments_.begin());
    }
    while (epochs_.size() >= 2 && epochs_[1].start_offset <= offset) {
      epochs_.erase(epochs_.begin());
    }
    std::erase_if(damage_, [&](const Damage& d) { return d.last_offset < offset; });
  }
  stable_offset_ = std::max(stable_offset_, offset);
  Checkpoint cp = checkpoint_;
  cp.log_start_offset = offset;
  int64_t first_base = segments_.begin()->first;
  if (cp.segment_base < first_base || cp.offset < first_base) {
    // The trusted segment went: trust nothing before the first remaining segment.
    cp.segment_base = first_base;
    cp.position = 0;
    cp.offset = first_base;
  }
  cp.epochs = runs_before(cp.offset);
  std::weak_ptr<bool> alive = alive_;
  const uint64_t seq = ++starts_requested_;
  // Syncs already waiting may have covered data this call just dropped (a reset past the
  // end discards unsynced appends): they complete only once the new start is durable.
  for (Waiter& w : waiters_) w.starts = std::max(w.starts, seq);
  write_checkpoint(std::move(cp), [this, alive, seq, doomed = std::move(doomed),
                                   done = std::move(done)](absl::Status s) mutable {
    if (alive.expired()) return;
    for (const std::string& path : doomed) {
      if (!s.ok()) break;
      s = disk_.remove(path);
      dir_dirty_ = true;
    }
    if (!s.ok()) {
      fail(s);
      done(s);
      return;
    }
    starts_durable_ = std::max(starts_durable_, seq);
    std::vector<env::DoneFn> ready = take_ready_waiters();
    done(s);
    for (auto& d : ready) d(absl::OkStatus());
  });
}

void Log::mark_stable(int64_t offset) {
  stable_offset_ = std::max(stable_offset_, std::min(offset, next_offset_));
}

// ---------------------------------------------------------------------------------------
// Queries

absl::StatusOr<int32_t> Log::term_at(int64_t offset) const {
  if (offset < start_offset_ || offset >= next_offset_) {
    return absl::OutOfRangeError(absl::StrCat("log: term_at(", offset, ") outside [", start_offset_,
                                              ", ", next_offset_, ")"));
  }
  auto it = std::upper_bound(epochs_.begin(), epochs_.end(), offset,
                             [](int64_t o, const EpochRun& r) { return o < r.start_offset; });
  KEEL_CHECK(it != epochs_.begin(), "no epoch run covers offset {}", offset);
  return std::prev(it)->epoch;
}

std::optional<int32_t> Log::last_term() const {
  if (epochs_.empty() || next_offset_ == start_offset_) return std::nullopt;
  return epochs_.back().epoch;
}

absl::StatusOr<int64_t> Log::offset_for_timestamp(int64_t ts) {
  bury();
  for (auto& [base, seg] : segments_) {
    if (seg.next_offset <= start_offset_ || seg.next_offset == seg.base_offset) continue;
    if (absl::Status s = ensure_indexed(seg); !s.ok()) return s;
    if (seg.max_timestamp < ts) continue;
    // The batch lies before the first index entry whose preceding max reaches ts.
    uint64_t position = 0;
    for (const IndexEntry& e : seg.index) {
      if (e.max_timestamp >= ts) break;
      position = e.position;
    }
    uint8_t probe[kFrameProbeBytes];
    while (position < seg.size) {
      auto got = read_segment(seg, position, probe);
      if (!got.ok()) return got.status();
      if (*got < kFrameProbeBytes) break;
      auto h = parse_frame_header(ByteView(probe, kFrameProbeBytes), options_.batch_bytes_max);
      if (!h.ok()) return absl::DataLossError(h.status().message());
      if (h->max_timestamp >= ts && h->next_offset() > start_offset_) {
        return std::max(h->base_offset, start_offset_);
      }
      position += kFrameHeaderBytes + h->total_bytes();
    }
  }
  return next_offset_;
}

std::optional<int64_t> Log::retention_point(int64_t now_ms, uint64_t bytes_max,
                                            int64_t age_ms_max) {
  uint64_t total = size_bytes();
  std::optional<int64_t> point;
  for (auto it = segments_.begin(); std::next(it) != segments_.end(); ++it) {
    Segment& seg = it->second;
    bool over_size = total > bytes_max;
    bool too_old = false;
    if (age_ms_max > 0 && ensure_indexed(seg).ok()) {
      too_old = seg.max_timestamp < now_ms - age_ms_max;
    }
    if (!over_size && !too_old) break;
    total -= seg.size;
    point = std::next(it)->first;
  }
  if (point.has_value() && *point <= start_offset_) return std::nullopt;
  return point;
}

uint64_t Log::size_bytes() const {
  uint64_t total = 0;
  for (const auto& [base, seg] : segments_) total += seg.size;
  return total;
}

}  // namespace keel::log
