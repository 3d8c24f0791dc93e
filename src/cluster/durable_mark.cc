#include "cluster/durable_mark.h"

#include "base/bytes.h"
#include "base/check.h"
#include "base/crc32c.h"

namespace keel::cluster {
namespace {

constexpr size_t kSlotBytes = 24;
constexpr uint32_t kMagic = 0x4B444D31;  // "KDM1"

struct Slot {
  uint64_t sequence = 0;
  int64_t offset = 0;
};

std::optional<Slot> decode(const uint8_t* p) {
  if (get_be32(p) != kMagic) return std::nullopt;
  if (crc32c(ByteView(p, 20)) != get_be32(p + 20)) return std::nullopt;
  const Slot s{get_be64(p + 4), int64_t(get_be64(p + 12))};
  // Never written by write(): a buggy or hostile writer. Treat the slot as lost.
  if (s.offset < 0 || s.sequence > DurableMark::kSequenceMax) return std::nullopt;
  return s;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DurableMark>> DurableMark::open(env::Disk& disk,
                                                               const std::string& path) {
  auto file = disk.open(path, env::OpenMode::kCreate);
  if (!file.ok()) return file.status();
  std::unique_ptr<DurableMark> mark(new DurableMark(*std::move(file)));
  const uint64_t size = mark->file_->size();
  bool any_bytes = false;
  for (int slot = 0; slot < 2; slot++) {
    uint8_t buf[kSlotBytes] = {};
    const uint64_t at = uint64_t(slot) * env::kSectorBytes;
    if (at >= size) continue;
    any_bytes = true;
    auto n = mark->file_->read(at, buf);
    if (!n.ok() || *n < kSlotBytes) continue;  // unreadable or short: this slot is lost
    auto s = decode(buf);
    if (s && (!mark->value_ || s->sequence > mark->sequence_)) {
      mark->value_ = s->offset;
      mark->sequence_ = s->sequence;
      mark->newest_slot_ = slot;
    }
  }
  mark->damaged_ = any_bytes && !mark->value_;
  return mark;
}

void DurableMark::write(int64_t offset, env::DoneFn done) {
  KEEL_CHECK(!writing_, "one durable-mark write at a time");
  if (sequence_ >= kSequenceMax) {
    return done(absl::DataLossError("durable mark: sequence exhausted"));
  }
  const int slot = 1 - newest_slot_;
  uint8_t buf[kSlotBytes];
  put_be32(buf, kMagic);
  put_be64(buf + 4, sequence_ + 1);
  put_be64(buf + 12, uint64_t(offset));
  put_be32(buf + 20, crc32c(ByteView(buf, 20)));
  if (auto st = file_->write(uint64_t(slot) * env::kSectorBytes, ByteView(buf, kSlotBytes));
      !st.ok()) {
    return done(st);
  }
  writing_ = true;
  file_->sync([this, slot, offset, done = std::move(done)](absl::Status s) mutable {
    writing_ = false;
    if (s.ok()) {
      sequence_++;
      newest_slot_ = slot;
      value_ = offset;
      damaged_ = false;
    }
    done(s);
  });
}

}  // namespace keel::cluster
