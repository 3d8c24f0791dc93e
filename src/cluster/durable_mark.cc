#include "cluster/durable_mark.h"

#include "base/bytes.h"
#include "base/crc32c.h"

namespace keel::cluster {
namespace {

constexpr uint32_t kMagic = 0x4B444D32;  // "KDM2"
constexpr size_t kCrcAt = DurableMark::kSlotBytes - 4;

struct Copy {
  uint64_t sequence = 0;
  int64_t offset = 0;
};

std::optional<Copy> decode(const uint8_t* p, int slot) {
  if (get_be32(p) != kMagic) return std::nullopt;
  if (crc32c(ByteView(p, kCrcAt)) != get_be32(p + kCrcAt)) return std::nullopt;
  // A copy in another slot's sector arrived by a misdirected write: not this slot's value.
  if (get_be32(p + 4) != uint32_t(slot)) return std::nullopt;
  const Copy c{get_be64(p + 8), int64_t(get_be64(p + 16))};
  // Never written by write(): a buggy or hostile writer. Treat the copy as lost.
  if (c.offset < 0 || c.sequence > DurableMark::kSequenceMax) return std::nullopt;
  return c;
}

void encode(uint8_t* buf, int slot, uint64_t sequence, int64_t offset) {
  put_be32(buf, kMagic);
  put_be32(buf + 4, uint32_t(slot));
  put_be64(buf + 8, sequence);
  put_be64(buf + 16, uint64_t(offset));
  put_be32(buf + kCrcAt, crc32c(ByteView(buf, kCrcAt)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<DurableMark>> DurableMark::open(env::Disk& disk,
                                                               const std::string& path) {
  std::unique_ptr<DurableMark> mark(new DurableMark(disk, path));
  auto file = disk.open(path, env::OpenMode::kExisting);
  if (absl::IsNotFound(file.status())) return mark;  // never written
  if (!file.ok()) return file.status();
  mark->file_ = *std::move(file);
  const uint64_t size = mark->file_->size();
  for (int slot = 0; slot < kSlots; slot++) {
    uint8_t buf[kSlotBytes] = {};
    const uint64_t at = uint64_t(slot) * env::kSectorBytes;
    if (at >= size) continue;
    auto n = mark->file_->read(at, buf);
    if (!n.ok() || *n < kSlotBytes) continue;  // unreadable or short: this copy is lost
    auto c = decode(buf, slot);
    if (c && (!mark->value_ || c->sequence > mark->sequence_)) {
      mark->value_ = c->offset;
      mark->sequence_ = c->sequence;
      mark->next_bank_ = 1 - slot / kCopies;
    }
  }
  mark->damaged_ = size > 0 && !mark->value_;
  return mark;
}

void DurableMark::write(int64_t offset, env::DoneFn done) {
  queue_.push_back({offset, std::move(done)});
  if (queue_.size() == 1) start_next();
}

void DurableMark::start_next() {
  if (queue_.empty()) return;
  if (sequence_ >= kSequenceMax) {
    Queued q = std::move(queue_.front());
    queue_.pop_front();
    start_next();
    return q.done(absl::DataLossError("durable mark: sequence exhausted"));
  }
  if (file_ == nullptr) return create_then_write();
  write_bank();
}

void DurableMark::create_then_write() {
  // The first write: one bank into `<path>.tmp`, synced, then renamed into place and the
  // directory synced. A crash before the rename leaves no mark file: nothing was acknowledged.
  const std::string tmp = path_ + ".tmp";
  auto file = disk_.open(tmp, env::OpenMode::kCreate);
  if (!file.ok()) return finish(file.status());
  if (auto st = (*file)->truncate(0); !st.ok()) return finish(st);
  file_ = *std::move(file);
  if (auto st = write_copies(); !st.ok()) {
    file_.reset();
    return finish(st);
  }
  file_->sync([this, tmp](absl::Status s) {
    if (s.ok()) s = disk_.rename(tmp, path_);
    if (!s.ok()) {
      file_.reset();
      return finish(s);
    }
    const size_t slash = path_.rfind('/');
    disk_.sync_dir(slash == std::string::npos ? "" : path_.substr(0, slash),
                   [this](absl::Status s) { finish(s); });
  });
}

absl::Status DurableMark::write_copies() {
  const int64_t offset = queue_.front().offset;
  for (int copy = 0; copy < kCopies; copy++) {
    const int slot = next_bank_ * kCopies + copy;
    uint8_t buf[kSlotBytes];
    encode(buf, slot, sequence_ + 1, offset);
    if (auto st = file_->write(uint64_t(slot) * env::kSectorBytes, ByteView(buf, kSlotBytes));
        !st.ok()) {
      return st;
    }
  }
  return absl::OkStatus();
}

void DurableMark::write_bank() {
  // One synced round into the bank that does not hold value_: a crash tears only this bank.
  if (auto st = write_copies(); !st.ok()) return finish(st);
  file_->sync([this](absl::Status s) { finish(s); });
}

void DurableMark::finish(absl::Status s) {
  Queued q = std::move(queue_.front());
  queue_.pop_front();
  // A failed write may still have left copies with this sequence: never reuse it.
  sequence_++;
  if (s.ok()) {
    value_ = q.offset;
    damaged_ = false;
    next_bank_ = 1 - next_bank_;  // after a failure, the bank of value_ stays untouched
  }
  start_next();  // before done(): it may queue another write
  q.done(s);
}

}  // namespace keel::cluster
