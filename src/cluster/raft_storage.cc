#include "cluster/raft_storage.h"

#include <fmt/format.h>

#include <limits>

#include "base/check.h"
#include "log/batch.h"

namespace keel::cluster {
namespace {

constexpr size_t kScanChunkBytes = 1 << 20;

RaftStorage::EntryMeta meta_of(const log::BatchHeader& h) {
  return {uint32_t(h.last_offset_delta) + 1, uint64_t(h.leader_epoch), h.crc, h.is_control()};
}

}  // namespace

ByteView entry_batch(const raft::Entry& entry, Bytes& scratch) {
  KEEL_CHECK(entry.term() <= uint64_t(std::numeric_limits<int32_t>::max()), "term {}",
             entry.term());
  if (!entry.data().empty()) return as_bytes(entry.data());
  KEEL_CHECK(entry.type() == raft::ENTRY_NOOP && entry.count() == 1, "empty non-noop entry");
  // A Kafka control batch with one record (key: version 0, type 0). Deterministic: no
  // timestamps, so every replica builds identical bytes.
  log::BatchSpec spec;
  spec.base_offset = int64_t(entry.index());
  spec.leader_epoch = int32_t(entry.term());
  spec.attributes = log::kAttrControl;
  spec.records.push_back({Bytes{0, 0, 0, 0}, std::nullopt, 0});
  scratch = log::build_batch(spec);
  return scratch;
}

absl::Status check_entry(const raft::Entry& entry) {
  if (entry.count() == 0) return absl::InvalidArgumentError("entry with no offsets");
  if (entry.term() > uint64_t(std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError("term beyond the Kafka epoch range");
  }
  if (entry.data().empty()) {
    if (entry.type() == raft::ENTRY_NOOP && entry.count() == 1) return absl::OkStatus();
    return absl::InvalidArgumentError("empty entry that is not a no-op");
  }
  auto h = log::validate_batch(as_bytes(entry.data()));
  if (!h.ok()) return h.status();
  if (uint64_t(h->base_offset) != entry.index() || uint64_t(h->leader_epoch) != entry.term() ||
      uint64_t(h->last_offset_delta) + 1 != entry.count()) {
    return absl::InvalidArgumentError(
        fmt::format("entry {}+{}@{} carries a batch stamped {}+{}@{}", entry.index(), entry.count(),
                    entry.term(), h->base_offset, h->last_offset_delta + 1, h->leader_epoch));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<RaftStorage>> RaftStorage::load(log::Log& log, ReplicaState state) {
  std::unique_ptr<RaftStorage> s(new RaftStorage(log, std::move(state)));
  if (auto st = s->scan(); !st.ok()) return st;
  return s;
}

absl::Status RaftStorage::scan() {
  const int64_t first = int64_t(first_index());
  if (log_.start_offset() > first) {
    return absl::DataLossError(
        fmt::format("log starts at {} but the state file says {}", log_.start_offset(), first));
  }
  int64_t at = std::max(first, log_.start_offset());
  while (at < log_.next_offset()) {
    auto r = log_.read(at, kScanChunkBytes);
    // Damage (recorded in log_.damage()): the boundaries end before it, and the replica cuts
    // the log there and reports a storage fault (Replica::check_damage) instead of staying
    // down.
    if (absl::IsDataLoss(r.status()) && !log_.damage().empty()) break;
    if (!r.ok()) return r.status();
    ByteView rest(r->batches);
    while (!rest.empty()) {
      auto h = log::parse_batch_header(rest, log::kBatchBytesMax);
      KEEL_CHECK(h.ok(), "log returned an unverified batch: {}", h.status().ToString());
      // A verified batch can still carry what no leader stamps (a bug, or corruption the
      // checksums missed): a negative epoch would become a huge term.
      if (h->leader_epoch < 0) {
        return absl::DataLossError(
            fmt::format("batch at {} has leader epoch {}", h->base_offset, h->leader_epoch));
      }
      if (h->base_offset >= first) boundaries_[uint64_t(h->base_offset)] = meta_of(*h);
      rest = rest.subspan(h->total_bytes());
    }
    at = r->next_offset;
  }
  // An entry straddling the snapshot point would make first_index() not an entry start.
  if (!boundaries_.empty() && boundaries_.begin()->first != first_index()) {
    return absl::DataLossError(fmt::format("log's first batch starts at {}, expected {}",
                                           boundaries_.begin()->first, first_index()));
  }
  return absl::OkStatus();
}

uint64_t RaftStorage::last_index() const {
  if (boundaries_.empty()) return state_.snapshot().index();
  auto& [base, meta] = *boundaries_.rbegin();
  return base + meta.count - 1;
}

std::map<uint64_t, RaftStorage::EntryMeta>::const_iterator RaftStorage::containing(
    uint64_t offset) const {
  KEEL_CHECK(offset >= first_index() && offset <= last_index(), "offset {} outside [{}, {}]",
             offset, first_index(), last_index());
  // Most lookups are about the last entry (the leader's next append, a follower's newest
  // entries): answered without a search.
  auto last = std::prev(boundaries_.end());
  if (offset >= last->first) return last;
  auto it = boundaries_.upper_bound(offset);
  KEEL_CHECK(it != boundaries_.begin());
  return std::prev(it);
}

uint64_t RaftStorage::term(uint64_t offset) const {
  if (offset == state_.snapshot().index()) return state_.snapshot().term();
  return containing(offset)->second.term;
}

uint64_t RaftStorage::entry_start(uint64_t offset) const { return containing(offset)->first; }

absl::StatusOr<std::vector<raft::Entry>> RaftStorage::entries(uint64_t lo, uint64_t hi,
                                                              uint64_t max_bytes) const {
  return read_entries(lo, hi, max_bytes, true);
}

absl::StatusOr<std::vector<raft::Entry>> RaftStorage::entries_without_data(
    uint64_t lo, uint64_t hi, uint64_t max_bytes) const {
  return read_entries(lo, hi, max_bytes, false);
}

absl::StatusOr<std::vector<raft::Entry>> RaftStorage::read_entries(uint64_t lo, uint64_t hi,
                                                                   uint64_t max_bytes,
                                                                   bool with_data) const {
  KEEL_CHECK(lo < hi && hi <= last_index() + 1, "bad range [{}, {})", lo, hi);
  std::vector<raft::Entry> out;
  uint64_t bytes = 0;
  uint64_t at = lo;
  // Served from the cache while it holds the next entry (it is contiguous to the end).
  const auto cached = cache_.find(at);
  if (cached != cache_.end()) {
    // Room for the cached entries the loop below takes (same limits), so that copying them
    // in does not also move them around.
    size_t n = 0;
    uint64_t b = 0;
    for (auto it = cached; it != cache_.end() && it->first < hi; ++it, n++) {
      b += it->second.data().size();
      if (n > 0 && b > max_bytes) break;
    }
    out.reserve(n);
  }
  for (auto it = cached; it != cache_.end() && at < hi; ++it) {
    KEEL_CHECK_EQ(it->first, at);
    const raft::Entry& c = it->second;
    bytes += c.data().size();
    if (!out.empty() && bytes > max_bytes) return out;
    if (with_data) {
      out.push_back(c);
    } else {
      raft::Entry& e = out.emplace_back();
      e.set_index(c.index());
      e.set_count(c.count());
      e.set_term(c.term());
      e.set_type(c.type());
    }
    at += c.count();
  }
  while (at < hi) {
    auto r = log_.read(int64_t(at), size_t(std::min<uint64_t>(max_bytes, kScanChunkBytes)));
    if (!r.ok()) return r.status();
    ByteView rest(r->batches);
    while (!rest.empty() && at < hi) {
      auto h = log::parse_batch_header(rest, log::kBatchBytesMax);
      KEEL_CHECK(h.ok() && uint64_t(h->base_offset) == at, "log read at {} misaligned", at);
      const ByteView batch = rest.first(h->total_bytes());
      bytes += batch.size();
      if (!out.empty() && bytes > max_bytes) return out;
      raft::Entry& e = out.emplace_back();
      e.set_index(at);
      e.set_count(uint32_t(h->last_offset_delta) + 1);
      e.set_term(uint64_t(h->leader_epoch));
      e.set_type(h->is_control() ? raft::ENTRY_NOOP : raft::ENTRY_NORMAL);
      if (with_data) e.set_data(std::string(as_chars(batch)));
      at = uint64_t(h->next_offset());
      rest = rest.subspan(batch.size());
    }
  }
  return out;
}

absl::Status RaftStorage::write_entries(std::vector<raft::Entry> entries, int64_t now_ms) {
  if (entries.empty()) return absl::OkStatus();
  const uint64_t first = entries.front().index();
  KEEL_CHECK(first >= first_index() && first <= last_index() + 1, "write at {} outside log", first);
  if (auto st = drop_suffix(first); !st.ok()) return st;
  for (raft::Entry& e : entries) {
    Bytes scratch;
    const ByteView batch = entry_batch(e, scratch);
    auto r = log_.append(batch, int64_t(e.index()), now_ms);
    if (!r.ok()) return r.status();
    KEEL_CHECK_EQ(uint64_t(r->last_offset), e.index() + e.count() - 1);
    boundaries_[e.index()] = meta_of(r->header);
    cache_put(std::move(e), batch);
  }
  return absl::OkStatus();
}

void RaftStorage::cache_put(raft::Entry&& e, ByteView batch) {
  raft::Entry& c = cache_[e.index()];
  const bool noop = e.data().empty();
  c = std::move(e);  // a swap: the batch itself is moved, not copied (`batch` stays valid)
  if (noop) c.set_data(as_chars(batch).data(), batch.size());  // its control batch
  cache_bytes_ += batch.size();
  while (cache_bytes_ > kCacheBytesMax && cache_.size() > 1) {
    cache_bytes_ -= cache_.begin()->second.data().size();
    cache_.erase(cache_.begin());
  }
}

absl::Status RaftStorage::drop_suffix(uint64_t from) {
  if (int64_t(from) >= log_.next_offset()) return absl::OkStatus();
  if (auto st = log_.truncate_suffix(int64_t(from)); !st.ok()) return st;
  forget_from(from);
  return absl::OkStatus();
}

absl::Status RaftStorage::drop_damaged(uint64_t from) {
  if (int64_t(from) >= log_.next_offset()) return absl::OkStatus();
  if (auto st = log_.truncate_damaged(int64_t(from)); !st.ok()) return st;
  forget_from(from);
  return absl::OkStatus();
}

void RaftStorage::forget_from(uint64_t from) {
  boundaries_.erase(boundaries_.lower_bound(from), boundaries_.end());
  cuts_.push_back(from);
  for (auto it = cache_.lower_bound(from); it != cache_.end();) {
    cache_bytes_ -= it->second.data().size();
    it = cache_.erase(it);
  }
}

void RaftStorage::compact(uint64_t index) {
  KEEL_CHECK(index >= first_index() && index <= last_index(), "compact to {} outside [{}, {}]",
             index, first_index(), last_index());
  KEEL_CHECK(index == last_index() || boundaries_.contains(index + 1),
             "compact to {}: not the end of an entry", index);
  raft::SnapshotMeta* meta = state_.mutable_snapshot();
  meta->set_term(term(index));
  meta->set_index(index);
  boundaries_.erase(boundaries_.begin(), boundaries_.lower_bound(index + 1));
  while (!cache_.empty() && cache_.begin()->first <= index) {
    cache_bytes_ -= cache_.begin()->second.data().size();
    cache_.erase(cache_.begin());
  }
}

absl::Status RaftStorage::install_snapshot(const raft::SnapshotMeta& meta) {
  const uint64_t start = meta.index() + 1;
  // Drop everything the snapshot replaces: entries at or after the entry containing
  // `start` (the log's start moves once the state recording `meta` is durable).
  if (int64_t(start) < log_.next_offset() && !boundaries_.empty()) {
    const uint64_t cut = start < first_index() ? first_index() : entry_start(start);
    if (auto st = log_.truncate_suffix(int64_t(cut)); !st.ok()) return st;
  }
  boundaries_.clear();
  cuts_.push_back(0);
  cache_.clear();
  cache_bytes_ = 0;
  *state_.mutable_snapshot() = meta;
  return absl::OkStatus();
}

}  // namespace keel::cluster
