// Scenarios: one seeded run of a world under the nemesis, and the multi-seed driver behind
// `keel sim`. A scenario is a function from RunOptions to RunResult; "world" (the world-proof
// workload of sim/workload.h) is the first, and later ones (a Kafka cluster under chaos)
// register next to it in scenarios().
//
// Each run has three phases: safety (the nemesis injects its per-seed fault mix), liveness
// (faults stop, everything heals and restarts; progress must resume within a bounded time),
// and a final crash-restart of every node whose recovery the checker verifies.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace keel::sim {

struct RunOptions {
  uint64_t seed = 0;
  int64_t safety_ns = 10'000'000'000;   // simulated time under faults
  int64_t liveness_ns = 5'000'000'000;  // simulated time to converge after
  int nodes = 3;
  std::string trace_path;  // JSON lines of every trace event, if set
  // A bound against runaway runs: more events than this is a failure.
  uint64_t events_max = 200'000'000;
  // Only these fault kinds ("crash,partition", as FaultMix::describe names them; empty: the
  // seed's own mix), and at most this many nemesis actions (0: no limit). Shrinking uses both.
  std::string faults;
  uint64_t faults_max = 0;
  // Beyond the fault model (docs/fault-model.md): lying syncs and corruption on every
  // replica. Only "nothing corrupt is ever served" is then a violation; losses are counted.
  bool beyond_model = false;
};

struct RunResult {
  uint64_t seed = 0;
  bool ok = true;
  std::vector<std::string> violations;  // first few, human readable
  uint64_t violation_count = 0;
  uint64_t trace_hash = 0;
  uint64_t trace_events = 0;
  uint64_t events = 0;
  int64_t simulated_ns = 0;
  std::string fault_mix;                   // what the seed enabled
  std::map<std::string, uint64_t> counts;  // faults injected and things that happened
  std::vector<std::string> summary;        // lines for the CLI
  uint64_t faults_injected = 0;            // nemesis actions taken (shrinking)
};

using Scenario = std::function<RunResult(const RunOptions&)>;

// Known scenarios by name ("world", ...).
const std::map<std::string, Scenario>& scenarios();

// The world-proof scenario: 3 nodes running WorkloadProcess under the nemesis.
RunResult run_world_scenario(const RunOptions& options);

}  // namespace keel::sim
