// The crash model: synced data survives; unsynced sectors are kept, dropped or torn and
// nothing else changes; names need sync_dir; renames are atomic; callbacks and handles die.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "tests/simdisk/simdisk_util.h"

namespace keel::sim::testing {
namespace {

using env::kSectorBytes;
using env::OpenMode;

constexpr int kSeeds = 300;

DiskFaults only_drop() {
  DiskFaults f;
  f.crash_keep_weight = 0;
  f.crash_drop_weight = 1;
  f.crash_tear_weight = 0;
  return f;
}

DiskFaults only_keep() {
  DiskFaults f;
  f.crash_keep_weight = 1;
  f.crash_drop_weight = 0;
  f.crash_tear_weight = 0;
  return f;
}

Bytes sector_of(const Bytes& data, uint64_t sector, uint64_t size) {
  Bytes out(kSectorBytes, 0);
  const uint64_t start = sector * kSectorBytes;
  if (start < std::min<uint64_t>(size, data.size())) {
    const uint64_t end = std::min<uint64_t>({start + kSectorBytes, size, data.size()});
    std::copy(data.begin() + long(start), data.begin() + long(end), out.begin());
  }
  return out;
}

TEST(SimDiskCrash, SyncedBytesSurvive) {
  for (int seed = 0; seed < kSeeds; seed++) {
    Rig rig{uint64_t(seed)};
    auto f = rig.open("log");
    ASSERT_TRUE(rig.sync_dir("").ok());
    const Bytes data = pattern(3 * kSectorBytes + 100, uint8_t(seed));
    ASSERT_TRUE(f->write(0, data).ok());
    ASSERT_TRUE(rig.sync(*f).ok());
    rig.disk.crash();
    EXPECT_EQ(*rig.read_all("log"), data) << "seed " << seed;
  }
}

// Synced content A over 4 sectors; then unsynced writes: part of sector 1, all of sector 2,
// and an append covering sectors 4-5. After a crash, each written sector is the new content,
// the old content, or something else (torn), and every byte outside them is unchanged.
TEST(SimDiskCrash, UnsyncedSectorsAreKeptDroppedOrTornAndNothingElseChanges) {
  int kept = 0, dropped = 0, torn = 0;
  std::set<uint64_t> sizes;
  for (int seed = 0; seed < kSeeds; seed++) {
    Rig rig{uint64_t(seed)};
    auto f = rig.open("log");
    ASSERT_TRUE(rig.sync_dir("").ok());
    const Bytes old_data = pattern(4 * kSectorBytes, 1);
    ASSERT_TRUE(f->write(0, old_data).ok());
    ASSERT_TRUE(rig.sync(*f).ok());
    ASSERT_TRUE(f->write(kSectorBytes + 1000, pattern(100, 2)).ok());
    ASSERT_TRUE(f->write(2 * kSectorBytes, pattern(kSectorBytes, 3)).ok());
    ASSERT_TRUE(f->write(4 * kSectorBytes, pattern(kSectorBytes + 500, 4)).ok());
    Bytes new_data(f->size());
    ASSERT_EQ(*f->read(0, new_data), new_data.size());
    const std::set<uint64_t> written = {1, 2, 4, 5};
    rig.disk.crash();
    const Bytes after = *rig.read_all("log");
    sizes.insert(after.size());
    // The size is the durable size or the end of a surviving appended sector.
    EXPECT_TRUE(after.size() == 4 * kSectorBytes || after.size() == 5 * kSectorBytes ||
                after.size() == new_data.size())
        << after.size();
    for (uint64_t s = 0; s * kSectorBytes < after.size(); s++) {
      const Bytes got = sector_of(after, s, after.size());
      const Bytes was = sector_of(old_data, s, after.size());
      const Bytes now = sector_of(new_data, s, after.size());
      if (!written.contains(s)) {
        EXPECT_EQ(got, was) << "seed " << seed << " sector " << s << " changed";
      } else if (got == now && got != was) {
        kept++;
      } else if (got == was) {
        dropped++;
      } else {
        torn++;
      }
    }
    // A sector past the durable end that did not survive reads as zeros only if a later
    // one survived (a hole); the file never ends in a dropped sector.
    if (after.size() > 4 * kSectorBytes) {
      const uint64_t last = (after.size() - 1) / kSectorBytes;
      EXPECT_NE(sector_of(after, last, after.size()), Bytes(kSectorBytes, 0));
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(dropped, 0);
  EXPECT_GT(torn, 0);
  EXPECT_EQ(sizes,
            (std::set<uint64_t>{4 * kSectorBytes, 5 * kSectorBytes, 5 * kSectorBytes + 500}));
}

// A log appends without padding: its synced tail shares a sector with the next, unsynced
// append. Whatever a crash does to that sector, the synced bytes in it survive.
TEST(SimDiskCrash, SyncedBytesSharingASectorWithAnUnsyncedAppendSurvive) {
  int torn = 0;
  for (int seed = 0; seed < kSeeds; seed++) {
    DiskFaults faults;
    faults.crash_keep_weight = 0;
    faults.crash_drop_weight = 0;
    faults.crash_tear_weight = 1;
    Rig rig{uint64_t(seed), faults};
    auto f = rig.open("log");
    ASSERT_TRUE(rig.sync_dir("").ok());
    const Bytes synced = pattern(kSectorBytes + 1000, 1);
    ASSERT_TRUE(f->write(0, synced).ok());
    ASSERT_TRUE(rig.sync(*f).ok());
    ASSERT_TRUE(f->append(pattern(5000, 2)).ok());  // fills sector 1, spills into sector 2
    rig.disk.crash();
    const Bytes after = *rig.read_all("log");
    ASSERT_GE(after.size(), synced.size());
    EXPECT_EQ(Bytes(after.begin(), after.begin() + long(synced.size())), synced) << seed;
    torn += rig.disk.stats().crash_sectors_torn > 0;
  }
  EXPECT_EQ(torn, kSeeds);
}

TEST(SimDiskCrash, WritesAfterTheSyncCallAreNotCoveredByIt) {
  Rig rig(11, only_drop());
  auto f = rig.open("log");
  ASSERT_TRUE(rig.sync_dir("").ok());
  ASSERT_TRUE(f->write(0, as_bytes("first")).ok());
  bool done = false;
  f->sync([&](absl::Status s) {
    EXPECT_TRUE(s.ok());
    done = true;
  });
  ASSERT_TRUE(f->write(0, as_bytes("SECOND-and-longer")).ok());  // same sector, after the call
  while (!done && rig.scheduler.step()) {
  }
  ASSERT_TRUE(done);
  EXPECT_EQ(*rig.disk.durable_size("log"), 5u);
  EXPECT_EQ(*rig.disk.pending_sectors("log"), 1u);
  EXPECT_EQ(*rig.read_all("log"), to_bytes("SECOND-and-longer"));  // the page cache
  rig.disk.crash();
  EXPECT_EQ(*rig.read_all("log"), to_bytes("first"));
}

TEST(SimDiskCrash, PendingSyncCallbacksAreDroppedAndNothingNewBecomesDurable) {
  Rig rig(12, only_drop());
  auto f = rig.open("log");
  ASSERT_TRUE(rig.sync_dir("").ok());
  ASSERT_TRUE(f->write(0, as_bytes("data")).ok());
  bool called = false;
  f->sync([&](absl::Status) { called = true; });
  bool dir_called = false;
  rig.disk.sync_dir("", [&](absl::Status) { dir_called = true; });
  rig.disk.crash();
  while (rig.scheduler.step()) {
  }
  EXPECT_FALSE(called);
  EXPECT_FALSE(dir_called);
  EXPECT_EQ(rig.disk.stats().crash_callbacks_dropped, 2u);
  EXPECT_EQ(*rig.read_all("log"), Bytes{});
}

TEST(SimDiskCrash, HandlesFromBeforeACrashAreDead) {
  Rig rig(13);
  auto f = rig.open("log");
  ASSERT_TRUE(f->write(0, as_bytes("x")).ok());
  rig.disk.crash();
  Bytes buf(4);
  EXPECT_TRUE(absl::IsFailedPrecondition(f->read(0, buf).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(f->write(0, as_bytes("y"))));
  EXPECT_TRUE(absl::IsFailedPrecondition(f->truncate(0)));
  EXPECT_EQ(f->size(), 0u);
  std::optional<absl::Status> result;
  f->sync([&](absl::Status s) { result = s; });
  EXPECT_FALSE(result.has_value());  // delivered as an event
  while (rig.scheduler.step()) {
  }
  ASSERT_TRUE(result.has_value());
  EXPECT_TRUE(absl::IsFailedPrecondition(*result));
  f.reset();  // destroying a dead handle is harmless
  // The disk itself works on: a new handle on whatever survived.
  auto g = rig.disk.open("log", OpenMode::kCreate);
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE((*g)->write(0, as_bytes("z")).ok());
}

TEST(SimDiskCrash, CreatedFileWithoutSyncDirMayVanishWithSyncDirItSurvives) {
  int vanished = 0, survived = 0;
  for (int seed = 0; seed < 100; seed++) {
    for (bool sync_dir : {false, true}) {
      Rig rig{uint64_t(seed)};
      auto f = rig.open("seg");
      ASSERT_TRUE(f->write(0, as_bytes("durable data")).ok());
      ASSERT_TRUE(rig.sync(*f).ok());  // the data is durable, the name maybe not
      if (sync_dir) {
        ASSERT_TRUE(rig.sync_dir("").ok());
      }
      rig.disk.crash();
      auto got = rig.read_all("seg");
      if (sync_dir) {
        ASSERT_TRUE(got.has_value()) << "seed " << seed;
        EXPECT_EQ(*got, to_bytes("durable data"));
      } else if (got.has_value()) {
        EXPECT_EQ(*got, to_bytes("durable data"));
        survived++;
      } else {
        vanished++;
      }
    }
  }
  EXPECT_GT(vanished, 0);
  EXPECT_GT(survived, 0);
}

TEST(SimDiskCrash, SyncingTheFileIsNotSyncingItsDirectoryAndViceVersa) {
  // Name durable, data not: the file survives but may be empty.
  int empty = 0;
  for (int seed = 0; seed < 50; seed++) {
    Rig rig{uint64_t(seed)};
    auto f = rig.open("seg");
    ASSERT_TRUE(f->write(0, as_bytes("unsynced")).ok());
    ASSERT_TRUE(rig.sync_dir("").ok());
    rig.disk.crash();
    auto got = rig.read_all("seg");
    ASSERT_TRUE(got.has_value());
    if (got->empty()) empty++;
  }
  EXPECT_GT(empty, 0);
}

TEST(SimDiskCrash, DirectoryCreationNeedsItsParentSynced) {
  int lost = 0;
  for (int seed = 0; seed < 50; seed++) {
    Rig rig{uint64_t(seed)};
    ASSERT_TRUE(rig.disk.make_dir("p").ok());
    auto f = rig.open("p/x");
    ASSERT_TRUE(rig.sync(*f).ok());
    ASSERT_TRUE(rig.sync_dir("p").ok());  // p's entries are durable, p itself maybe not
    rig.disk.crash();
    auto names = rig.disk.list("p");
    if (!names.ok()) {
      lost++;
      EXPECT_FALSE(rig.read_all("p/x").has_value());
    } else {
      EXPECT_EQ(*names, std::vector<std::string>{"x"});
    }
  }
  EXPECT_GT(lost, 0);
  Rig rig(1);
  ASSERT_TRUE(rig.disk.make_dir("p").ok());
  auto f = rig.open("p/x");
  ASSERT_TRUE(rig.sync_dir("p").ok());
  ASSERT_TRUE(rig.sync_dir("").ok());
  rig.disk.crash();
  EXPECT_EQ(*rig.disk.list("p"), std::vector<std::string>{"x"});
}

TEST(SimDiskCrash, RemoveWithoutSyncDirMayBeUndone) {
  int undone = 0, done = 0;
  for (int seed = 0; seed < 50; seed++) {
    Rig rig{uint64_t(seed)};
    auto f = rig.open("old");
    ASSERT_TRUE(f->write(0, as_bytes("bytes")).ok());
    ASSERT_TRUE(rig.sync(*f).ok());
    ASSERT_TRUE(rig.sync_dir("").ok());
    f.reset();
    ASSERT_TRUE(rig.disk.remove("old").ok());
    rig.disk.crash();
    auto got = rig.read_all("old");
    if (got.has_value()) {
      EXPECT_EQ(*got, to_bytes("bytes"));
      undone++;
    } else {
      done++;
    }
  }
  EXPECT_GT(undone, 0);
  EXPECT_GT(done, 0);
}

// The atomic-replace protocol: write tmp, sync tmp, rename over the target. After a crash the
// target holds exactly the old or the new content, never a mix; after sync_dir, the new one.
TEST(SimDiskCrash, RenameIsAtomic) {
  int saw_old = 0, saw_new = 0;
  const Bytes old_content = pattern(6000, 1), new_content = pattern(9000, 2);
  for (int seed = 0; seed < kSeeds; seed++) {
    for (bool sync_dir : {false, true}) {
      Rig rig{uint64_t(seed)};
      {
        auto f = rig.open("state");
        ASSERT_TRUE(f->write(0, old_content).ok());
        ASSERT_TRUE(rig.sync(*f).ok());
        ASSERT_TRUE(rig.sync_dir("").ok());
      }
      auto tmp = rig.open("state.tmp");
      ASSERT_TRUE(tmp->write(0, new_content).ok());
      ASSERT_TRUE(rig.sync(*tmp).ok());
      ASSERT_TRUE(rig.disk.rename("state.tmp", "state").ok());
      if (sync_dir) {
        ASSERT_TRUE(rig.sync_dir("").ok());
      }
      rig.disk.crash();
      const Bytes got = *rig.read_all("state");
      if (sync_dir) {
        EXPECT_EQ(got, new_content) << "seed " << seed;
        EXPECT_FALSE(rig.read_all("state.tmp").has_value());
      } else if (got == old_content) {
        saw_old++;
      } else {
        EXPECT_EQ(got, new_content) << "seed " << seed;
        saw_new++;
      }
    }
  }
  EXPECT_GT(saw_old, 0);
  EXPECT_GT(saw_new, 0);
}

TEST(SimDiskCrash, PendingTruncateSurvivesOrNot) {
  int shrunk = 0, whole = 0;
  for (int seed = 0; seed < 100; seed++) {
    Rig rig{uint64_t(seed)};
    auto f = rig.open("log");
    ASSERT_TRUE(rig.sync_dir("").ok());
    const Bytes data = pattern(3 * kSectorBytes, 5);
    ASSERT_TRUE(f->write(0, data).ok());
    ASSERT_TRUE(rig.sync(*f).ok());
    ASSERT_TRUE(f->truncate(5000).ok());
    rig.disk.crash();
    const Bytes got = *rig.read_all("log");
    if (got.size() == 5000) {
      EXPECT_EQ(got, Bytes(data.begin(), data.begin() + 5000));
      shrunk++;
    } else {
      EXPECT_EQ(got, data);
      whole++;
    }
  }
  EXPECT_GT(shrunk, 0);
  EXPECT_GT(whole, 0);
}

TEST(SimDiskCrash, TruncateAfterTheSyncCallIsNotCoveredByIt) {
  int shrunk = 0, whole = 0;
  for (int seed = 0; seed < 100; seed++) {
    Rig rig{uint64_t(seed)};
    auto f = rig.open("log");
    ASSERT_TRUE(rig.sync_dir("").ok());
    const Bytes data = pattern(3 * kSectorBytes, 5);
    ASSERT_TRUE(f->write(0, data).ok());
    ASSERT_TRUE(rig.sync(*f).ok());
    bool done = false;
    f->sync([&](absl::Status s) { done = s.ok(); });  // covers nothing new...
    ASSERT_TRUE(f->truncate(100).ok());               // ...and not this
    while (!done && rig.scheduler.step()) {
    }
    ASSERT_TRUE(done);
    EXPECT_EQ(*rig.disk.durable_size("log"), data.size());
    rig.disk.crash();
    const Bytes got = *rig.read_all("log");
    if (got.size() == 100) {
      EXPECT_EQ(got, Bytes(data.begin(), data.begin() + 100));
      shrunk++;
    } else {
      EXPECT_EQ(got, data) << "seed " << seed;
      whole++;
    }
  }
  EXPECT_GT(shrunk, 0);
  EXPECT_GT(whole, 0);
}

TEST(SimDiskCrash, SyncedTruncateThenRegrowReadsZeros) {
  Rig rig(21, only_drop());
  auto f = rig.open("log");
  ASSERT_TRUE(rig.sync_dir("").ok());
  ASSERT_TRUE(f->write(0, pattern(3 * kSectorBytes, 5)).ok());
  ASSERT_TRUE(rig.sync(*f).ok());
  ASSERT_TRUE(f->truncate(100).ok());
  ASSERT_TRUE(rig.sync(*f).ok());
  ASSERT_TRUE(f->truncate(2 * kSectorBytes).ok());  // extends with zeros
  ASSERT_TRUE(rig.sync(*f).ok());
  rig.disk.crash();
  Bytes want = pattern(100, 5);
  want.resize(2 * kSectorBytes, 0);
  EXPECT_EQ(*rig.read_all("log"), want);
}

// Two syncs in flight with a truncate between them: the second must not erase what the
// first made durable (a regression guard for the shrink bookkeeping).
TEST(SimDiskCrash, OverlappingSyncsWithTruncate) {
  Rig rig(22, only_drop());
  auto f = rig.open("log");
  ASSERT_TRUE(rig.sync_dir("").ok());
  ASSERT_TRUE(f->write(0, pattern(3 * kSectorBytes, 1)).ok());
  ASSERT_TRUE(rig.sync(*f).ok());
  ASSERT_TRUE(f->truncate(kSectorBytes).ok());
  ASSERT_TRUE(f->write(kSectorBytes, pattern(kSectorBytes, 2)).ok());
  int done = 0;
  f->sync([&](absl::Status s) { done += s.ok(); });
  f->sync([&](absl::Status s) { done += s.ok(); });
  while (rig.scheduler.step()) {
  }
  ASSERT_EQ(done, 2);
  Bytes want = pattern(kSectorBytes, 1);
  const Bytes second = pattern(kSectorBytes, 2);
  want.insert(want.end(), second.begin(), second.end());
  EXPECT_EQ(*rig.read_all("log"), want);
  rig.disk.crash();
  EXPECT_EQ(*rig.read_all("log"), want);
}

TEST(SimDiskCrash, KeepEverythingEqualsThePageCache) {
  Rig rig(23, only_keep());
  auto f = rig.open("log");
  ASSERT_TRUE(rig.sync_dir("").ok());
  ASSERT_TRUE(f->write(0, pattern(10000, 1)).ok());
  ASSERT_TRUE(f->write(5, pattern(10, 2)).ok());
  Bytes want(f->size());
  ASSERT_TRUE(f->read(0, want).ok());
  rig.disk.crash();
  EXPECT_EQ(*rig.read_all("log"), want);
}

TEST(SimDiskCrash, ProcessCrashKeepsThePageCacheButKillsHandlesAndCallbacks) {
  Rig rig(31, only_drop());
  auto f = rig.open("log");
  ASSERT_TRUE(f->write(0, as_bytes("synced-soon")).ok());
  bool called = false;
  f->sync([&](absl::Status) { called = true; });
  ASSERT_TRUE(f->write(100, as_bytes("never synced")).ok());
  rig.disk.process_crash();
  Bytes buf(4);
  EXPECT_TRUE(absl::IsFailedPrecondition(f->read(0, buf).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(f->write(0, as_bytes("x"))));
  const Bytes seen = *rig.read_all("log");  // everything written so far is still there
  EXPECT_EQ(seen.size(), 112u);
  while (rig.scheduler.step()) {
  }
  EXPECT_FALSE(called);                           // the callback was dropped...
  EXPECT_EQ(*rig.disk.durable_size("log"), 11u);  // ...but the sync happened
  EXPECT_EQ(rig.disk.stats().process_crashes, 1u);
  EXPECT_EQ(rig.disk.stats().crash_callbacks_dropped, 1u);
  f.reset();
  // A power loss afterwards: the name was never synced, the data was.
  ASSERT_TRUE(rig.sync_dir("").ok());
  rig.disk.crash();
  EXPECT_EQ(*rig.read_all("log"), to_bytes("synced-soon"));
}

TEST(SimDiskCrash, ProcessCrashReleasesSpaceHeldByDeadHandles) {
  Rig rig(32);
  auto f = rig.open("tmp");
  ASSERT_TRUE(f->write(0, pattern(3 * kSectorBytes, 1)).ok());
  ASSERT_TRUE(rig.disk.remove("tmp").ok());
  ASSERT_TRUE(rig.sync_dir("").ok());
  EXPECT_EQ(rig.disk.used_bytes(), 3 * kSectorBytes);  // held by the open handle
  rig.disk.process_crash();
  EXPECT_EQ(rig.disk.used_bytes(), 0u);
  f.reset();  // harmless
  EXPECT_EQ(rig.disk.used_bytes(), 0u);
}

}  // namespace
}  // namespace keel::sim::testing
