// The partition chaos scenario over a range of seeds, as `make test` runs it in small; `keel
// sim --scenario partition --seeds N` runs it at scale.
#include <gtest/gtest.h>

#include <cstdlib>

#include "base/check.h"
#include "sim/chaos.h"

namespace keel::sim {
namespace {

uint64_t env_or(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::strtoull(v, nullptr, 10) : fallback;
}

TEST(PartitionScenario, SeedsPassAllChecks) {
  // A build with -DKEEL_PLANT_BUGS=ON can plant a bug here (KEEL_PLANT=name), to see it caught.
  if (const char* plant = std::getenv("KEEL_PLANT")) base::set_planted_bug(plant);
  const uint64_t first = env_or("KEEL_CHAOS_FIRST_SEED", 1);
  const uint64_t seeds = env_or("KEEL_CHAOS_SEEDS", 20);
  for (uint64_t seed = first; seed < first + seeds; seed++) {
    RunOptions o;
    o.seed = seed;
    if (const char* t = std::getenv("KEEL_CHAOS_TRACE")) o.trace_path = t;
    RunResult r = run_partition_scenario(o);
    std::string why;
    for (auto& v : r.violations) why += "\n  " + v;
    EXPECT_TRUE(r.ok) << "seed " << seed << ": " << r.violation_count << " violations" << why
                      << "\n  " << r.fault_mix;
    if (std::getenv("KEEL_CHAOS_VERBOSE") != nullptr) {
      for (auto& line : r.summary)
        std::printf("seed %llu: %s\n", (unsigned long long)seed, line.c_str());
    }
  }
}

TEST(PartitionScenario, SameSeedSameTrace) {
  RunOptions o;
  o.seed = 7;
  o.safety_ns = 3'000'000'000;
  RunResult a = run_partition_scenario(o);
  RunResult b = run_partition_scenario(o);
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.events, b.events);
  o.seed = 8;
  EXPECT_NE(run_partition_scenario(o).trace_hash, a.trace_hash);
}

}  // namespace
}  // namespace keel::sim
