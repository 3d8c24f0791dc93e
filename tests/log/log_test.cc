// Log behaviour on the simulated disk without faults, scenario by scenario.
#include "log/log.h"

#include <gtest/gtest.h>

#include "log/segment.h"
#include "tests/log/log_util.h"

namespace keel::log {
namespace {

using testing::make_batch;
using testing::SimRig;
using testing::sync_and_wait;

Options small_options() {
  Options o;
  o.segment_bytes_max = 4096;
  o.batch_bytes_max = 2048;
  o.write_buffer_bytes_max = 8192;
  o.index_interval_bytes = 256;
  o.checkpoint_interval_bytes = 1024;
  o.open_files_max = 4;
  return o;
}

std::unique_ptr<Log> open_log(SimRig& rig, Options o = small_options()) {
  auto log = Log::open(rig.disk, "p0", o);
  EXPECT_TRUE(log.ok()) << log.status();
  rig.run();
  return std::move(*log);
}

TEST(Log, AppendReadSyncReopen) {
  SimRig rig(1);
  auto log = open_log(rig);
  EXPECT_EQ(log->next_offset(), 0);
  std::vector<Bytes> batches;
  for (int i = 0; i < 50; i++) {
    Bytes b = make_batch(1 + i % 4, 1 + i / 20, i);
    auto r = log->append(b, std::nullopt);
    ASSERT_TRUE(r.ok()) << r.status();
    set_base_offset(b, r->base_offset);
    batches.push_back(b);
  }
  EXPECT_GT(log->segment_count(), 1u);
  EXPECT_LT(log->durable_offset(), log->next_offset());
  ASSERT_TRUE(sync_and_wait(rig, *log).ok());
  EXPECT_EQ(log->durable_offset(), log->next_offset());
  int64_t next = log->next_offset();
  // Reads return whole stored batches.
  int64_t at = 0;
  for (const Bytes& b : batches) {
    auto r = log->read(at, 1);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->batches, b);
    EXPECT_EQ(r->batch_count, 1u);
    at = r->next_offset;
  }
  EXPECT_EQ(at, next);
  // From the middle of a batch: that batch is returned whole.
  auto mid = log->read(2, 1);  // batch 1 holds offsets 1 and 2
  ASSERT_TRUE(mid.ok());
  EXPECT_EQ(mid->first_offset, 1);
  EXPECT_EQ(mid->batches, batches[1]);
  EXPECT_TRUE(absl::IsOutOfRange(log->read(next, 100).status()));
  auto terms_before = *log->term_at(next - 1);
  log.reset();
  auto again = open_log(rig);
  EXPECT_EQ(again->next_offset(), next);
  EXPECT_EQ(*again->term_at(next - 1), terms_before);
  EXPECT_EQ(*again->term_at(0), 1);
  auto all = testing::read_all(*again, 0);
  ASSERT_TRUE(all.ok()) << all.status();
  Bytes want;
  for (const Bytes& b : batches) want.insert(want.end(), b.begin(), b.end());
  EXPECT_EQ(*all, want);
  EXPECT_TRUE(again->damage().empty());
}

TEST(Log, FollowerAppendChecksOffsetsAndEpochs) {
  SimRig rig(2);
  auto log = open_log(rig);
  Bytes b = make_batch(3, 5, 1);
  EXPECT_TRUE(absl::IsInvalidArgument(log->append(b, 0).status()) == false);
  // The batch's own base offset (0) matches expected 0.
  EXPECT_EQ(log->next_offset(), 3);
  Bytes c = make_batch(1, 5, 2);
  EXPECT_TRUE(absl::IsFailedPrecondition(log->append(c, 7).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(log->append(c, 3).status()));  // its base is 0
  set_base_offset(c, 3);
  EXPECT_TRUE(log->append(c, 3).ok());
  Bytes older = make_batch(1, 4, 3);
  EXPECT_TRUE(absl::IsInvalidArgument(log->append(older, std::nullopt).status()));
  Bytes corrupt = make_batch(1, 6, 4);
  corrupt.back() ^= 1;
  EXPECT_TRUE(absl::IsDataLoss(log->append(corrupt, std::nullopt).status()));
  EXPECT_EQ(*log->term_at(3), 5);
  EXPECT_TRUE(absl::IsOutOfRange(log->term_at(4).status()));
}

TEST(Log, ReadRespectsMaxBytesButReturnsOneBatch) {
  SimRig rig(3);
  auto log = open_log(rig);
  for (int i = 0; i < 10; i++) ASSERT_TRUE(log->append(make_batch(2, 1, i, 0, 100), {}).ok());
  size_t one = make_batch(2, 1, 0, 0, 100).size();
  auto r = log->read(0, 1);
  EXPECT_EQ(r->batch_count, 1u);
  r = log->read(0, 3 * one);
  EXPECT_EQ(r->batch_count, 3u);
  EXPECT_EQ(r->next_offset, 6);
  r = log->read(0, 3 * one - 1);
  EXPECT_EQ(r->batch_count, 2u);
  r = log->read(0, 1 << 30);
  EXPECT_EQ(r->batch_count, 10u);
  // verify() walks the same batches without keeping their bytes.
  for (size_t max : {size_t(1), 3 * one, 3 * one - 1, size_t(1) << 30}) {
    for (int64_t from : {0, 3, 9}) {
      auto read = log->read(from, max);
      auto checked = log->verify(from, max);
      ASSERT_TRUE(read.ok() && checked.ok());
      EXPECT_TRUE(checked->batches.empty());
      EXPECT_EQ(checked->batch_count, read->batch_count);
      EXPECT_EQ(checked->first_offset, read->first_offset);
      EXPECT_EQ(checked->next_offset, read->next_offset);
    }
  }
}

TEST(Log, TruncateSuffixAndAppendAgain) {
  SimRig rig(4);
  auto log = open_log(rig);
  for (int i = 0; i < 40; i++) ASSERT_TRUE(log->append(make_batch(2, 1, i), {}).ok());
  ASSERT_TRUE(sync_and_wait(rig, *log).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(log->truncate_suffix(11)));  // not a boundary
  ASSERT_TRUE(log->truncate_suffix(10).ok());
  EXPECT_EQ(log->next_offset(), 10);
  EXPECT_EQ(log->durable_offset(), 10);
  for (int i = 0; i < 5; i++) ASSERT_TRUE(log->append(make_batch(1, 2, 100 + i), {}).ok());
  EXPECT_EQ(*log->term_at(9), 1);
  EXPECT_EQ(*log->term_at(10), 2);
  ASSERT_TRUE(sync_and_wait(rig, *log).ok());
  log->mark_stable(12);
  EXPECT_TRUE(absl::IsFailedPrecondition(log->truncate_suffix(11)));
  log.reset();
  auto again = open_log(rig);
  EXPECT_EQ(again->next_offset(), 15);
  EXPECT_EQ(*again->term_at(14), 2);
  auto r = again->read(10, 1);
  ASSERT_TRUE(r.ok());
  Bytes want = make_batch(1, 2, 100);
  set_base_offset(want, 10);
  EXPECT_EQ(r->batches, want);
}

// synced(): a sync now would have nothing to do (the replica then completes a round without
// one). False after anything not yet durable: appends, a truncation, a start move, a round
// in flight.
TEST(Log, SyncedOnlyWhenNothingIsLeftToSync) {
  SimRig rig(12);
  auto log = open_log(rig);
  ASSERT_TRUE(sync_and_wait(rig, *log).ok());
  EXPECT_TRUE(log->synced());
  for (int i = 0; i < 20; i++) {  // several segments (new files)
    ASSERT_TRUE(log->append(make_batch(2, 1, i), {}).ok());
    EXPECT_FALSE(log->synced());
  }
  std::optional<absl::Status> done;
  log->sync([&](absl::Status s) { done = s; });
  EXPECT_FALSE(log->synced());  // in flight
  rig.run();
  ASSERT_TRUE(done.has_value() && done->ok());
  EXPECT_TRUE(log->synced());
  ASSERT_TRUE(log->truncate_suffix(30).ok());
  EXPECT_FALSE(log->synced());
  rig.run();  // a truncation makes itself durable
  EXPECT_TRUE(log->synced());
  done.reset();
  log->advance_start(4, [&](absl::Status s) { done = s; });
  EXPECT_FALSE(log->synced());
  rig.run();
  ASSERT_TRUE(done.has_value() && done->ok());
  EXPECT_TRUE(log->synced());
}

TEST(Log, AdvanceStartRemovesSegmentsDurably) {
  SimRig rig(5);
  auto log = open_log(rig);
  for (int i = 0; i < 100; i++) ASSERT_TRUE(log->append(make_batch(1, 1, i, i), {}).ok());
  ASSERT_TRUE(sync_and_wait(rig, *log).ok());
  size_t before = log->segment_count();
  auto point = log->retention_point(0, log->size_bytes() / 2, 0);
  ASSERT_TRUE(point.has_value());
  std::optional<absl::Status> done;
  log->advance_start(*point, [&](absl::Status s) { done = s; });
  rig.run();
  ASSERT_TRUE(done.has_value() && done->ok());
  EXPECT_LT(log->segment_count(), before);
  EXPECT_EQ(log->start_offset(), *point);
  EXPECT_TRUE(absl::IsOutOfRange(log->read(*point - 1, 1).status()));
  // An exact start in the middle of a segment.
  log->advance_start(*point + 3, [&](absl::Status s) { done = s; });
  rig.run();
  log.reset();
  auto again = open_log(rig);
  EXPECT_EQ(again->start_offset(), *point + 3);
  EXPECT_EQ(again->next_offset(), 100);
  EXPECT_TRUE(again->read(*point + 3, 1).ok());
  // Past the end: the log becomes empty there.
  again->advance_start(500, [&](absl::Status s) { done = s; });
  rig.run();
  EXPECT_EQ(again->next_offset(), 500);
  EXPECT_TRUE(again->append(make_batch(1, 9, 1), {}).ok());
  ASSERT_TRUE(sync_and_wait(rig, *again).ok());
  again.reset();
  auto third = open_log(rig);
  EXPECT_EQ(third->start_offset(), 500);
  EXPECT_EQ(third->next_offset(), 501);
  EXPECT_EQ(*third->term_at(500), 9);
}

TEST(Log, OffsetForTimestampAndAgeRetention) {
  SimRig rig(6);
  auto log = open_log(rig);
  for (int i = 0; i < 60; i++)
    ASSERT_TRUE(log->append(make_batch(1, 1, i, 1000 + 10 * i), {}).ok());
  EXPECT_EQ(*log->offset_for_timestamp(0), 0);
  EXPECT_EQ(*log->offset_for_timestamp(1000 + 10 * 30), 30);
  EXPECT_EQ(*log->offset_for_timestamp(1000 + 10 * 30 - 5), 30);
  EXPECT_EQ(*log->offset_for_timestamp(99999), 60);
  ASSERT_GT(log->segment_count(), 1u);
  EXPECT_FALSE(log->retention_point(1000, UINT64_MAX, 100).has_value());
  auto point = log->retention_point(1000 + 10 * 100, UINT64_MAX, 100);
  ASSERT_TRUE(point.has_value());
  EXPECT_GT(*point, 0);
  EXPECT_LT(*point, 60);
}

TEST(Log, RollsByAge) {
  SimRig rig(7);
  Options o = small_options();
  o.segment_age_ms_max = 100;
  auto log = open_log(rig, o);
  ASSERT_TRUE(log->append(make_batch(1, 1, 1), {}, 1000).ok());
  ASSERT_TRUE(log->append(make_batch(1, 1, 2), {}, 1050).ok());
  EXPECT_EQ(log->segment_count(), 1u);
  ASSERT_TRUE(log->append(make_batch(1, 1, 3), {}, 1100).ok());
  EXPECT_EQ(log->segment_count(), 2u);
}

TEST(Log, CorruptionIsDamageNeverBytes) {
  SimRig rig(8);
  auto log = open_log(rig);
  for (int i = 0; i < 30; i++) ASSERT_TRUE(log->append(make_batch(1, 1, i, 0, 64), {}).ok());
  ASSERT_TRUE(sync_and_wait(rig, *log).ok());
  log->mark_stable(log->next_offset());
  ASSERT_TRUE(sync_and_wait(rig, *log).ok());
  rig.run();
  log.reset();
  // Flip a bit inside the first segment's 3rd batch.
  auto names = *rig.disk.list("p0");
  std::string first = "p0/" + names.front();
  ASSERT_TRUE(rig.disk.flip_bit(first, 2 * (4 + make_batch(1, 1, 0, 0, 64).size()) + 40, 1).ok());
  auto again = open_log(rig);
  EXPECT_EQ(again->next_offset(), 30);  // trusted by the checkpoint: nothing truncated
  auto r = again->verify(2, 1);
  EXPECT_TRUE(absl::IsDataLoss(r.status())) << r.status();
  ASSERT_EQ(again->damage().size(), 1u);
  EXPECT_EQ(again->damage()[0].first_offset, 2);
  r = again->read(2, 1);
  EXPECT_TRUE(absl::IsDataLoss(r.status())) << r.status();
  ASSERT_EQ(again->damage().size(), 1u);
  EXPECT_EQ(again->damage()[0].first_offset, 2);
  auto before = again->read(0, 1 << 20);
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->next_offset, 2);  // stops before the damage
  auto checked = again->verify(0, 1 << 20);
  ASSERT_TRUE(checked.ok());
  EXPECT_EQ(checked->next_offset, 2);
  EXPECT_TRUE(again->read(again->damage()[0].last_offset + 1, 1).ok());
}

// A log of `count` one-record batches (64-byte values, epoch 1, tags 0..count-1), synced,
// stable and checkpointed, then closed. Returns the stored bytes of each batch.
std::vector<Bytes> write_stable_log(SimRig& rig, int count, Options o = small_options()) {
  auto log = open_log(rig, o);
  std::vector<Bytes> stored;
  for (int i = 0; i < count; i++) {
    Bytes b = make_batch(1, 1, i, 0, 64);
    auto r = log->append(b, {});
    EXPECT_TRUE(r.ok()) << r.status();
    set_base_offset(b, r->base_offset);
    stored.push_back(b);
  }
  EXPECT_TRUE(sync_and_wait(rig, *log).ok());
  log->mark_stable(log->next_offset());
  EXPECT_TRUE(sync_and_wait(rig, *log).ok());
  rig.run();
  EXPECT_EQ(log->checkpoint_offset(), count);
  return stored;
}

// File position of batch `index` in the first segment of write_stable_log's log.
uint64_t frame_position(int index) {
  return uint64_t(index) * (kFrameHeaderBytes + make_batch(1, 1, 0, 0, 64).size());
}

std::string first_segment(SimRig& rig) { return "p0/" + rig.disk.list("p0")->front(); }

TEST(Log, TruncateDamagedRepairsTheStablePrefix) {
  SimRig rig(12);
  std::vector<Bytes> stored = write_stable_log(rig, 20);
  ASSERT_TRUE(rig.disk.flip_bit(first_segment(rig), frame_position(5) + 40, 3).ok());
  auto log = open_log(rig);  // the damage is inside the checkpoint's trusted range
  ASSERT_EQ(log->next_offset(), 20);
  EXPECT_TRUE(absl::IsFailedPrecondition(log->truncate_damaged(5)));  // nothing found yet
  EXPECT_TRUE(absl::IsDataLoss(log->read(5, 1).status()));
  ASSERT_EQ(log->damage().size(), 1u);
  EXPECT_EQ(log->damage()[0].first_offset, 5);
  EXPECT_TRUE(absl::IsFailedPrecondition(log->truncate_suffix(5)));   // stable
  EXPECT_TRUE(absl::IsFailedPrecondition(log->truncate_damaged(6)));  // above the damage
  EXPECT_TRUE(absl::IsOutOfRange(log->truncate_damaged(-1)));
  ASSERT_TRUE(log->truncate_damaged(5).ok());
  EXPECT_EQ(log->next_offset(), 5);
  EXPECT_LE(log->stable_offset(), 5);
  EXPECT_LE(log->checkpoint_offset(), 5);
  EXPECT_TRUE(log->damage().empty());
  // Fetched again from a peer: the same bytes, as follower appends.
  for (int i = 5; i < 20; i++) ASSERT_TRUE(log->append(stored[size_t(i)], i).ok());
  ASSERT_TRUE(sync_and_wait(rig, *log).ok());
  log->mark_stable(20);
  ASSERT_TRUE(sync_and_wait(rig, *log).ok());
  rig.run();
  Bytes want;
  for (const Bytes& b : stored) want.insert(want.end(), b.begin(), b.end());
  EXPECT_EQ(*testing::read_all(*log, 0), want);
  log.reset();
  auto again = open_log(rig);
  EXPECT_EQ(again->next_offset(), 20);
  EXPECT_EQ(*testing::read_all(*again, 0), want);
  EXPECT_TRUE(again->damage().empty());
}

TEST(Log, OpenSucceedsOverAnUnreadableTrustedSector) {
  SimRig rig(13);
  std::vector<Bytes> stored = write_stable_log(rig, 20);
  ASSERT_TRUE(rig.disk.make_unreadable(first_segment(rig), frame_position(3) / 512).ok());
  auto log = open_log(rig);
  ASSERT_EQ(log->next_offset(), 20);
  auto all = testing::read_all(*log, 0);
  EXPECT_TRUE(absl::IsDataLoss(all.status())) << all.status();
  ASSERT_FALSE(log->damage().empty());
  const int64_t first = log->damage()[0].first_offset;
  EXPECT_LE(first, 3);
  ASSERT_TRUE(log->truncate_damaged(first).ok());
  for (int64_t i = first; i < 20; i++) ASSERT_TRUE(log->append(stored[size_t(i)], i).ok());
  ASSERT_TRUE(sync_and_wait(rig, *log).ok());
  log.reset();
  auto again = open_log(rig);
  Bytes want;
  for (const Bytes& b : stored) want.insert(want.end(), b.begin(), b.end());
  EXPECT_EQ(*testing::read_all(*again, 0), want);
}

// A crash at every point of a repair recovers the log as it was before the cut (damage and
// all) or after it, never new bytes taken on trust from the old checkpoint, never a mix.
TEST(Log, TruncateDamagedSurvivesACrashAtEveryStep) {
  // Six batches per segment: the damaged batch 5 ends the first one, so the old log serves
  // every other batch, and the re-appended ones go to segment files created again under the
  // same names (where a stale checkpoint would trust them).
  Options o = small_options();
  o.batch_bytes_max = 512;
  o.segment_bytes_max = 6 * (kFrameHeaderBytes + make_batch(1, 1, 0, 0, 64).size());
  int completed = 0;
  for (int steps = 0; steps < 80; steps++) {
    SimRig rig(14);
    std::vector<Bytes> old = write_stable_log(rig, 20, o);
    ASSERT_TRUE(rig.disk.flip_bit(first_segment(rig), frame_position(5) + 40, 3).ok());
    auto log = open_log(rig, o);
    ASSERT_TRUE(absl::IsDataLoss(log->read(5, 1).status()));
    ASSERT_TRUE(log->truncate_damaged(5).ok());
    std::vector<Bytes> fresh(old.begin(), old.begin() + 5);
    for (int i = 5; i < 20; i++) {
      Bytes b = make_batch(1, 2, 100 + i, 0, 64);  // different bytes at the same offsets
      set_base_offset(b, i);
      ASSERT_TRUE(log->append(b, i).ok());
      fresh.push_back(b);
    }
    const bool synced = testing::sync_then_crash(rig, log, steps);
    auto again = open_log(rig, o);
    // Which log came back is decided by the first batch at or after the cut that differs.
    int side = 0;  // 0: undecided, 1: old, 2: fresh
    for (int64_t at = again->start_offset(); at < again->next_offset(); at++) {
      auto r = again->read(at, 1);
      if (!r.ok()) {
        // Only the old damage, only in the old log.
        bool covered = false;
        for (const Damage& d : again->damage()) covered |= d.first_offset == 5 && at == 5;
        EXPECT_TRUE(covered && side != 2) << "steps " << steps << " at " << at << r.status();
        side = 1;
        continue;
      }
      const bool as_old = r->batches == old[size_t(at)];
      const bool as_fresh = r->batches == fresh[size_t(at)];
      EXPECT_TRUE(as_old || as_fresh) << "steps " << steps << " at " << at;
      if (as_old != as_fresh) {
        const int now = as_old ? 1 : 2;
        EXPECT_TRUE(side == 0 || side == now) << "steps " << steps << " at " << at;
        side = now;
      }
    }
    if (synced) {
      EXPECT_EQ(side, 2) << "steps " << steps;
      EXPECT_EQ(again->next_offset(), 20) << "steps " << steps;
      completed++;
    }
  }
  EXPECT_GT(completed, 0);
}

TEST(Log, TruncateVerifiesTheBatchItCutsAfter) {
  SimRig rig(15);
  Options o = small_options();
  o.index_interval_bytes = 1 << 20;  // one index entry: truncate steps over every batch
  auto log = open_log(rig, o);
  for (int i = 0; i < 10; i++) ASSERT_TRUE(log->append(make_batch(1, 1, i, 0, 64), {}).ok());
  ASSERT_TRUE(sync_and_wait(rig, *log).ok());
  // lastOffsetDelta (batch bytes 23..26) of batch 3 becomes 2: covered only by the batch CRC.
  ASSERT_TRUE(
      rig.disk.flip_bit(first_segment(rig), frame_position(3) + kFrameHeaderBytes + 26, 1).ok());
  absl::Status s = log->truncate_suffix(4);
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  ASSERT_EQ(log->damage().size(), 1u);
  EXPECT_EQ(log->damage()[0].first_offset, 3);
  // A read that steps over the damaged header attributes the damage to it, not to batch 4.
  SimRig rig2(16);
  auto log2 = open_log(rig2, o);
  for (int i = 0; i < 10; i++) ASSERT_TRUE(log2->append(make_batch(1, 1, i, 0, 64), {}).ok());
  ASSERT_TRUE(sync_and_wait(rig2, *log2).ok());
  ASSERT_TRUE(
      rig2.disk.flip_bit(first_segment(rig2), frame_position(3) + kFrameHeaderBytes + 26, 2).ok());
  EXPECT_TRUE(absl::IsDataLoss(log2->read(7, 1).status()));
  ASSERT_EQ(log2->damage().size(), 1u);
  EXPECT_EQ(log2->damage()[0].first_offset, 3);
  ASSERT_TRUE(log2->truncate_damaged(3).ok());
  EXPECT_EQ(log2->next_offset(), 3);
  EXPECT_TRUE(testing::read_all(*log2, 0).ok());
}

// Found by the model test (1 in ~700,000 IO-fault cases): advance_start past the end took a
// segment whose truncation was not durable yet out of the map, so the truncation barrier's
// round no longer synced it; a batch appended after the new start became durable in a new
// segment while the old checkpoint and the untruncated segment survived a power loss, and
// recovery served the truncated batch followed by the new one (a state the log never had).
TEST(Log, AdvanceStartDuringATruncationBarrier) {
  // Slow syncs now and then, so that the rounds sometimes finish before the checkpoint.
  sim::DiskFaults faults;
  faults.sync_slow_ppm = 300'000;
  faults.sync_slow_latency_max_ns = 20'000'000;
  int completed = 0;
  for (int steps = 0; steps < 30; steps++) {
    for (uint64_t seed = 0; seed < 40; seed++) {
      SimRig rig(100 + seed, faults);
      auto log = open_log(rig);
      Bytes first = make_batch(2, 1, 1);
      ASSERT_TRUE(log->append(first, {}).ok());
      log->sync([](absl::Status) {});  // the round writes `first`, its sync stays in flight
      ASSERT_TRUE(log->truncate_suffix(0).ok());
      ASSERT_TRUE(log->append(make_batch(1, 1, 2), {}).ok());
      log->advance_start(2, [](absl::Status) {});
      Bytes last = make_batch(1, 1, 3);
      ASSERT_TRUE(log->append(last, {}).ok());
      set_base_offset(last, 2);
      const bool synced = testing::sync_then_crash(rig, log, steps);
      auto again = open_log(rig);
      auto all = testing::read_all(*again, again->start_offset());
      ASSERT_TRUE(all.ok()) << all.status();
      // Before the new start is durable: empty at 0 (the truncation), or still `first`
      // alone (the truncation lost), or [0, 1) with the batch appended after it. After:
      // empty at 2, or `last` at 2. Never `first` followed by `last`.
      if (again->start_offset() == 0) {
        EXPECT_LE(again->next_offset(), 2) << "steps " << steps << " seed " << seed;
      } else {
        EXPECT_EQ(again->start_offset(), 2);
        if (again->next_offset() == 3) {
          EXPECT_EQ(*all, last);
        }
      }
      if (synced) {
        EXPECT_EQ(again->start_offset(), 2) << "steps " << steps << " seed " << seed;
        EXPECT_EQ(again->next_offset(), 3) << "steps " << steps << " seed " << seed;
        completed++;
      }
    }
  }
  EXPECT_GT(completed, 0);
}

TEST(Log, TornTailIsTruncatedAtRecovery) {
  SimRig rig(9);
  auto log = open_log(rig);
  for (int i = 0; i < 5; i++) ASSERT_TRUE(log->append(make_batch(1, 1, i), {}).ok());
  ASSERT_TRUE(sync_and_wait(rig, *log).ok());
  for (int i = 0; i < 5; i++) ASSERT_TRUE(log->append(make_batch(1, 1, 10 + i), {}).ok());
  log->sync([](absl::Status) {});
  log.reset();
  rig.disk.crash();
  auto again = open_log(rig);
  EXPECT_GE(again->next_offset(), 5);
  EXPECT_LE(again->next_offset(), 10);
  ASSERT_TRUE(testing::read_all(*again, 0).ok());
}

TEST(Log, RejectsBadOptions) {
  SimRig rig(10);
  Options o;
  o.segment_bytes_max = 100;
  EXPECT_TRUE(absl::IsInvalidArgument(Log::open(rig.disk, "x", o).status()));
  o = Options();
  o.open_files_max = 1;
  EXPECT_TRUE(absl::IsInvalidArgument(Log::open(rig.disk, "x", o).status()));
}

TEST(Log, OpenFileBudgetIsKept) {
  SimRig rig(11);
  Options o = small_options();
  o.open_files_max = 3;
  auto log = open_log(rig, o);
  for (int i = 0; i < 200; i++) {
    ASSERT_TRUE(log->append(make_batch(1, 1, i, 0, 200), {}).ok());
    if (i % 10 == 0) {
      ASSERT_TRUE(sync_and_wait(rig, *log).ok());
    }
    EXPECT_LE(log->open_file_count(), 3u);
  }
  ASSERT_TRUE(sync_and_wait(rig, *log).ok());
  EXPECT_GT(log->segment_count(), 10u);
  ASSERT_TRUE(testing::read_all(*log, 0).ok());
  EXPECT_LE(log->open_file_count(), 3u);
}

// Without a trusted checkpoint, recovery scans and rewrites every segment, and each then
// needs a sync; with more segments than the open-file budget, that used to fail the open
// ("log: open-file budget exhausted (sync needed)"), and reading the log while the recovery
// round was in flight (as the replica's scan does right after the open) failed its reads,
// which counted as damage (`keel sim --seed 791 --seconds 60` at e9c253f). Files over the
// budget are closed once their sync is done, or handed to the next round to sync first.
TEST(Log, RecoveryOfAllSegmentsKeepsToTheOpenFileBudget) {
  SimRig rig(13);
  Options o = small_options();  // open_files_max 4
  std::vector<Bytes> stored = write_stable_log(rig, 300, o);
  Bytes want;
  for (const Bytes& b : stored) want.insert(want.end(), b.begin(), b.end());
  ASSERT_TRUE(rig.disk.remove("p0/checkpoint").ok());
  auto log = Log::open(rig.disk, "p0", o);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_FALSE((*log)->recovery().checkpoint_used);
  EXPECT_GT((*log)->segment_count(), 2 * o.open_files_max);
  EXPECT_LE((*log)->open_file_count(), o.open_files_max);
  auto during = testing::read_all(**log, 0);  // the recovery round is still in flight
  ASSERT_TRUE(during.ok()) << during.status();
  EXPECT_EQ(*during, want);
  EXPECT_TRUE((*log)->damage().empty());
  ASSERT_TRUE(sync_and_wait(rig, **log).ok());
  EXPECT_EQ((*log)->durable_offset(), 300);
  EXPECT_EQ(*testing::read_all(**log, 0), want);
  EXPECT_LE((*log)->open_file_count(), o.open_files_max);
}

}  // namespace
}  // namespace keel::log
