// DurableMark: a replica's record of how far its log was durable when it last acknowledged
// anything, so that recovery can tell a torn tail (never acknowledged, safe to drop) from
// lost acknowledged data (a storage fault: the replica must abstain until repaired).
//
// The file holds two slots, one sector each: "KDM1" | u64 sequence | i64 offset | u32 CRC-32C.
// A slot counts only if it is fully readable, its CRC verifies, its offset is >= 0 and its
// sequence is at most kSequenceMax (so that the next sequence never wraps); otherwise it is
// as if lost.
// write() fills the slot the newest one is not in, then syncs; a crash during it can only
// damage that slot, so the other still holds the previous value, which covers everything
// acknowledged before the write began. The replica acknowledges nothing a round made durable
// until the mark of that round is durable too.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "env/disk.h"

namespace keel::cluster {

class DurableMark {
 public:
  // No honest file gets near it (one write per sync); a write past it fails with DataLoss.
  static constexpr uint64_t kSequenceMax = uint64_t{1} << 62;

  // Opens or creates the file.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<DurableMark>> open(env::Disk& disk,
                                                                         const std::string& path);

  // The newest readable mark; nullopt when none was ever written.
  std::optional<int64_t> value() const { return value_; }
  // True when the file holds bytes but no slot is readable: the mark is unknown.
  bool damaged() const { return damaged_; }

  // Records `offset` durably; `done` runs on the loop. One write at a time.
  void write(int64_t offset, env::DoneFn done);

 private:
  explicit DurableMark(std::unique_ptr<env::File> file) : file_(std::move(file)) {}

  std::unique_ptr<env::File> file_;
  std::optional<int64_t> value_;
  uint64_t sequence_ = 0;
  int newest_slot_ = 1;  // so the first write goes to slot 0
  bool damaged_ = false;
  bool writing_ = false;
};

}  // namespace keel::cluster
