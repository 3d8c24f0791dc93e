// Faults in operation (EIO, ENOSPC, latency), beyond-model lying syncs, and determinism.
#include <gtest/gtest.h>

#include "base/check.h"
#include "tests/simdisk/simdisk_util.h"

namespace keel::sim::testing {
namespace {

using env::kSectorBytes;
using env::OpenMode;

DiskFaults only_drop() {
  DiskFaults f;
  f.crash_keep_weight = 0;
  f.crash_drop_weight = 1;
  f.crash_tear_weight = 0;
  return f;
}

TEST(SimDiskFaults, WriteEioChangesNothing) {
  DiskFaults faults;
  faults.write_eio_ppm = DiskFaults::kMillion;
  Rig rig(1, faults);
  auto f = rig.open("a");
  absl::Status s = f->write(0, as_bytes("data"));
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_EQ(f->size(), 0u);
  EXPECT_EQ(rig.disk.stats().write_eio, 1u);
  rig.disk.set_faults(DiskFaults{});
  EXPECT_TRUE(f->write(0, as_bytes("data")).ok());
}

TEST(SimDiskFaults, SyncEioMeansNotDurableAndALaterSyncDoesNotRescueIt) {
  DiskFaults faults = only_drop();
  faults.sync_eio_ppm = DiskFaults::kMillion;
  Rig rig(2, faults);
  auto f = rig.open("a");
  {
    DiskFaults ok = only_drop();
    rig.disk.set_faults(ok);
    ASSERT_TRUE(rig.sync_dir("").ok());
    rig.disk.set_faults(faults);
  }
  ASSERT_TRUE(f->write(0, as_bytes("lost")).ok());
  absl::Status s = rig.sync(*f);
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_EQ(*rig.disk.durable_size("a"), 0u);
  EXPECT_EQ(*rig.read_all("a"), to_bytes("lost"));  // still in the page cache
  // Like Linux after a failed fsync: the next sync succeeds but does not write those pages.
  rig.disk.set_faults(only_drop());
  ASSERT_TRUE(rig.sync(*f).ok());
  EXPECT_EQ(*rig.disk.pending_sectors("a"), 1u);
  rig.disk.crash();
  // The second sync made the size durable but not the orphaned sector: zeros, never "lost".
  EXPECT_EQ(*rig.read_all("a"), Bytes(4, 0));
  EXPECT_EQ(rig.disk.stats().sync_eio, 1u);
}

TEST(SimDiskFaults, SyncDirEioLeavesNamesPending) {
  DiskFaults faults;
  faults.sync_eio_ppm = DiskFaults::kMillion;
  int lost = 0;
  for (int seed = 0; seed < 40; seed++) {
    Rig rig{uint64_t(seed), faults};
    auto f = rig.open("a");
    EXPECT_TRUE(absl::IsDataLoss(rig.sync_dir("")));
    rig.disk.crash();
    if (!rig.read_all("a").has_value()) lost++;
  }
  EXPECT_GT(lost, 0);
}

TEST(SimDiskFaults, Enospc) {
  DiskFaults faults;
  faults.capacity_bytes = 2 * kSectorBytes;
  Rig rig(3, faults);
  auto f = rig.open("a");
  ASSERT_TRUE(f->write(0, pattern(kSectorBytes + 10, 1)).ok());  // two sectors
  absl::Status s = f->write(2 * kSectorBytes, as_bytes("x"));
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_EQ(f->size(), kSectorBytes + 10);  // nothing applied
  EXPECT_TRUE(absl::IsResourceExhausted(f->truncate(3 * kSectorBytes)));
  EXPECT_TRUE(f->write(kSectorBytes + 10, pattern(kSectorBytes - 10, 2)).ok());  // fits
  auto g = rig.open("b");
  EXPECT_TRUE(absl::IsResourceExhausted(g->write(0, as_bytes("y"))));
  EXPECT_EQ(rig.disk.stats().enospc, 3u);
  EXPECT_EQ(rig.disk.used_bytes(), 2 * kSectorBytes);
  // Space comes back once the file is gone for good (the removal durable, no handle left).
  f.reset();
  ASSERT_TRUE(rig.disk.remove("a").ok());
  ASSERT_TRUE(rig.sync_dir("").ok());
  EXPECT_EQ(rig.disk.used_bytes(), 0u);
  EXPECT_TRUE(g->write(0, as_bytes("y")).ok());
}

TEST(SimDiskFaults, SyncLatencyStaysWithinBoundsAndSlowSyncsHappen) {
  DiskFaults faults;
  faults.sync_latency_min_ns = 1'000;
  faults.sync_latency_max_ns = 2'000;
  faults.sync_slow_ppm = 100'000;  // 10%
  faults.sync_slow_latency_max_ns = 1'000'000;
  Rig rig(4, faults);
  int slow = 0;
  for (int i = 0; i < 500; i++) {
    auto f = rig.open("f" + std::to_string(i));
    const int64_t start = rig.scheduler.now_ns();
    ASSERT_TRUE(rig.sync(*f).ok());
    const int64_t took = rig.scheduler.now_ns() - start;
    EXPECT_GE(took, 1'000);
    EXPECT_LE(took, 1'000'000);
    if (took > 2'000) slow++;
  }
  EXPECT_GT(slow, 20);
  EXPECT_LT(slow, 100);
}

TEST(SimDiskFaults, LyingSyncIsBeyondTheModel) {
  DiskFaults faults = only_drop();
  faults.lying_sync_ppm = DiskFaults::kMillion;
  EXPECT_TRUE(faults.beyond_model());
  EXPECT_FALSE(DiskFaults{}.beyond_model());
  Rig rig(5, faults);
  auto f = rig.open("a");
  ASSERT_TRUE(rig.sync_dir("").ok());  // lies too: the name is not durable
  ASSERT_TRUE(f->write(0, as_bytes("acknowledged")).ok());
  ASSERT_TRUE(rig.sync(*f).ok());
  EXPECT_EQ(rig.disk.stats().lying_syncs, 2u);
  rig.disk.crash();
  EXPECT_FALSE(rig.read_all("a").has_value());
}

// One scripted run with every fault on; returns a digest of the trace and the final files.
uint64_t run_scenario(uint64_t seed) {
  DiskFaults faults;
  faults.write_eio_ppm = 50'000;
  faults.sync_eio_ppm = 50'000;
  faults.sync_slow_ppm = 100'000;
  faults.bit_flip_ppm = 20'000;
  faults.lost_write_ppm = 20'000;
  faults.misdirected_write_ppm = 20'000;
  faults.unreadable_ppm = 20'000;
  Rig rig(seed, faults);
  env::Random ops(seed ^ 0x5eed);
  std::vector<std::unique_ptr<env::File>> files;
  for (int round = 0; round < 20; round++) {
    for (int i = 0; i < 30; i++) {
      if (files.size() < 4) {
        auto f = rig.disk.open("f" + std::to_string(ops.uniform(6)), OpenMode::kCreate);
        if (f.ok()) files.push_back(std::move(*f));
      }
      env::File& f = *files[ops.uniform(files.size())];
      const uint64_t off = ops.uniform(5 * kSectorBytes);
      const size_t len = size_t(ops.range(1, 3000));
      (void)f.write(off, pattern(len, uint8_t(i)));
      if (ops.chance(1, 4)) f.sync([](absl::Status) {});
      if (ops.chance(1, 10)) rig.disk.sync_dir("", [](absl::Status) {});
      if (ops.chance(1, 10)) (void)rig.disk.rename("f" + std::to_string(ops.uniform(6)), "f0");
      rig.scheduler.run_until(rig.scheduler.now_ns() + int64_t(ops.uniform(1'000'000)));
    }
    rig.disk.crash();
    files.clear();
  }
  uint64_t h = rig.scheduler.trace_hash();
  const std::vector<std::string> names = *rig.disk.list("");
  for (const std::string& name : names) {
    auto data = rig.try_read_all(name);
    h = fnv1a64(name, h);
    h = data.ok() ? fnv1a64(*data, h) : fnv1a64(data.status().ToString(), h);
  }
  return h;
}

TEST(SimDiskFaults, SameSeedSameResultsDifferentSeedDifferentResults) {
  EXPECT_EQ(run_scenario(42), run_scenario(42));
  EXPECT_EQ(run_scenario(7), run_scenario(7));
  EXPECT_NE(run_scenario(42), run_scenario(43));
}

TEST(SimDiskFaults, TraceHashCoversWrittenBytes) {
  auto hash_after_write = [](uint8_t byte) {
    Rig rig(3);
    auto f = rig.open("a");
    const Bytes data(100, byte);
    KEEL_CHECK(f->write(0, data).ok());
    return rig.scheduler.trace_hash();
  };
  EXPECT_EQ(hash_after_write(1), hash_after_write(1));
  EXPECT_NE(hash_after_write(1), hash_after_write(2));
}

}  // namespace
}  // namespace keel::sim::testing
