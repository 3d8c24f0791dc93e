// The partition chaos scenario ("partition" in sim/scenario.h): one Raft-replicated partition
// on 3 or 5 simulated brokers (cluster::Node), producers with acks=all and acks=1 that retry,
// and a consumer, under the nemesis; then a liveness phase and a drain; then the checks of
// docs/simulation.md:
//
// continuously (from the simulator's global view, via cluster::ReplicaObserver):
//   - at most one leader per term;
//   - a committed entry never changes: every replica that commits offset X commits the same
//     batch (term and CRC) there;
//   - leader completeness: a new leader of term T holds every entry known committed by a
//     replica whose term was below T;
// at every node start, at the end of each phase, and once a simulated second:
//   - log matching: if two replicas hold an entry with the same offset and term, their logs
//     are identical up to it;
//   - durability: a replica (other than the one whose disk the nemesis corrupts) still holds
//     every entry it ever committed, unchanged;
// after the run:
//   - every acks=all acknowledged record is in the final log at its acknowledged offset with
//     its bytes (acks=1 losses are counted, and expected after failovers);
//   - every record a consumer saw is in the final log at the offset it was seen at; consumers
//     saw contiguous offsets and only batches with valid checksums;
//   - liveness: once faults stop and every broker restarts, an acks=all write is acknowledged
//     within the liveness phase, and the consumer reads up to the high watermark.
#pragma once

#include <cstdint>
#include <vector>

#include "sim/scenario.h"

namespace keel::sim {

RunResult run_partition_scenario(const RunOptions& options);

// Failover measurement (bench/): a healthy 3-replica partition under load whose leader is
// crashed `crashes` times (restarted 2 s later each time); for each crash, the simulated time
// until the next acks=all write is acknowledged. Checked by the same checker. The only fault
// is the crash unless `buggify` keeps the seed's BUGGIFY sites on (as in the chaos scenarios).
struct FailoverResult {
  std::vector<int64_t> latencies_ns;
  // For each crash, the simulated time until an up broker led a newer term.
  std::vector<int64_t> election_ns;
  uint64_t crashes = 0;
  uint64_t violations = 0;
};
FailoverResult run_failover(uint64_t seed, int crashes, bool buggify = false);

// Simulator speed (bench/): a healthy, loaded 3-replica partition (two acks=all producers,
// one acks=1 producer, one consumer) for `simulated_ns`, with no faults (BUGGIFY off too).
struct LoadResult {
  int64_t simulated_ns = 0;
  uint64_t events = 0;
  uint64_t acked_records = 0;
  uint64_t violations = 0;
};
LoadResult run_partition_load(uint64_t seed, int64_t simulated_ns);

}  // namespace keel::sim
