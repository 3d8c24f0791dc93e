// Failover in simulation (docs/benchmarks.md): simulated time from a leader crash to the next
// acknowledged acks=all write, with default timeouts (20 ms tick, elections after 200-400 ms
// of silence), over many seeded crashes. Prints p50, p90, p99 and max. Usage:
//   keel_failover_bench [seeds] [crashes per seed]
#include <fmt/core.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "sim/chaos.h"

int main(int argc, char** argv) {
  const int seeds = argc > 1 ? std::atoi(argv[1]) : 20;
  const int crashes = argc > 2 ? std::atoi(argv[2]) : 10;
  std::vector<int64_t> all;
  uint64_t attempted = 0, violations = 0;
  for (int s = 1; s <= seeds; s++) {
    keel::sim::FailoverResult r = keel::sim::run_failover(uint64_t(s), crashes);
    all.insert(all.end(), r.latencies_ns.begin(), r.latencies_ns.end());
    attempted += r.crashes;
    violations += r.violations;
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    if (all.empty()) return 0.0;
    const size_t i = std::min(all.size() - 1, size_t(p * double(all.size() - 1) + 0.5));
    return double(all[i]) / 1e6;
  };
  fmt::print("leader crashes: {} ({} seeds x {}), recovered: {}, checker violations: {}\n",
             attempted, seeds, crashes, all.size(), violations);
  fmt::print(
      "crash -> next acks=all ack (simulated ms): p50 {:.1f}  p90 {:.1f}  p99 {:.1f}  "
      "max {:.1f}\n",
      pct(0.50), pct(0.90), pct(0.99), all.empty() ? 0.0 : double(all.back()) / 1e6);
  return violations == 0 && all.size() == attempted ? 0 : 1;
}
