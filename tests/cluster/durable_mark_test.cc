// DurableMark (cluster/durable_mark.h) on the simulated disk: what a reopen reads back after
// completed writes, after a crash in the middle of a write, and after one corruption event of
// every kind the disk model has. The property that matters for safety: once write(V) has
// completed, a reopen reads V (or a later value), or says damaged(); never an older value.
#include "cluster/durable_mark.h"

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "sim/disk.h"
#include "sim/scheduler.h"

namespace keel::cluster {
namespace {

constexpr const char* kPath = "mark";

struct Rig {
  explicit Rig(uint64_t seed, sim::DiskFaults faults = {})
      : disk(scheduler, env::Random(seed), "n1") {
    disk.set_faults(faults);
    bool dir = false;
    mark = open();
    disk.sync_dir("", [&](absl::Status s) { dir = s.ok(); });
    run();
    EXPECT_TRUE(dir);
  }
  std::unique_ptr<DurableMark> open() {
    auto m = DurableMark::open(disk, kPath);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *std::move(m) : nullptr;
  }
  void run() {
    for (int i = 0; i < 100000 && scheduler.step(); i++) {
    }
  }
  // write() and wait; returns its status.
  absl::Status write(int64_t offset) {
    std::optional<absl::Status> got;
    mark->write(offset, [&](absl::Status s) { got = s; });
    run();
    EXPECT_TRUE(got.has_value());
    return got.value_or(absl::InternalError("never completed"));
  }
  void reopen() {
    mark.reset();
    mark = open();
  }
  // write(offset) without waiting, `steps` events of it, then a power loss and a reopen.
  void crash_during_write(int64_t offset, uint64_t steps) {
    mark->write(offset, [](absl::Status) {});
    for (uint64_t i = 0; i < steps && scheduler.step(); i++) {
    }
    disk.crash();
    reopen();
  }

