// World: the whole simulated cluster. It owns the Scheduler, the network Fabric, BUGGIFY and
// N nodes; each node has a name, a clock (drift and jumps survive crashes), a SimDisk (its
// durable state survives crashes as docs/disk-model.md says) and, while it is up, one
// incarnation: a fresh Env (network endpoint, random streams, fault points, trace) and the
// Process a factory built on it.
//
// crash() destroys the Process with all its memory, timers and streams (peers see resets)
// and applies the disk's crash model; restart() builds a new incarnation on the same disk.
// No callback of a dead incarnation ever runs: its timers are dropped, its streams are
// closed without callbacks, and the disk drops its pending completions.
//
// Randomness: every stream is derived from the master seed by name ("net", "disk/n1",
// "node/n1/3/process", ...), so adding draws in one subsystem does not reshuffle the others.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "env/env.h"
#include "env/random.h"
#include "sim/buggify.h"
#include "sim/clock.h"
#include "sim/disk.h"
#include "sim/network.h"
#include "sim/scheduler.h"

namespace keel::sim {

using ProcessFactory = std::function<std::unique_ptr<env::Process>(env::Env&)>;

struct WorldOptions {
  uint64_t seed = 0;
  std::vector<std::string> nodes;  // names, also their network host names
  // Same-instant events run in a seeded order (explores interleavings).
  bool shuffle_ties = true;
};

class World;

class Node {
 public:
  const std::string& name() const { return name_; }
  int id() const { return id_; }
  SimClock& clock() { return *clock_; }
  SimDisk& disk() { return *disk_; }
  bool up() const { return incarnation_ != nullptr; }
  // Incarnations started so far (1 after the first start).
  uint64_t incarnations() const { return incarnations_; }
  // The running process and its Env; null while the node is down.
  env::Process* process() const { return up() ? incarnation_->process.get() : nullptr; }
  env::Env* env() const { return up() ? &incarnation_->env : nullptr; }

 private:
  friend class World;
  struct Incarnation {
    Incarnation(World& world, Node& node, std::unique_ptr<env::Network> net);
    std::unique_ptr<env::Network> network;
    env::Random random;
    SimFaultPoints faults;
    SimTrace trace;
    env::Env env;
    std::unique_ptr<env::Process> process;
  };

  std::string name_;
  int id_ = 0;
  std::unique_ptr<SimClock> clock_;
  std::unique_ptr<SimDisk> disk_;
  ProcessFactory factory_;
  uint64_t incarnations_ = 0;
  std::unique_ptr<Incarnation> incarnation_;
};

struct WorldStats {
  uint64_t starts = 0;
  uint64_t crashes = 0;
};

class World {
 public:
  static constexpr size_t kNodesMax = Fabric::kHostsMax;

  explicit World(const WorldOptions& options);
  World(const World&) = delete;
  World& operator=(const World&) = delete;
  ~World();

  uint64_t seed() const { return master_.seed(); }
  // A named stream derived from the master seed.
  env::Random stream(std::string_view name) const { return master_.derive(name); }

  Scheduler& scheduler() { return scheduler_; }
  Fabric& fabric() { return fabric_; }
  Buggify& buggify() { return buggify_; }

  int size() const { return int(nodes_.size()); }
  Node& node(int id) { return *nodes_.at(size_t(id)); }
  int node_id(std::string_view name) const;  // -1 if unknown

  // The program each node runs (required before start).
  void set_factory(int id, ProcessFactory factory) { node(id).factory_ = std::move(factory); }
  void set_factory_all(const ProcessFactory& factory);

  // Starts a down node: a new incarnation and a new Process on its disk.
  void start(int id);
  void start_all();
  // Crashes an up node (see above).
  void crash(int id);
  // crash (if up) then start.
  void restart(int id);

  // Runs events for `duration_ns` of global time; false if `events_max` stopped it early.
  bool run_for(int64_t duration_ns, uint64_t events_max = UINT64_MAX) {
    return scheduler_.run_until(scheduler_.now_ns() + duration_ns, events_max);
  }

  const WorldStats& stats() const { return stats_; }
  // Sum of all nodes' disk stats.
  DiskStats disk_stats() const;

 private:
  env::Random master_;
  Scheduler scheduler_;
  Fabric fabric_;
  Buggify buggify_;
  WorldStats stats_;
  std::vector<std::unique_ptr<Node>> nodes_;  // destroyed first: processes die before the rest
};

}  // namespace keel::sim
