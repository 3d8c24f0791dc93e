// DurableMark: a replica's record of how far its log was durable when it last acknowledged
// anything, so that recovery can tell a torn tail (never acknowledged, safe to drop) from
// lost acknowledged data (a storage fault: the replica must abstain until repaired).
//
// The file holds two banks of three copies of the mark, one copy per sector (slot = bank * 3
// + copy):
//   "KDM2" | u32 slot number | u64 sequence | i64 offset | u32 CRC-32C of the 24 bytes before.
// A copy counts only if it is fully readable, its CRC verifies, it sits in the sector its slot
// number names (a misdirected write lands a copy elsewhere), its offset is >= 0 and its
// sequence is at most kSequenceMax (so that the next sequence never wraps).
//
// write() writes the three copies of one bank with the next sequence and syncs once; the
// banks alternate, so a write never touches the bank that holds the newest completed value.
// The mark is the valid copy with the highest sequence in either bank. Why three copies:
// once a write has completed, one corruption event touches at most two of them (a
// misdirected write leaves its own sector stale and damages another), so a valid copy of
// the newest mark survives it. Why two banks: a crash tears only the bank being written, so
// the other bank's copies of the previous value always survive it (with one bank written in
// one round, a crash could tear all three and leave the mark unknown: `keel sim --seed 779`
// lost liveness that way: two of three replicas abstaining). A new value read back from a
// torn bank is safe: the log was durable up to it before the write began. (Until session 6
// the same guarantees cost two synced rounds in one bank: copies 0 and 1, then copy 2.)
// The file exists only once a write has completed: the first write fills `<path>.tmp`, syncs
// it, renames it into place and syncs the directory. So a missing file means no mark was
// ever written (nothing acknowledged), and a file with no valid copy means the mark is
// unknown (damaged()): the replica cannot bound what it may have lost (docs/fault-model.md).
// (Creating the file in place let a torn first write read as unknown: keel sim --seed 5442
// --seconds 60.)
//
// The replica acknowledges nothing a round made durable until the mark of that round is
// durable too. Writes queue: each starts when the previous one is durable.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "env/disk.h"

namespace keel::cluster {

class DurableMark {
 public:
  static constexpr int kCopies = 3;  // per bank
  static constexpr int kBanks = 2;
  static constexpr int kSlots = kCopies * kBanks;
  static constexpr size_t kSlotBytes = 28;
  // No honest file gets near it (one write per sync); a write past it fails with DataLoss.
  static constexpr uint64_t kSequenceMax = uint64_t{1} << 62;

  // Opens the file if it exists (it is created by the first write).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<DurableMark>> open(env::Disk& disk,
                                                                         const std::string& path);

  // The durable mark; nullopt when none was ever written (or when damaged()).
  std::optional<int64_t> value() const { return value_; }
  // True when the file holds bytes but no valid copy: the mark is unknown.
  bool damaged() const { return damaged_; }
  // What the mark will say once every queued write is durable (value() when none is queued).
  std::optional<int64_t> latest() const {
    return queue_.empty() ? value_ : std::optional<int64_t>(queue_.back().offset);
  }

  // Records `offset` durably, after the writes already queued; `done` runs on the loop.
  void write(int64_t offset, env::DoneFn done);

 private:
  struct Queued {
    int64_t offset;
    env::DoneFn done;
  };

  DurableMark(env::Disk& disk, std::string path) : disk_(disk), path_(std::move(path)) {}
  void start_next();
  void create_then_write();
  absl::Status write_copies();  // into bank next_bank_, with the next sequence
  void write_bank();
  void finish(absl::Status s);

  env::Disk& disk_;
  std::string path_;
  std::unique_ptr<env::File> file_;  // null until the file exists
  std::optional<int64_t> value_;
  uint64_t sequence_ = 0;
  int next_bank_ = 0;  // never the bank of value_ once a write has completed
  bool damaged_ = false;
  std::deque<Queued> queue_;  // front() is in flight
};

}  // namespace keel::cluster
