// Throughput of the simulated disk on a log-like load (run explicitly:
// --gtest_also_run_disabled_tests --gtest_filter=*Speed*). It checks the data it wrote and
// prints the rate; the figure depends on the machine.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "base/check.h"
#include "tests/simdisk/simdisk_util.h"

namespace keel::sim::testing {
namespace {

TEST(SimDiskSpeed, DISABLED_AppendSyncCrash) {
  constexpr int kRounds = 200;
  constexpr int kAppendsPerRound = 500;
  constexpr size_t kRecordBytes = 1000;
  const auto start = std::chrono::steady_clock::now();
  uint64_t ops = 0, bytes = 0;
  for (int round = 0; round < kRounds; round++) {
    Rig rig{uint64_t(round)};
    auto f = rig.open("log");
    ASSERT_TRUE(rig.sync_dir("").ok());
    const Bytes record = pattern(kRecordBytes, uint8_t(round));
    for (int i = 0; i < kAppendsPerRound; i++) {
      ASSERT_TRUE(f->append(record).ok());
      ops++;
      bytes += kRecordBytes;
      if (i % 8 == 7) {
        f->sync([](absl::Status s) { KEEL_CHECK(s.ok()); });
        ops++;
      }
      if (i % 4 == 3) {
        Bytes buf(kRecordBytes);
        ASSERT_TRUE(f->read(f->size() - kRecordBytes, buf).ok());
        ops++;
      }
      while (rig.scheduler.pending() > 4) rig.scheduler.step();
    }
    ASSERT_TRUE(rig.sync(*f).ok());
    rig.disk.crash();
    ops++;
    ASSERT_EQ(rig.read_all("log")->size(), kAppendsPerRound * kRecordBytes);
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "simdisk: %llu ops (appends, syncs, reads, crashes), %.1f MB appended in %.3f s: "
      "%.0f ops/s, %.0f MB/s\n",
      static_cast<unsigned long long>(ops), double(bytes) / 1e6, secs, double(ops) / secs,
      double(bytes) / 1e6 / secs);
}

}  // namespace
}  // namespace keel::sim::testing