  sim::Scheduler scheduler;
  sim::SimDisk disk;
  std::unique_ptr<DurableMark> mark;
};

TEST(DurableMark, EmptyThenWrittenValues) {
  Rig rig(1);
  EXPECT_EQ(rig.mark->value(), std::nullopt);
  EXPECT_FALSE(rig.mark->damaged());
  for (int64_t v : {10, 20, 5, 0, 7}) {  // a mark may go down (a cut it no longer claims)
    ASSERT_TRUE(rig.write(v).ok());
    EXPECT_EQ(rig.mark->value(), v);
    rig.reopen();
    EXPECT_EQ(rig.mark->value(), v);
    EXPECT_FALSE(rig.mark->damaged());
  }
}

TEST(DurableMark, QueuedWritesCompleteInOrder) {
  Rig rig(2);
  std::vector<int> done;
  for (int i = 1; i <= 3; i++) {
    rig.mark->write(i * 100, [&, i](absl::Status s) {
      EXPECT_TRUE(s.ok());
      done.push_back(i);
    });
  }
  EXPECT_EQ(rig.mark->latest(), 300);
  EXPECT_EQ(rig.mark->value(), std::nullopt);  // nothing durable yet
  rig.run();
  EXPECT_EQ(done, (std::vector<int>{1, 2, 3}));
  rig.reopen();
  EXPECT_EQ(rig.mark->value(), 300);
}

// A crash while write(new) is in flight, at any step of it, into either bank: the reopen
// finds the previous value or the new one; never anything else, and never an unknown mark (a
// valid copy always survives a crash: keel sim --seed 779 lost liveness when all three copies
// of a one-round write could tear at once).
TEST(DurableMark, CrashDuringWriteNeverGoesBack) {
  int old_value = 0, new_value = 0;
  for (uint64_t seed = 1; seed <= 300; seed++) {
    sim::DiskFaults faults;
    faults.crash_tear_weight = 3;
    Rig rig(seed, faults);
    const int64_t writes = 1 + int64_t(seed % 3);  // the crash hits bank 1, 0 or 1
    for (int64_t i = 1; i <= writes; i++) ASSERT_TRUE(rig.write(i * 1000).ok());
    const int64_t before = writes * 1000, after = before + 1000;
    rig.crash_during_write(after, seed % 4 / 2);
    ASSERT_FALSE(rig.mark->damaged()) << seed;
    ASSERT_TRUE(rig.mark->value() == before || rig.mark->value() == after) << seed;
    (rig.mark->value() == before ? old_value : new_value)++;
  }
  // The crash model reaches both outcomes.
  EXPECT_GT(old_value, 0);
  EXPECT_GT(new_value, 0);
}

// A write that failed (its sync reported EIO: nothing it covered is durable) must not move
// the next write onto the bank of the last completed value: a crash during that next write
// would tear every copy that could still be valid, and the mark would read as unknown.
TEST(DurableMark, AFailedWriteLeavesTheCompletedBankAlone) {
  int old_value = 0, new_value = 0;
  for (uint64_t seed = 1; seed <= 200; seed++) {
    sim::DiskFaults faults;
    faults.crash_tear_weight = 3;
    Rig rig(seed, faults);
    ASSERT_TRUE(rig.write(1000).ok());
    sim::DiskFaults failing = faults;
    failing.sync_eio_ppm = sim::DiskFaults::kMillion;
    rig.disk.set_faults(failing);
    ASSERT_FALSE(rig.write(2000).ok());
    rig.disk.set_faults(faults);
    rig.crash_during_write(3000, seed % 2);
    ASSERT_FALSE(rig.mark->damaged()) << seed;
    ASSERT_TRUE(rig.mark->value() == 1000 || rig.mark->value() == 3000) << seed;
    (rig.mark->value() == 1000 ? old_value : new_value)++;
  }
  EXPECT_GT(old_value, 0);
  EXPECT_GT(new_value, 0);
}

// A crash during the very first write leaves no mark file, or a complete one: never a file
// without a valid copy, which would read as an unknown mark although nothing was ever
// acknowledged (keel sim --seed 5442 --seconds 60 lost liveness that way).
TEST(DurableMark, CrashDuringFirstWriteIsNeverUnknown) {
  int none = 0, written = 0;
  for (uint64_t seed = 1; seed <= 200; seed++) {
    sim::DiskFaults faults;
    faults.crash_tear_weight = 3;
    Rig rig(seed, faults);
    rig.crash_during_write(1000, seed % 5);
    ASSERT_FALSE(rig.mark->damaged()) << seed;
    ASSERT_TRUE(!rig.mark->value() || rig.mark->value() == 1000) << seed;
    (rig.mark->value() ? written : none)++;
  }
  EXPECT_GT(none, 0);
  EXPECT_GT(written, 0);
}

// One corruption event after the newest write completed (following one or two earlier ones,
// so that the newest sits in either bank): the newest value survives in another copy of its
// bank. Events at rest hit one sector; events during the write hit the sector written (lost)
// or it and another (misdirected), in either bank. With two copies, a misdirected write
// leaves one copy old and damages the other, so the mark read back the older value: that was
// `keel sim --seed 390 --seconds 60` (a replica that had lost acknowledged data voted).
TEST(DurableMark, OneCorruptionEventKeepsTheNewestValue) {
  using Inject = std::function<void(sim::SimDisk&, uint64_t slot, uint64_t other)>;
  struct Case {
    const char* name;
    bool during_write;
    Inject inject;
  };
  const std::vector<Case> cases = {
      {"bit flip", false,
       [](sim::SimDisk& d, uint64_t slot, uint64_t) {
         ASSERT_TRUE(d.flip_bit(kPath, slot * env::kSectorBytes + 17, 3).ok());
       }},
      {"unreadable", false,
       [](sim::SimDisk& d, uint64_t slot, uint64_t) {
         ASSERT_TRUE(d.make_unreadable(kPath, slot).ok());
       }},
      {"lost write", true,
       [](sim::SimDisk& d, uint64_t slot, uint64_t) {
         ASSERT_TRUE(d.arm_lost_write(kPath, slot).ok());
       }},
      {"misdirected write", true,
       [](sim::SimDisk& d, uint64_t slot, uint64_t other) {
         ASSERT_TRUE(d.arm_misdirected_write(kPath, slot, other).ok());
       }},
  };
  for (const Case& c : cases) {
    for (uint64_t slot = 0; slot < DurableMark::kSlots; slot++) {
      for (uint64_t other = 0; other < DurableMark::kSlots; other++) {
        if (other == slot) continue;
        for (int64_t earlier = 1; earlier <= 2; earlier++) {
          Rig rig(slot * 10 + other);
          for (int64_t i = 1; i <= earlier; i++) ASSERT_TRUE(rig.write(i * 1000).ok());
          if (c.during_write) c.inject(rig.disk, slot, other);
          ASSERT_TRUE(rig.write(5000).ok());
          if (!c.during_write) c.inject(rig.disk, slot, other);
          rig.reopen();
          EXPECT_EQ(rig.mark->value(), 5000)
              << c.name << " slot " << slot << " other " << other << " after " << earlier;
          EXPECT_FALSE(rig.mark->damaged()) << c.name;
        }
      }
    }
  }
}

// No valid copy: the mark is unknown, and the replica cannot bound what it may have lost.
TEST(DurableMark, EveryCopyDamagedIsUnknown) {
  Rig rig(3);
  ASSERT_TRUE(rig.write(1000).ok());
  ASSERT_TRUE(rig.write(1200).ok());  // both banks written
  for (uint64_t slot = 0; slot < DurableMark::kSlots; slot++) {
    ASSERT_TRUE(rig.disk.flip_bit(kPath, slot * env::kSectorBytes + 9, 0).ok());
  }
  rig.reopen();
  EXPECT_TRUE(rig.mark->damaged());
  EXPECT_EQ(rig.mark->value(), std::nullopt);
  // A new write makes it known again.
  ASSERT_TRUE(rig.write(1500).ok());
  rig.reopen();
  EXPECT_EQ(rig.mark->value(), 1500);
  EXPECT_FALSE(rig.mark->damaged());
}

}  // namespace
}  // namespace keel::cluster
