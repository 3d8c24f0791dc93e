// The nemesis: injects every fault the world models, with a mix drawn per seed (swarm
// testing: each seed enables its own subset of fault kinds at its own rate, so rare
// combinations get runs of their own instead of being drowned in noise).
//
// Faults: crashes (with a restart after a random downtime) and instant restarts; network
// partitions of every shape (symmetric split, asymmetric one-way cut, bridge, one node
// isolated) healed after a while; connection resets; link stalls; slow links; clock drift,
// monotonic jumps and wall-clock steps; disk errors (EIO on write and sync, ENOSPC, slow
// syncs) through SimDisk; corruption of durable sectors on at most one node per run
// (reported through on_corrupt so a checker can tell in-model damage from loss). BUGGIFY is
// the World's, on or off per seed.
//
// stop() ends the safety phase: no new faults, every partition healed, links, clocks and
// disks back to healthy, buggify off, down nodes restarted (the liveness phase).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "env/random.h"
#include "sim/world.h"

namespace keel::sim {

struct FaultMix {
  bool crashes = false;
  bool partitions = false;
  bool resets = false;
  bool stalls = false;
  bool slow_links = false;
  bool drift = false;
  bool clock_jumps = false;
  bool disk_errors = false;
  bool corruption = false;
  int64_t interval_mean_ns = 0;  // mean time between nemesis actions

  // Each kind on with probability 1/2, a rate from calm to frantic; never empty.
  static FaultMix draw(env::Random& rng);
  // Everything on (tests).
  static FaultMix all(int64_t interval_mean_ns);
  // Turns on exactly the kinds named in `list` (names as describe() prints them, comma
  // separated), keeping the interval. False if a name is unknown.
  bool restrict_to(const std::string& list);
  std::string describe() const;
};

class Nemesis {
 public:
  static constexpr int64_t kDowntimeMaxNs = 2'000'000'000;
  static constexpr int64_t kPartitionMaxNs = 5'000'000'000;
  static constexpr int64_t kStallMaxNs = 1'000'000'000;
  static constexpr int64_t kDiskFaultMaxNs = 3'000'000'000;
  static constexpr int64_t kDriftPpmMax = 200'000;  // +-20%
  static constexpr int64_t kJumpMaxNs = 2'000'000'000;
  static constexpr int64_t kWallStepMaxMs = 3'600'000;
  static constexpr size_t kCorruptionsMax = 8;  // per run, on the one victim

  Nemesis(World& world, env::Random rng, FaultMix mix);
  Nemesis(const Nemesis&) = delete;
  Nemesis& operator=(const Nemesis&) = delete;

  // Called (before the first corruption) with the node whose disk will be corrupted.
  std::function<void(int node)> on_corrupt;
  // At most this many actions (0: no limit). Shrinking lowers it to find a smaller schedule.
  uint64_t actions_max = 0;
  // Corruption picks its victim among nodes [0, storage_nodes) (those whose disks hold data
  // worth corrupting); 0: any node.
  int storage_nodes = 0;
  uint64_t actions() const { return actions_; }

  void start();
  void stop();
  bool running() const { return running_; }
  const FaultMix& mix() const { return mix_; }
  // Faults injected so far, by kind ("crash", "partition.bridge", ...).
  const std::map<std::string, uint64_t>& counts() const { return counts_; }

 private:
  void schedule_next();
  void act();
  void count(const std::string& kind);
  int random_node();
  int random_up_node();  // -1 if none

  void crash();
  void restart();
  void partition();
  void reset();
  void stall();
  void slow_link();
  void drift();
  void clock_jump();
  void disk_errors();
  void corrupt();
  // Runs fn after `delay_ns` unless the nemesis stopped meanwhile.
  void later(int64_t delay_ns, std::function<void()> fn);

  World& world_;
  env::Random rng_;
  FaultMix mix_;
  bool running_ = false;
  uint64_t actions_ = 0;
  uint64_t epoch_ = 0;  // bumped by stop(), so delayed actions of the safety phase lapse
  int corruption_victim_ = -1;
  size_t corruptions_ = 0;
  bool partitioned_ = false;
  std::map<std::string, uint64_t> counts_;
  std::vector<LinkParams> base_links_;  // from * size + to, as at construction
};

}  // namespace keel::sim
