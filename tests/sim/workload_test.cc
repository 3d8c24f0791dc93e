// The world-proof workload's pieces: the record format and its recovery rules, and the
// checker's verdicts on histories that break each rule.
#include "sim/workload.h"

#include <gtest/gtest.h>

namespace keel::sim {
namespace {

Bytes log_of(uint64_t first, int n, bool pad_each = false) {
  Bytes out;
  for (int i = 0; i < n; i++) {
    const Bytes r = WorkloadProcess::encode_record(first + uint64_t(i),
                                                   as_bytes("payload-" + std::to_string(i)));
    out.insert(out.end(), r.begin(), r.end());
    if (pad_each) out.resize((out.size() / env::kSectorBytes + 1) * env::kSectorBytes, 0);
  }
  return out;
}

TEST(WorkloadRecords, ParseStopsAtTheFirstDamage) {
  const Bytes log = log_of(1, 10);
  std::vector<RecoveredRecord> got;
  uint64_t next = 0;
  EXPECT_EQ(WorkloadProcess::parse_records(log, 1, &got, &next), log.size());
  EXPECT_EQ(got.size(), 10u);
  EXPECT_EQ(next, 11u);

  for (size_t flip : {size_t(0), size_t(5), size_t(30), log.size() / 2, log.size() - 1}) {
    Bytes damaged = log;
    damaged[flip] ^= 0x10;
    got.clear();
    const size_t good = WorkloadProcess::parse_records(damaged, 1, &got, &next);
    EXPECT_LT(good, log.size()) << flip;
    EXPECT_LE(good, flip) << flip;
    EXPECT_EQ(next, 1 + got.size());
  }
  // A torn tail (a prefix of a record) ends the log before it.
  got.clear();
  const Bytes torn(log.begin(), log.end() - 3);
  EXPECT_LT(WorkloadProcess::parse_records(torn, 1, &got, &next), torn.size());
  EXPECT_EQ(got.size(), 9u);
}

TEST(WorkloadRecords, PaddingToASectorBoundaryIsSkippedButAShortZeroTailIsNot) {
  const Bytes padded = log_of(5, 3, /*pad_each=*/true);
  ASSERT_EQ(padded.size(), 3 * env::kSectorBytes);
  std::vector<RecoveredRecord> got;
  uint64_t next = 0;
  EXPECT_EQ(WorkloadProcess::parse_records(padded, 5, &got, &next), padded.size());
  EXPECT_EQ(got.size(), 3u);
  // Zeros that stop short of a boundary are a hole, not padding: the log ends before them,
  // so that recovery truncates them instead of appending after them.
  Bytes short_tail = log_of(5, 2);
  const size_t end = short_tail.size();
  short_tail.resize(end + 100, 0);
  got.clear();
  EXPECT_EQ(WorkloadProcess::parse_records(short_tail, 5, &got, &next), end);
}

TEST(WorkloadRecords, SequenceNumbersMustBeContiguous) {
  Bytes log = log_of(1, 3);
  const Bytes later = log_of(5, 2);  // 4 is missing
  log.insert(log.end(), later.begin(), later.end());
  std::vector<RecoveredRecord> got;
  uint64_t next = 0;
  WorkloadProcess::parse_records(log, 1, &got, &next);
  EXPECT_EQ(got.size(), 3u);
  EXPECT_EQ(next, 4u);
}

TEST(WorkloadChecker, AcceptsAConsistentHistory) {
  WorkloadChecker c;
  c.on_written("n1", 1, 11);
  c.on_written("n1", 2, 22);
  c.on_acked("n1", 1, 11);
  c.on_recovered("n1", {{1, 11}, {2, 22}});
  c.on_recovered("n1", {{1, 11}});  // 2 was never acknowledged: losing it is fine
  c.on_sent("n1", 7, 1, 99);
  c.on_received("n2", "n1", 7, 1, 99, false);
  c.on_received("n2", "n1", 7, 1, 99, true);  // a duplicate across reconnections
  EXPECT_TRUE(c.ok());
  EXPECT_EQ(c.counts().duplicates, 1u);
}

TEST(WorkloadChecker, FlagsLostChangedAndInventedRecords) {
  WorkloadChecker lost;
  lost.on_written("n1", 1, 11);
  lost.on_acked("n1", 1, 11);
  lost.on_recovered("n1", {});
  EXPECT_FALSE(lost.ok());

  WorkloadChecker changed;
  changed.on_written("n1", 1, 11);
  changed.on_written("n1", 1, 12);
  changed.on_acked("n1", 1, 11);
  changed.on_recovered("n1", {{1, 12}});
  EXPECT_FALSE(changed.ok());

  WorkloadChecker invented;
  invented.on_recovered("n1", {{1, 13}});
  EXPECT_FALSE(invented.ok());

  // A node whose disk was corrupted on purpose may lose acknowledged records, but it may
  // still never serve bytes nobody wrote.
  WorkloadChecker excused;
  excused.excuse("n1");
  excused.on_written("n1", 1, 11);
  excused.on_acked("n1", 1, 11);
  excused.on_recovered("n1", {});
  EXPECT_TRUE(excused.ok());
  excused.on_recovered("n1", {{1, 99}});
  EXPECT_FALSE(excused.ok());
}

TEST(WorkloadChecker, FlagsMessagesNeverSentOrChangedOnTheWire) {
  WorkloadChecker c;
  c.on_sent("n1", 7, 1, 99);
  c.on_received("n2", "n1", 7, 1, 98, false);
  EXPECT_FALSE(c.ok());
  WorkloadChecker d;
  d.on_received("n2", "n1", 7, 2, 99, false);
  EXPECT_FALSE(d.ok());
  WorkloadChecker trimmed;
  trimmed.on_written("n1", 1, 11);
  trimmed.on_acked("n1", 1, 11);
  trimmed.on_trimmed("n1", 2);
  trimmed.on_recovered("n1", {});
  EXPECT_TRUE(trimmed.ok());
}

}  // namespace
}  // namespace keel::sim
