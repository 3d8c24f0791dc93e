// Failover in simulation (docs/benchmarks.md): simulated time from a leader crash to the next
// acknowledged acks=all write, with default timeouts (20 ms tick, elections after 200-400 ms
// of silence), over many seeded crashes. Prints p50, p90, p99 and max, and the same for the
// time until a new leader is elected. Two runs over the same seeds: a healthy cluster (the
// crash is the only fault; the goal's figure) and one with each seed's BUGGIFY sites as in the
// chaos scenarios (one of them drops a quarter of the peer messages when enabled). Usage:
//   keel_failover_bench [seeds] [crashes per seed]
#include <fmt/core.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "sim/chaos.h"

namespace {

struct Percentiles {
  explicit Percentiles(std::vector<int64_t> v) : all(std::move(v)) {
    std::sort(all.begin(), all.end());
  }
  double at(double p) const {
    if (all.empty()) return 0.0;
    const size_t i = std::min(all.size() - 1, size_t(p * double(all.size() - 1) + 0.5));
    return double(all[i]) / 1e6;
  }
  std::string line() const {
    return fmt::format("p50 {:.1f}  p90 {:.1f}  p99 {:.1f}  max {:.1f}", at(0.50), at(0.90),
                       at(0.99), all.empty() ? 0.0 : double(all.back()) / 1e6);
  }
  std::vector<int64_t> all;
};

// Returns whether every crash recovered without a checker violation.
bool run(const char* label, int seeds, int crashes, bool buggify) {
  std::vector<int64_t> acks, elections;
  uint64_t attempted = 0, violations = 0;
  for (int s = 1; s <= seeds; s++) {
    keel::sim::FailoverResult r = keel::sim::run_failover(uint64_t(s), crashes, buggify);
    acks.insert(acks.end(), r.latencies_ns.begin(), r.latencies_ns.end());
    elections.insert(elections.end(), r.election_ns.begin(), r.election_ns.end());
    attempted += r.crashes;
    violations += r.violations;
  }
  const Percentiles ack(std::move(acks)), elected(std::move(elections));
  fmt::print("{}: leader crashes: {} ({} seeds x {}), recovered: {}, checker violations: {}\n",
             label, attempted, seeds, crashes, ack.all.size(), violations);
  fmt::print("  crash -> new leader elected (simulated ms):  {}\n", elected.line());
  fmt::print("  crash -> next acks=all ack (simulated ms):   {}\n", ack.line());
  return violations == 0 && ack.all.size() == attempted;
}

}  // namespace

int main(int argc, char** argv) {
  const int seeds = argc > 1 ? std::atoi(argv[1]) : 20;
  const int crashes = argc > 2 ? std::atoi(argv[2]) : 10;
  const bool healthy = run("healthy", seeds, crashes, false);
  const bool buggified = run("buggify as in chaos seeds", seeds, crashes, true);
  return healthy && buggified ? 0 : 1;
}
