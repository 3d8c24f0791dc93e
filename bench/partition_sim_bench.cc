// Simulator speed for a loaded 3-replica partition (docs/benchmarks.md): simulated seconds per
// wall second on one core, events per second, and the wall time of whole chaos scenarios.
// The wall clock is read here, outside the simulated world. Usage:
//   keel_partition_sim_bench [seeds] [simulated seconds per seed]
#include <fmt/core.h>

#include <chrono>
#include <cstdlib>

#include "sim/chaos.h"

int main(int argc, char** argv) {
  const int seeds = argc > 1 ? std::atoi(argv[1]) : 5;
  const int seconds = argc > 2 ? std::atoi(argv[2]) : 60;
  using Clock = std::chrono::steady_clock;
  int64_t simulated_ns = 0;
  uint64_t events = 0, acked = 0, violations = 0;
  const auto t0 = Clock::now();
  for (int s = 1; s <= seeds; s++) {
    auto r = keel::sim::run_partition_load(uint64_t(s), int64_t(seconds) * 1'000'000'000);
    simulated_ns += r.simulated_ns;
    events += r.events;
    acked += r.acked_records;
    violations += r.violations;
  }
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  fmt::print("loaded partition (3 replicas, no faults): {} seeds x {} simulated s\n", seeds,
             seconds);
  fmt::print(
      "  wall {:.2f} s on one core: {:.0f} simulated s per wall s, {:.2f}M events/s, "
      "{:.0f} acknowledged records per simulated s, violations {}\n",
      wall, double(simulated_ns) / 1e9 / wall, double(events) / wall / 1e6,
      double(acked) / (double(simulated_ns) / 1e9), violations);

  // Whole chaos scenarios (nemesis, liveness phase, drain, checks), as `keel sim` runs them.
  const auto t1 = Clock::now();
  int64_t chaos_ns = 0;
  for (int s = 1; s <= seeds; s++) {
    keel::sim::RunOptions o;
    o.seed = uint64_t(s);
    o.safety_ns = int64_t(seconds) * 1'000'000'000;
    chaos_ns += keel::sim::run_partition_scenario(o).simulated_ns;
  }
  const double chaos_wall = std::chrono::duration<double>(Clock::now() - t1).count();
  fmt::print(
      "chaos scenarios: {} seeds x ({} s under faults + liveness + drain) = {:.0f} "
      "simulated s in {:.2f} wall s: {:.2f} wall s per scenario, {:.0f}x\n",
      seeds, seconds, double(chaos_ns) / 1e9, chaos_wall, chaos_wall / seeds,
      double(chaos_ns) / 1e9 / chaos_wall);
  return violations == 0 ? 0 : 1;
}
