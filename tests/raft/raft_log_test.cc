// Unit tests of the offset-indexed log: entries that cover ranges of offsets, term lookups
// inside an entry, truncation at entry boundaries, fast-backoff hints, and the stable /
// unstable split of RaftLog.
#include "raft/raft_log.h"

#include <gtest/gtest.h>

#include "raft/log_storage.h"

namespace keel::raft {
namespace {

Entry entry(uint64_t index, uint32_t count, uint64_t term, std::string data = "") {
  Entry e;
  e.set_index(index);
  e.set_count(count);
  e.set_term(term);
  e.set_data(std::move(data));
  return e;
}

// [1] t1, [2-4] t1, [5-9] t2, [10] t3
MemoryStorage sample() {
  MemoryStorage s({1, 2, 3});
  s.append({entry(1, 1, 1), entry(2, 3, 1, "abc"), entry(5, 5, 2, "defgh"), entry(10, 1, 3)});
  return s;
}

TEST(MemoryStorage, TermsAndStartsInsideEntries) {
  MemoryStorage s = sample();
  EXPECT_EQ(s.first_index(), 1u);
  EXPECT_EQ(s.last_index(), 10u);
  EXPECT_EQ(s.term(0), 0u);
  EXPECT_EQ(s.term(3), 1u);
  EXPECT_EQ(s.term(7), 2u);
  EXPECT_EQ(s.entry_start(7), 5u);
  EXPECT_EQ(s.entry_start(9), 5u);
  EXPECT_EQ(s.entry_start(10), 10u);
}

TEST(MemoryStorage, EntriesRespectByteLimitButReturnOne) {
  MemoryStorage s = sample();
  auto all = s.entries(2, 11, 100);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);
  auto one = s.entries(2, 11, 1);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].index(), 2u);
  auto upto = s.entries(2, 5, 100);  // entries starting before offset 5
  ASSERT_TRUE(upto.ok());
  EXPECT_EQ(upto->size(), 1u);
}

TEST(MemoryStorage, CompactKeepsTermOfSnapshotPoint) {
  MemoryStorage s = sample();
  s.compact(4);
  EXPECT_EQ(s.first_index(), 5u);
  EXPECT_EQ(s.snapshot().index(), 4u);
  EXPECT_EQ(s.term(4), 1u);
  EXPECT_EQ(s.term(9), 2u);
}

TEST(RaftLog, AppendMatchesAtEntryBoundariesAndTruncatesOnConflict) {
  MemoryStorage s = sample();
  RaftLog log(s);
  EXPECT_EQ(log.last_index(), 10u);
  EXPECT_EQ(log.durable_last(), 10u);
  // prev = 9 (end of the t2 entry): the t3 entry at 10 conflicts with a t4 entry there.
  auto last = log.maybe_append(9, 2, 0, {entry(10, 2, 4, "xy"), entry(12, 1, 4)});
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(*last, 12u);
  EXPECT_EQ(log.term(10), 4u);
  EXPECT_EQ(log.term(11), 4u);
  EXPECT_EQ(log.durable_last(), 9u);  // the replaced entry is no longer durable log
  // A prev inside the log with the wrong term is rejected.
  EXPECT_FALSE(log.maybe_append(7, 1, 0, {entry(8, 1, 5)}).has_value());
  // Entries already present are not rewritten (no conflict, nothing unsent added).
  auto unsent = log.take_unsent_entries();
  ASSERT_EQ(unsent.size(), 2u);
  EXPECT_EQ(log.maybe_append(4, 1, 0, {entry(5, 5, 2, "defgh")}), 9u);
  EXPECT_FALSE(log.has_unsent_entries());
}

TEST(RaftLog, StableToIgnoresReplacedEntries) {
  MemoryStorage s = sample();
  RaftLog log(s);
  log.append({entry(11, 2, 3)});
  auto first = log.take_unsent_entries();
  log.append({entry(11, 1, 4)});  // replaced before the first write was durable
  log.stable_to({12, 3});
  EXPECT_EQ(log.durable_last(), 10u);
  s.append(log.take_unsent_entries());
  log.stable_to({11, 4});
  EXPECT_EQ(log.durable_last(), 11u);
}

