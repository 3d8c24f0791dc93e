#include "raft/raft_log.h"

#include <algorithm>

#include "base/check.h"
#include "raft/planted.h"

namespace keel::raft {
namespace {

uint64_t end_of(const Entry& e) { return e.index() + e.count() - 1; }

}  // namespace

RaftLog::RaftLog(const LogStorage& storage) : storage_(storage) {
  offset_ = storage_.last_index() + 1;
  unsent_ = offset_;
  durable_high_ = offset_ - 1;
  committed_ = std::min(storage_.hard_state().commit(), storage_.last_index());
  committed_ = std::max(committed_, storage_.snapshot().index());
  applied_ = storage_.snapshot().index();
}

uint64_t RaftLog::first_index() const {
  if (snapshot_) return snapshot_->index() + 1;
  return storage_.first_index();
}

SnapshotMeta RaftLog::snapshot_meta() const {
  if (snapshot_) return *snapshot_;
  return storage_.snapshot();
}

size_t RaftLog::unstable_position(uint64_t offset) const {
  KEEL_CHECK(offset >= offset_ && offset <= last_index());
  // Most lookups are about the last entry: answered without a search.
  if (offset >= unstable_.back().index()) return unstable_.size() - 1;
  auto it = std::upper_bound(unstable_.begin(), unstable_.end(), offset,
                             [](uint64_t o, const Entry& e) { return o < e.index(); });
  KEEL_CHECK(it != unstable_.begin());
  return size_t(it - unstable_.begin()) - 1;
}

std::optional<uint64_t> RaftLog::term(uint64_t offset) const {
  const uint64_t first = first_index();
  if (offset + 1 < first || offset > last_index()) return std::nullopt;
  if (offset + 1 == first) return snapshot_meta().term();
  if (offset >= offset_) return unstable_[unstable_position(offset)].term();
  return storage_.term(offset);
}

uint64_t RaftLog::entry_start(uint64_t offset) const {
  KEEL_CHECK(offset >= first_index() && offset <= last_index());
  if (offset >= offset_) return unstable_[unstable_position(offset)].index();
  return storage_.entry_start(offset);
}

bool RaftLog::is_up_to_date(uint64_t last, uint64_t t) const {
  const uint64_t my_term = last_term();
  return t > my_term || (t == my_term && last >= last_index());
}

absl::StatusOr<std::vector<Entry>> RaftLog::slice(uint64_t lo, uint64_t hi,
                                                  uint64_t max_bytes) const {
  KEEL_CHECK(lo >= first_index() && lo < hi && hi <= last_index() + 1);
  std::vector<Entry> out;
  uint64_t bytes = 0;
  if (lo < offset_) {
    auto stable = storage_.entries(lo, std::min(hi, offset_), max_bytes);
    if (!stable.ok()) return stable.status();
    out = std::move(*stable);
    for (const Entry& e : out) bytes += e.data().size();
    // Stop if the stable part did not reach the unstable part (byte limit).
    if (out.empty() || end_of(out.back()) + 1 < std::min(hi, offset_)) return out;
    if (bytes >= max_bytes) return out;
  }
  if (hi <= offset_) return out;
  size_t pos = unstable_position(std::max(lo, offset_));
  // Room for every unstable entry before `hi` (the byte limit may stop earlier).
  const size_t end = hi > last_index() ? unstable_.size() : unstable_position(hi) + 1;
  out.reserve(out.size() + (end - pos));
  for (; pos < unstable_.size() && unstable_[pos].index() < hi; pos++) {
    bytes += unstable_[pos].data().size();
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(unstable_[pos]);
  }
  return out;
}

absl::Status RaftLog::slice_into(uint64_t lo, uint64_t hi, uint64_t max_bytes,
                                 google::protobuf::RepeatedPtrField<Entry>& out) const {
  // slice(), step by step, with `taken` for out.size() of slice's own vector.
  KEEL_CHECK(lo >= first_index() && lo < hi && hi <= last_index() + 1);
  size_t taken = 0;
  uint64_t bytes = 0;
  if (lo < offset_) {
    auto stable = storage_.entries(lo, std::min(hi, offset_), max_bytes);
    if (!stable.ok()) return stable.status();
    out.Reserve(out.size() + int(stable->size()));
    for (Entry& e : *stable) {
      bytes += e.data().size();
      *out.Add() = std::move(e);
    }
    taken = stable->size();
    if (taken == 0 || end_of(out[out.size() - 1]) + 1 < std::min(hi, offset_)) {
      return absl::OkStatus();
    }
    if (bytes >= max_bytes) return absl::OkStatus();
  }
  if (hi <= offset_) return absl::OkStatus();
  size_t pos = unstable_position(std::max(lo, offset_));
  for (; pos < unstable_.size() && unstable_[pos].index() < hi; pos++) {
    bytes += unstable_[pos].data().size();
    if (taken > 0 && bytes > max_bytes) break;
    *out.Add() = unstable_[pos];
    taken++;
  }
  return absl::OkStatus();
}

std::optional<uint64_t> RaftLog::maybe_append(uint64_t prev, uint64_t prev_term, uint64_t commit,
                                              std::vector<Entry> entries) {
  if (!match_term(prev, prev_term)) return std::nullopt;
  uint64_t last_new = prev;
  if (!entries.empty()) last_new = end_of(entries.back());
  // The first entry that is new or conflicts. Entries of one term come from one leader, so
  // the same (offset, term) means the same entry and everything before it matches.
  size_t first_new = entries.size();
  for (size_t i = 0; i < entries.size(); i++) {
    if (!match_term(entries[i].index(), entries[i].term())) {
      first_new = i;
      break;
    }
  }
  if (first_new < entries.size()) {
    const uint64_t at = entries[first_new].index();
    KEEL_CHECK(at > committed_, "conflict at {} <= committed {}", at, committed_);
    size_t from = first_new;
    if (KEEL_PLANTED(skip_truncate)) {
      // Planted bug: keep the conflicting suffix and only add what lies past our end.
      while (from < entries.size() && entries[from].index() != last_index() + 1) from++;
    }
    if (from < entries.size()) {
      entries.erase(entries.begin(), entries.begin() + long(from));
      append(std::move(entries));
    }
  }
  commit_to(std::min(commit, last_new));
  return last_new;
}

void RaftLog::append(std::vector<Entry> entries) {
  if (entries.empty()) return;
  const uint64_t at = entries.front().index();
  KEEL_CHECK(at > committed_ || at > last_index(), "append at {} <= committed {}", at, committed_);
  KEEL_CHECK(at >= first_index() && at <= last_index() + 1);
  KEEL_CHECK(at == last_index() + 1 || entry_start(at) == at, "append at {} inside an entry", at);
  truncate_unstable(at);
  for (Entry& e : entries) {
    KEEL_CHECK_EQ(e.index(), last_index() + 1);
    KEEL_CHECK(e.count() >= 1);
    unstable_.push_back(std::move(e));
  }
}

void RaftLog::truncate_unstable(uint64_t from) {
  if (from <= last_index()) cut_from_ = std::min(cut_from_, from);
  if (from < offset_) {
    // The conflict reaches into stable entries: they are replaced by unstable ones.
    unstable_.clear();
    offset_ = from;
  } else if (from <= last_index()) {
    unstable_.erase(unstable_.begin() + long(unstable_position(from)), unstable_.end());
  }
  unsent_ = std::min(unsent_, from);
}

LogPosition RaftLog::find_conflict_by_term(uint64_t index, uint64_t t) const {
  index = std::min(index, last_index());
  const uint64_t snap = first_index() - 1;
  while (index > snap) {
    const uint64_t here = *term(index);
    if (here <= t) return {index, here};
    index = entry_start(index) - 1;
  }
  return {snap, snapshot_meta().term()};
}

void RaftLog::commit_to(uint64_t c) {
  if (c <= committed_) return;
  KEEL_CHECK(c <= last_index(), "commit {} beyond last {}", c, last_index());
  committed_ = c;
}

void RaftLog::restore(const SnapshotMeta& meta) {
  if (meta.index() < last_index()) cut_from_ = std::min(cut_from_, meta.index() + 1);
  snapshot_ = meta;
  snapshot_sent_ = false;
  unstable_.clear();
  offset_ = meta.index() + 1;
  unsent_ = offset_;
  committed_ = meta.index();
  applied_ = meta.index();
}

void RaftLog::truncate_damaged(uint64_t from) {
  KEEL_CHECK(from >= first_index(), "damage at {} before the log start {}", from, first_index());
  if (from > last_index()) return;
  if (from >= offset_) {
    KEEL_CHECK_EQ(entry_start(from), from);
  } else {
    KEEL_CHECK(storage_.last_index() < from, "the caller must remove offsets >= {} first", from);
  }
  truncate_unstable(from);
  committed_ = std::min(committed_, from - 1);
  applied_ = std::min(applied_, from - 1);
}

bool RaftLog::has_unsent_entries() const { return unsent_ <= last_index(); }

std::vector<Entry> RaftLog::take_unsent_entries() {
  std::vector<Entry> out;
  if (!has_unsent_entries()) return out;
  const size_t first = unstable_position(unsent_);
  out.reserve(unstable_.size() - first);
  for (size_t pos = first; pos < unstable_.size(); pos++) out.push_back(unstable_[pos]);
  unsent_ = last_index() + 1;
  return out;
}

std::optional<SnapshotMeta> RaftLog::take_unsent_snapshot() {
  if (!has_unsent_snapshot()) return std::nullopt;
  snapshot_sent_ = true;
  return snapshot_;
}

void RaftLog::stable_to(LogPosition pos) {
  if (pos.index < offset_ || pos.index > last_index()) return;
  // A later truncation replaced the entry: the durable one is not ours any more.
  if (term(pos.index) != pos.term) return;
  while (!unstable_.empty() && end_of(unstable_.front()) <= pos.index) unstable_.pop_front();
  offset_ = pos.index + 1;
  durable_high_ = std::max(durable_high_, pos.index);
  KEEL_CHECK(unstable_.empty() || unstable_.front().index() == offset_);
}

void RaftLog::stable_snapshot_to(uint64_t index) {
  if (snapshot_ && snapshot_->index() == index && snapshot_sent_) {
    snapshot_.reset();
    durable_high_ = std::max(durable_high_, index);
  }
}

std::vector<Entry> RaftLog::take_next_committed(uint64_t max_bytes, bool with_data) {
  std::vector<Entry> out;
  if (!has_next_committed()) return out;
  // Durable entries only, so all in storage: what slice() would return.
  const uint64_t lo = applied_ + 1;
  const uint64_t hi = apply_limit() + 1;
  KEEL_CHECK(lo >= first_index() && hi <= offset_);
  auto ents =
      with_data ? slice(lo, hi, max_bytes) : storage_.entries_without_data(lo, hi, max_bytes);
  // Unreadable committed entries (a storage fault): apply nothing; the caller finds the
  // damage, removes it and reports it (Raft::report_storage_fault), which moves the
  // committed and applied bounds below it.
  if (!ents.ok()) return out;
  out = std::move(*ents);
  if (!out.empty()) applied_ = end_of(out.back());
  return out;
}

}  // namespace keel::raft
