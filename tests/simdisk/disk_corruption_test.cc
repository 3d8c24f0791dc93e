// Corruption of durable sectors: bit flips, lost writes, misdirected writes, unreadable
// sectors; stable on re-read, repaired by rewriting, capped per disk.
#include <gtest/gtest.h>

#include "base/check.h"
#include "tests/simdisk/simdisk_util.h"

namespace keel::sim::testing {
namespace {

using env::kSectorBytes;

// A file "f" holding `sectors` synced sectors of pattern(tag 1), name durable.
std::unique_ptr<env::File> durable_file(Rig& rig, uint64_t sectors, Bytes* content) {
  auto f = rig.open("f");
  *content = pattern(sectors * kSectorBytes, 1);
  KEEL_CHECK(f->write(0, *content).ok());
  KEEL_CHECK(rig.sync(*f).ok());
  KEEL_CHECK(rig.sync_dir("").ok());
  return f;
}

int differing_bits(const Bytes& a, const Bytes& b) {
  KEEL_CHECK_EQ(a.size(), b.size());
  int n = 0;
  for (size_t i = 0; i < a.size(); i++) n += __builtin_popcount(unsigned(a[i] ^ b[i]));
  return n;
}

TEST(SimDiskCorruption, BitFlipIsStableOnRereadAndSurvivesACrash) {
  Rig rig(1);
  Bytes content;
  auto f = durable_file(rig, 3, &content);
  ASSERT_TRUE(rig.disk.flip_bit("f", 5000, 3).ok());
  Bytes want = content;
  want[5000] ^= 1 << 3;
  EXPECT_EQ(*rig.read_all("f"), want);
  EXPECT_EQ(*rig.read_all("f"), want);  // a retry does not fix it
  rig.disk.crash();
  EXPECT_EQ(*rig.read_all("f"), want);
  EXPECT_EQ(rig.disk.stats().bit_flips, 1u);
  EXPECT_EQ(rig.disk.corrupted_sectors(), 1u);
}

TEST(SimDiskCorruption, RewritingAndSyncingRepairsASector) {
  Rig rig(2);
  Bytes content;
  auto f = durable_file(rig, 2, &content);
  ASSERT_TRUE(rig.disk.flip_bit("f", 10, 0).ok());
  ASSERT_TRUE(f->write(0, ByteView(content.data(), 100)).ok());
  // Pending in the page cache: reads see the new write, not the damaged sector.
  EXPECT_EQ(*rig.read_all("f"), content);
  ASSERT_TRUE(rig.sync(*f).ok());
  EXPECT_EQ(*rig.read_all("f"), content);
  EXPECT_EQ(rig.disk.corrupted_sectors(), 0u);
}

TEST(SimDiskCorruption, UnreadableSectorGivesEioOnlyToReadsCoveringIt) {
  Rig rig(3);
  Bytes content;
  auto f = durable_file(rig, 3, &content);
  ASSERT_TRUE(rig.disk.make_unreadable("f", 1).ok());
  Bytes buf(100);
  EXPECT_TRUE(f->read(0, buf).ok());
  EXPECT_TRUE(f->read(2 * kSectorBytes, buf).ok());
  for (int i = 0; i < 3; i++) {
    auto r = f->read(kSectorBytes - 50, buf);  // straddles into sector 1
    EXPECT_TRUE(absl::IsDataLoss(r.status())) << r.status();
  }
  EXPECT_EQ(rig.disk.stats().read_eio, 3u);
  EXPECT_TRUE(absl::IsInvalidArgument(rig.disk.make_unreadable("f", 3)));
  ASSERT_TRUE(f->write(kSectorBytes, ByteView(content.data() + kSectorBytes, kSectorBytes)).ok());
  ASSERT_TRUE(rig.sync(*f).ok());
  EXPECT_EQ(*rig.read_all("f"), content);
}

TEST(SimDiskCorruption, LostWriteKeepsOldContentWhileSyncSucceeds) {
  Rig rig(4);
  Bytes content;
  auto f = durable_file(rig, 2, &content);
  ASSERT_TRUE(rig.disk.arm_lost_write("f", 1).ok());
  const Bytes update = pattern(2 * kSectorBytes, 9);
  ASSERT_TRUE(f->write(0, update).ok());
  ASSERT_TRUE(rig.sync(*f).ok());
  Bytes want = update;
  std::copy(content.begin() + kSectorBytes, content.end(), want.begin() + kSectorBytes);
  EXPECT_EQ(*rig.read_all("f"), want);
  EXPECT_EQ(*rig.read_all("f"), want);
  rig.disk.crash();
  EXPECT_EQ(*rig.read_all("f"), want);
  EXPECT_EQ(rig.disk.stats().lost_writes, 1u);
}

TEST(SimDiskCorruption, MisdirectedWriteLandsOnAnotherSector) {
  Rig rig(5);
  Bytes content;
  auto f = durable_file(rig, 4, &content);
  ASSERT_TRUE(rig.disk.arm_misdirected_write("f", 0, 2).ok());
  const Bytes update = pattern(kSectorBytes, 7);
  ASSERT_TRUE(f->write(0, update).ok());
  ASSERT_TRUE(rig.sync(*f).ok());
  Bytes want = content;  // sector 0 keeps its old content...
  std::copy(update.begin(), update.end(), want.begin() + 2 * kSectorBytes);  // ...2 gets it
  EXPECT_EQ(*rig.read_all("f"), want);
  rig.disk.crash();
  EXPECT_EQ(*rig.read_all("f"), want);
  EXPECT_EQ(rig.disk.stats().misdirected_writes, 1u);
}

TEST(SimDiskCorruption, RandomBitFlipsHitEverySyncedSectorWhenCertain) {
  DiskFaults faults;
  faults.bit_flip_ppm = DiskFaults::kMillion;
  Rig rig(6, faults);
  auto f = rig.open("f");
  const Bytes data = pattern(3 * kSectorBytes, 3);
  ASSERT_TRUE(f->write(0, data).ok());
  ASSERT_TRUE(rig.sync(*f).ok());
  const Bytes got = *rig.read_all("f");
  EXPECT_EQ(differing_bits(got, data), 3);  // one flipped bit per sector
  for (uint64_t s = 0; s < 3; s++) {
    const Bytes a(got.begin() + long(s * kSectorBytes), got.begin() + long((s + 1) * kSectorBytes));
    const Bytes b(data.begin() + long(s * kSectorBytes),
                  data.begin() + long((s + 1) * kSectorBytes));
    EXPECT_EQ(differing_bits(a, b), 1);
  }
  EXPECT_EQ(*rig.read_all("f"), got);
  EXPECT_EQ(rig.disk.stats().bit_flips, 3u);
}

TEST(SimDiskCorruption, RandomCorruptionRespectsTheCap) {
  DiskFaults faults;
  faults.bit_flip_ppm = DiskFaults::kMillion;
  faults.unreadable_ppm = DiskFaults::kMillion;
  Rig rig(7, faults);
  rig.disk.set_corruption_allowed(false);
  auto f = rig.open("f");
  const Bytes data = pattern(3 * kSectorBytes, 3);
  ASSERT_TRUE(f->write(0, data).ok());
  ASSERT_TRUE(rig.sync(*f).ok());
  EXPECT_EQ(*rig.read_all("f"), data);
  EXPECT_EQ(rig.disk.stats().corruptions(), 0u);
}

TEST(SimDiskCorruption, EveryRandomKindHappensAndIsStable) {
  DiskFaults faults;
  faults.bit_flip_ppm = 100'000;
  faults.lost_write_ppm = 100'000;
  faults.misdirected_write_ppm = 100'000;
  faults.unreadable_ppm = 100'000;
  Rig rig(8, faults);
  auto f = rig.open("f");
  for (int i = 0; i < 20; i++) {
    ASSERT_TRUE(f->write(0, pattern(8 * kSectorBytes, uint8_t(i))).ok());
    ASSERT_TRUE(rig.sync(*f).ok());
  }
  const DiskStats& s = rig.disk.stats();
  EXPECT_GT(s.bit_flips, 0u);
  EXPECT_GT(s.lost_writes, 0u);
  EXPECT_GT(s.misdirected_writes, 0u);
  EXPECT_GT(s.unreadable_sectors, 0u);
  // Stable: sector by sector, the same bytes or the same error on every read.
  for (uint64_t sector = 0; sector < 8; sector++) {
    Bytes a(kSectorBytes), b(kSectorBytes);
    auto ra = f->read(sector * kSectorBytes, a);
    auto rb = f->read(sector * kSectorBytes, b);
    EXPECT_EQ(ra.ok(), rb.ok());
    if (ra.ok()) {
      EXPECT_EQ(a, b);
    }
  }
}

TEST(SimDiskCorruption, CorruptRandomSectorIsDeterministic) {
  auto run = [](uint64_t seed) {
    Rig rig(seed);
    Bytes content;
    auto f = durable_file(rig, 4, &content);
    std::string what;
    for (int i = 0; i < 10; i++) what += *rig.disk.corrupt_random_sector() + ";";
    return what;
  };
  EXPECT_EQ(run(9), run(9));
  EXPECT_NE(run(9), run(10));
  Rig empty(1);
  EXPECT_TRUE(absl::IsNotFound(empty.disk.corrupt_random_sector().status()));
}

}  // namespace
}  // namespace keel::sim::testing
