// The model-based test of the log on the simulated disk: faults on (EIO on writes and
// syncs, slow syncs, crashes that keep, drop or tear every unsynced sector), then with
// corruption injected as well (and repaired with truncate_damaged). 10,000 and 100,000 cases
// by default; `make soak` sets RC_PARAMS (max_success) and runs the soak-labelled copies.
#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <cstdlib>
#include <string>

#include "tests/log/log_model_util.h"
#include "tests/log/log_util.h"

namespace keel::log::testing {
namespace {

class SimHarness : public DiskHarness {
 public:
  SimHarness(uint64_t seed, const sim::DiskFaults& faults) : rig_(seed, faults) {
    rig_.disk.set_corruption_allowed(faults.bit_flip_ppm + faults.lost_write_ppm +
                                         faults.misdirected_write_ppm + faults.unreadable_ppm >
                                     0);
  }
  env::Disk& disk() override { return rig_.disk; }
  void run_until_idle() override { rig_.run(); }
  void run_some(int events) override {
    for (int i = 0; i < events; i++) {
      if (!rig_.scheduler.step()) return;
    }
  }
  bool corrupted() const override { return rig_.disk.stats().corruptions() > 0; }
  bool crash() override {
    rig_.disk.crash();
    return true;
  }
  bool corrupt(const std::string& path, uint32_t where, int bit) override {
    auto size = rig_.disk.durable_size(path);
    if (!size.ok() || *size == 0) return false;
    uint64_t at = uint64_t(where) * *size >> 32;
    return rig_.disk.flip_bit(path, at, bit).ok();
  }

 protected:
  SimRig rig_;
};

Options model_options() {
  Options o;
  o.segment_bytes_max = 1200;
  o.batch_bytes_max = 600;
  o.write_buffer_bytes_max = 1500;
  o.index_interval_bytes = 200;
  o.checkpoint_interval_bytes = 300;
  o.open_files_max = 3;
  return o;
}

sim::DiskFaults io_faults() {
  sim::DiskFaults f;
  f.write_eio_ppm = 3'000;
  f.sync_eio_ppm = 10'000;
  f.sync_slow_ppm = 50'000;
  f.sync_slow_latency_max_ns = 50'000'000;
  return f;
}

// KEEL_MODEL_DIVISOR (set for the sanitizer build, which runs these far slower) divides the
// normal counts.
int cases_from_env(int normal, int soak) {
  if (std::getenv("KEEL_SOAK")) return soak;
  const char* divisor = std::getenv("KEEL_MODEL_DIVISOR");
  return divisor != nullptr && std::atoi(divisor) > 1 ? normal / std::atoi(divisor) : normal;
}

TEST(LogModel, SimDiskWithFaults) {
  ModelParams params;
  params.options = model_options();
  run_model_property(
      "LogModel.SimDiskWithFaults",
      [](uint64_t seed) { return std::make_unique<SimHarness>(seed, io_faults()); }, params,
      cases_from_env(10'000, 100'000), 60);
}

TEST(LogModel, SimDiskWithCorruption) {
  ModelParams params;
  params.options = model_options();
  params.corruption = true;
  sim::DiskFaults f = io_faults();
  f.bit_flip_ppm = 2'000;
  f.lost_write_ppm = 1'000;
  f.misdirected_write_ppm = 1'000;
  f.unreadable_ppm = 1'000;
  run_model_property(
      "LogModel.SimDiskWithCorruption",
      [f](uint64_t seed) { return std::make_unique<SimHarness>(seed, f); }, params,
      cases_from_env(100'000, 1'000'000), 60);
}

// A simulated disk without random faults whose test can make one sector of a file unreadable
// at a chosen moment: after the next run until idle (in World::open, the recovery round,
// which rewrites and syncs the recovered tail), as an in-model unreadable sector written by
// that round would be.
class ScriptedHarness final : public SimHarness {
 public:
  ScriptedHarness() : SimHarness(1, sim::DiskFaults{}) {}
  void unreadable_after_next_idle(std::string path, uint64_t sector) {
    unreadable_path_ = std::move(path);
    unreadable_sector_ = sector;
  }
  void run_until_idle() override {
    rig_.run();
    if (unreadable_path_.empty()) return;
    ASSERT_TRUE(rig_.disk.make_unreadable(unreadable_path_, unreadable_sector_).ok());
    unreadable_path_.clear();
  }
  bool corrupt(const std::string&, uint32_t, int) override { return false; }

 private:
  std::string unreadable_path_;
  uint64_t unreadable_sector_ = 0;
};

// The counterexample random seeds found (LogModel.SimDiskWithCorruption: Append, Truncate(0),
// Append, AdvanceStart(3), Append, Sync, Crash), scripted. The log [0, 2) is truncated to
// empty, [0, 1) appended, the start advanced past it to 1 (an empty log at 1), [1, 2)
// appended and written (the sync never completes). The restarted log is [1, 2) with its only
// batch unreadable. The model cannot tell it from the truncated [0, 2), which holds offset 1
// too, so it repairs at once with truncate_damaged(1); the log accepting that cut shows the
// disk's batch begins at 1: the model must follow the candidate that agrees, not fail on its
// first guess.
TEST(LogModel, AmbiguousRecoveryRepairedAtTheStart) {
  ModelParams params;
  params.options = model_options();
  params.corruption = true;
  auto owned = std::make_unique<ScriptedHarness>();
  ScriptedHarness& harness = *owned;
  World w(std::move(owned), params);
  try {
    w.append(2, false, false, 0);
    w.truncate(0);
    w.append(1, false, false, 0);
    w.advance_start(1, false);  // start + 1 % 2: to 1, the end
    ASSERT_EQ(w.current().start, 1);
    ASSERT_EQ(w.current().next, 1);
    w.append(1, false, false, 0);
    w.sync(0);  // the round writes [1, 2); the process dies before any sync completes
    harness.unreadable_after_next_idle("log/00000000000000000001.seg", 0);
    w.crash(false);
    EXPECT_EQ(w.stat_ambiguous_recoveries, 1u);
    EXPECT_EQ(w.stat_repairs, 1u);
    EXPECT_EQ(w.current().start, 1);
    EXPECT_EQ(w.current().next, 1);
    w.append(1, false, true, 0);  // refetched from a peer
    w.sync(-1);
    w.crash(true);
    w.check_all_reads();
    EXPECT_EQ(w.current().next, 2);
  } catch (const rc::detail::CaseResult& r) {
    FAIL() << r.description;
  }
}

}  // namespace
}  // namespace keel::log::testing