TEST(RaftLog, FindConflictByTermSkipsWholeTerms) {
  MemoryStorage s = sample();
  RaftLog log(s);
  EXPECT_EQ(log.find_conflict_by_term(10, 2).index, 9u);
  EXPECT_EQ(log.find_conflict_by_term(10, 1).index, 4u);
  EXPECT_EQ(log.find_conflict_by_term(7, 1).index, 4u);
  EXPECT_EQ(log.find_conflict_by_term(10, 0).index, 0u);
  EXPECT_EQ(log.find_conflict_by_term(50, 3).index, 10u);
}

TEST(RaftLog, UpToDateComparesLastTermThenOffset) {
  MemoryStorage s = sample();
  RaftLog log(s);
  EXPECT_TRUE(log.is_up_to_date(10, 3));
  EXPECT_TRUE(log.is_up_to_date(2, 4));
  EXPECT_FALSE(log.is_up_to_date(9, 3));
  EXPECT_FALSE(log.is_up_to_date(20, 2));
}

TEST(RaftLog, RestoreStartsAfterSnapshotAndIsNotDurableUntilPersisted) {
  MemoryStorage s = sample();
  RaftLog log(s);
  SnapshotMeta meta;
  meta.set_index(20);
  meta.set_term(5);
  log.restore(meta);
  EXPECT_EQ(log.first_index(), 21u);
  EXPECT_EQ(log.last_index(), 20u);
  EXPECT_EQ(log.term(20), 5u);
  EXPECT_EQ(log.committed(), 20u);
  EXPECT_EQ(log.durable_last(), 0u);
  auto snap = log.take_unsent_snapshot();
  ASSERT_TRUE(snap.has_value());
  s.apply_snapshot(*snap);
  log.stable_snapshot_to(20);
  EXPECT_EQ(log.durable_last(), 20u);
  EXPECT_EQ(log.durable_high(), 20u);
}

TEST(RaftLog, CommittedEntriesOnlyOnceDurable) {
  MemoryStorage s = sample();
  RaftLog log(s);
  log.commit_to(9);
  auto applied = log.take_next_committed(1000);
  ASSERT_EQ(applied.size(), 3u);
  EXPECT_EQ(log.applied(), 9u);
  log.append({entry(11, 1, 3)});
  log.commit_to(11);
  applied = log.take_next_committed(1000);
  ASSERT_EQ(applied.size(), 1u);  // offset 10 only: 11 is not durable yet
  s.append(log.take_unsent_entries());
  log.stable_to({11, 3});
  EXPECT_EQ(log.take_next_committed(1000).size(), 1u);
}

// A storage that leaves data out where it may.
class MetadataStorage final : public LogStorage {
 public:
  explicit MetadataStorage(const MemoryStorage& s) : s_(s) {}
  HardState hard_state() const override { return s_.hard_state(); }
  SnapshotMeta snapshot() const override { return s_.snapshot(); }
  uint64_t first_index() const override { return s_.first_index(); }
  uint64_t last_index() const override { return s_.last_index(); }
  uint64_t term(uint64_t offset) const override { return s_.term(offset); }
  uint64_t entry_start(uint64_t offset) const override { return s_.entry_start(offset); }
  absl::StatusOr<std::vector<Entry>> entries(uint64_t lo, uint64_t hi,
                                             uint64_t max_bytes) const override {
    return s_.entries(lo, hi, max_bytes);
  }
  absl::StatusOr<std::vector<Entry>> entries_without_data(uint64_t lo, uint64_t hi,
                                                          uint64_t max_bytes) const override {
    auto out = s_.entries(lo, hi, max_bytes);
    if (out.ok()) {
      for (Entry& e : *out) e.clear_data();
    }
    return out;
  }

 private:
  const MemoryStorage& s_;
};

TEST(RaftLog, CommittedEntriesWithoutData) {
  MemoryStorage s = sample();
  MetadataStorage meta(s);
  RaftLog log(meta);
  log.commit_to(10);
  // The byte limit still counts the data: "abc" fits in 4 bytes, "defgh" does not.
  auto applied = log.take_next_committed(4, false);
  ASSERT_EQ(applied.size(), 2u);
  EXPECT_EQ(applied[1].index(), 2u);
  EXPECT_EQ(applied[1].count(), 3u);
  EXPECT_EQ(applied[1].data(), "");
  applied = log.take_next_committed(1000, true);
  ASSERT_EQ(applied.size(), 2u);
  EXPECT_EQ(applied[0].data(), "defgh");
}

}  // namespace
}  // namespace keel::raft
