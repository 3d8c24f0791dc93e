#include <algorithm>

#include "base/check.h"
#include "raft/log_storage.h"

namespace keel::raft {

MemoryStorage::MemoryStorage(std::vector<uint64_t> voters) {
  for (uint64_t v : voters) snapshot_.mutable_conf()->add_voters(v);
}

uint64_t MemoryStorage::last_index() const {
  if (entries_.empty()) return snapshot_.index();
  const Entry& e = entries_.back();
  return e.index() + e.count() - 1;
}

size_t MemoryStorage::position(uint64_t offset) const {
  KEEL_CHECK(offset >= first_index() && offset <= last_index(), "offset {} outside [{}, {}]",
             offset, first_index(), last_index());
  // The last entry whose first offset is <= offset.
  auto it = std::upper_bound(entries_.begin(), entries_.end(), offset,
                             [](uint64_t o, const Entry& e) { return o < e.index(); });
  KEEL_CHECK(it != entries_.begin());
  return size_t(it - entries_.begin()) - 1;
}

uint64_t MemoryStorage::term(uint64_t offset) const {
  if (offset == snapshot_.index()) return snapshot_.term();
  return entries_[position(offset)].term();
}

uint64_t MemoryStorage::entry_start(uint64_t offset) const {
  return entries_[position(offset)].index();
}

absl::StatusOr<std::vector<Entry>> MemoryStorage::entries(uint64_t lo, uint64_t hi,
                                                          uint64_t max_bytes) const {
  KEEL_CHECK(lo < hi && hi <= last_index() + 1, "bad range [{}, {})", lo, hi);
  size_t pos = position(lo);
  KEEL_CHECK_EQ(entries_[pos].index(), lo);
  std::vector<Entry> out;
  uint64_t bytes = 0;
  for (; pos < entries_.size() && entries_[pos].index() < hi; pos++) {
    bytes += entries_[pos].data().size();
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(entries_[pos]);
  }
  return out;
}

void MemoryStorage::append(const std::vector<Entry>& entries) {
  if (entries.empty()) return;
  const uint64_t first = entries.front().index();
  KEEL_CHECK(first >= first_index() && first <= last_index() + 1, "append at {} outside [{}, {}]",
             first, first_index(), last_index() + 1);
  truncate_from(first);
  for (const Entry& e : entries) {
    KEEL_CHECK_EQ(e.index(), last_index() + 1);
    KEEL_CHECK(e.count() >= 1);
    entries_.push_back(e);
  }
}

void MemoryStorage::truncate_from(uint64_t offset) {
  if (offset > last_index()) return;
  size_t pos = position(offset);
  KEEL_CHECK_EQ(entries_[pos].index(), offset);
  entries_.resize(pos);
}

void MemoryStorage::apply_snapshot(const SnapshotMeta& meta) {
  snapshot_ = meta;
  entries_.clear();
}

void MemoryStorage::compact(uint64_t offset) {
  if (offset <= snapshot_.index()) return;
  KEEL_CHECK_LE(offset, last_index());
  size_t pos = position(offset);
  const Entry& e = entries_[pos];
  KEEL_CHECK_EQ(e.index() + e.count() - 1, offset);
  snapshot_.set_index(offset);
  snapshot_.set_term(e.term());
  entries_.erase(entries_.begin(), entries_.begin() + pos + 1);
}

}  // namespace keel::raft
