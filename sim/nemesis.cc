#include "sim/nemesis.h"

#include <fmt/format.h>

#include <vector>

#include "base/check.h"

namespace keel::sim {

FaultMix FaultMix::draw(env::Random& rng) {
  FaultMix mix;
  bool* kinds[] = {&mix.crashes,     &mix.partitions,  &mix.resets,
                   &mix.stalls,      &mix.slow_links,  &mix.drift,
                   &mix.clock_jumps, &mix.disk_errors, &mix.corruption};
  bool any = false;
  for (bool* kind : kinds) {
    *kind = rng.chance(1, 2);
    any |= *kind;
  }
  if (!any) *kinds[rng.uniform(std::size(kinds))] = true;
  // From one action per 2 s (calm) to one per 20 ms (frantic), log-uniformly.
  static constexpr int64_t kIntervalsNs[] = {20'000'000,  50'000'000,    100'000'000,  250'000'000,
                                             500'000'000, 1'000'000'000, 2'000'000'000};
  mix.interval_mean_ns = kIntervalsNs[rng.uniform(std::size(kIntervalsNs))];
  return mix;
}

FaultMix FaultMix::all(int64_t interval_mean_ns) {
  FaultMix mix;
  mix.crashes = mix.partitions = mix.resets = mix.stalls = mix.slow_links = true;
  mix.drift = mix.clock_jumps = mix.disk_errors = mix.corruption = true;
  mix.interval_mean_ns = interval_mean_ns;
  return mix;
}

std::string FaultMix::describe() const {
  std::string out;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!out.empty()) out += ",";
    out += name;
  };
  add(crashes, "crash");
  add(partitions, "partition");
  add(resets, "reset");
  add(stalls, "stall");
  add(slow_links, "slow-link");
  add(drift, "drift");
  add(clock_jumps, "clock-jump");
  add(disk_errors, "disk-error");
  add(corruption, "corruption");
  return fmt::format("{} every ~{}ms", out, interval_mean_ns / 1'000'000);
}

bool FaultMix::restrict_to(const std::string& list) {
  const std::pair<const char*, bool FaultMix::*> names[] = {
      {"crash", &FaultMix::crashes},          {"partition", &FaultMix::partitions},
      {"reset", &FaultMix::resets},           {"stall", &FaultMix::stalls},
      {"slow-link", &FaultMix::slow_links},   {"drift", &FaultMix::drift},
      {"clock-jump", &FaultMix::clock_jumps}, {"disk-error", &FaultMix::disk_errors},
      {"corruption", &FaultMix::corruption}};
  for (const auto& [name, field] : names) this->*field = false;
  size_t at = 0;
  while (at <= list.size()) {
    const size_t comma = std::min(list.find(',', at), list.size());
    const std::string item = list.substr(at, comma - at);
    bool known = false;
    for (const auto& [name, field] : names) {
      if (item == name) {
        this->*field = true;
        known = true;
      }
    }
    if (!known) return false;
    at = comma + 1;
  }
  return true;
}

Nemesis::Nemesis(World& world, env::Random rng, FaultMix mix)
    : world_(world), rng_(rng), mix_(mix) {
  KEEL_CHECK(mix_.interval_mean_ns > 0);
  for (int from = 0; from < world_.size(); from++) {
    for (int to = 0; to < world_.size(); to++) {
      base_links_.push_back(world_.fabric().link_params(from, to));
    }
  }
}

void Nemesis::start() {
  KEEL_CHECK(!running_);
  running_ = true;
  world_.scheduler().record("nemesis", "nemesis.start", mix_.describe());
  schedule_next();
}

void Nemesis::schedule_next() {
  // Uniform in [0, 2 * mean]: the mean as asked, without long silent gaps.
  const int64_t delay = int64_t(rng_.uniform(uint64_t(2 * mix_.interval_mean_ns) + 1));
  later(delay, [this] {
    act();
    schedule_next();
  });
}

void Nemesis::later(int64_t delay_ns, std::function<void()> fn) {
  world_.scheduler().after(delay_ns, [this, epoch = epoch_, fn = std::move(fn)] {
    if (running_ && epoch == epoch_) fn();
  });
}

void Nemesis::count(const std::string& kind) {
  counts_[kind]++;
  world_.scheduler().record("nemesis", "nemesis", kind);
}

int Nemesis::random_node() { return int(rng_.uniform(uint64_t(world_.size()))); }

int Nemesis::random_up_node() {
  std::vector<int> up;
  for (int id = 0; id < world_.size(); id++) {
    if (world_.node(id).up()) up.push_back(id);
  }
  if (up.empty()) return -1;
  return up[rng_.uniform(up.size())];
}

void Nemesis::act() {
  if (actions_max > 0 && actions_ >= actions_max) return;
  actions_++;
  using Action = void (Nemesis::*)();
  std::vector<Action> actions;
  if (mix_.crashes) {
    actions.push_back(&Nemesis::crash);
    actions.push_back(&Nemesis::restart);
  }
  if (mix_.partitions) actions.push_back(&Nemesis::partition);
  if (mix_.resets) actions.push_back(&Nemesis::reset);
  if (mix_.stalls) actions.push_back(&Nemesis::stall);
  if (mix_.slow_links) actions.push_back(&Nemesis::slow_link);
  if (mix_.drift) actions.push_back(&Nemesis::drift);
  if (mix_.clock_jumps) actions.push_back(&Nemesis::clock_jump);
  if (mix_.disk_errors) actions.push_back(&Nemesis::disk_errors);
  if (mix_.corruption) actions.push_back(&Nemesis::corrupt);
  KEEL_CHECK(!actions.empty());
  (this->*actions[rng_.uniform(actions.size())])();
}

void Nemesis::crash() {
  const int id = random_up_node();
  if (id < 0) return;
  count("crash");
  world_.crash(id);
  const int64_t downtime = int64_t(rng_.uniform(uint64_t(kDowntimeMaxNs) + 1));
  later(downtime, [this, id] {
    if (!world_.node(id).up()) world_.start(id);
  });
}

void Nemesis::restart() {
  const int id = random_up_node();
  if (id < 0) return;
  count("restart");
  world_.restart(id);
}

void Nemesis::partition() {
  if (partitioned_) return;
  const int n = world_.size();
  if (n < 2) return;
  std::vector<int> a, b;
  // A random split with both sides non-empty: each node joins a side at random, then one
  // node is moved if a side came out empty.
  for (int id = 0; id < n; id++) (rng_.chance(1, 2) ? a : b).push_back(id);
  if (a.empty()) {
    a.push_back(b.back());
    b.pop_back();
  } else if (b.empty()) {
    b.push_back(a.back());
    a.pop_back();
  }
  Fabric& fabric = world_.fabric();
  switch (rng_.uniform(4)) {
    case 0:
      count("partition.symmetric");
      fabric.partition_symmetric(a, b);
      break;
    case 1:
      count("partition.asymmetric");
      fabric.partition_asymmetric(a, b);
      break;
    case 2: {
      if (n < 3) return;
      // The bridge is taken out of its side; the others cannot reach each other.
      std::vector<int> all = a;
      all.insert(all.end(), b.begin(), b.end());
      const int bridge = all[rng_.uniform(all.size())];
      std::erase(a, bridge);
      std::erase(b, bridge);
      if (a.empty() || b.empty()) return;
      count("partition.bridge");
      fabric.partition_bridge(a, b, bridge);
      break;
    }
    default: {
      const int lone = random_node();
      std::vector<int> rest;
      for (int id = 0; id < n; id++) {
        if (id != lone) rest.push_back(id);
      }
      count("partition.isolate");
      fabric.partition_symmetric({lone}, rest);
      break;
    }
  }
  partitioned_ = true;
  const int64_t length = int64_t(rng_.uniform(uint64_t(kPartitionMaxNs) + 1));
  later(length, [this] {
    count("heal");
    world_.fabric().heal_all();
    partitioned_ = false;
  });
}

void Nemesis::reset() {
  if (world_.fabric().reset_one(rng_)) count("reset");
}

void Nemesis::stall() {
  const int from = random_node();
  const int to = random_node();
  if (from == to) return;
  count("stall");
  world_.fabric().stall(from, to, int64_t(rng_.uniform(uint64_t(kStallMaxNs) + 1)));
}

void Nemesis::slow_link() {
  const int from = random_node();
  const int to = random_node();
  if (from == to) return;
  count("slow-link");
  Fabric& fabric = world_.fabric();
  const LinkParams healthy = fabric.link_params(from, to);
  LinkParams slow = healthy;
  slow.latency_min_ns = rng_.range(1'000'000, 30'000'000);
  slow.latency_spread_ns = rng_.range(0, 30'000'000);
  slow.tail_per_million = uint64_t(rng_.range(0, 100'000));
  slow.bandwidth_bytes_per_s = uint64_t(rng_.range(100'000, 10'000'000));
  fabric.set_link_params(from, to, slow);
  later(rng_.range(100'000'000, 5'000'000'000),
        [this, from, to, healthy] { world_.fabric().set_link_params(from, to, healthy); });
}

void Nemesis::drift() {
  const int id = random_node();
  count("drift");
  world_.node(id).clock().set_drift_ppm(rng_.range(-kDriftPpmMax, kDriftPpmMax));
}

void Nemesis::clock_jump() {
  const int id = random_node();
  if (rng_.chance(1, 2)) {
    count("clock.jump");
    world_.node(id).clock().jump_monotonic(rng_.range(1'000'000, kJumpMaxNs));
  } else {
    count("clock.wall-step");
    world_.node(id).clock().jump_wall(rng_.range(-kWallStepMaxMs, kWallStepMaxMs));
  }
}

void Nemesis::disk_errors() {
  const int id = random_node();
  SimDisk& disk = world_.node(id).disk();
  DiskFaults faults = disk.faults();
  switch (rng_.uniform(4)) {
    case 0:
      count("disk.write-eio");
      faults.write_eio_ppm = uint64_t(rng_.range(10'000, 300'000));
      break;
    case 1:
      count("disk.sync-eio");
      faults.sync_eio_ppm = uint64_t(rng_.range(10'000, 300'000));
      break;
    case 2:
      count("disk.enospc");
      faults.capacity_bytes = disk.used_bytes() + uint64_t(rng_.range(0, 64 * 1024));
      break;
    default:
      count("disk.slow");
      faults.sync_slow_ppm = uint64_t(rng_.range(50'000, 1'000'000));
      break;
  }
  disk.set_faults(faults);
  later(rng_.range(10'000'000, kDiskFaultMaxNs),
        [this, id] { world_.node(id).disk().set_faults(DiskFaults{}); });
}

void Nemesis::corrupt() {
  if (corruptions_ >= kCorruptionsMax) return;
  if (corruption_victim_ < 0) {
    corruption_victim_ =
        storage_nodes > 0 ? int(rng_.uniform(uint64_t(storage_nodes))) : random_node();
    if (on_corrupt) on_corrupt(corruption_victim_);
  }
  auto what = world_.node(corruption_victim_).disk().corrupt_random_sector();
  if (!what.ok()) return;
  corruptions_++;
  count("disk.corrupt");
}

void Nemesis::stop() {
  if (!running_) return;
  running_ = false;
  epoch_++;
  world_.scheduler().record("nemesis", "nemesis.stop", "");
  world_.fabric().heal_all();
  partitioned_ = false;
  for (int from = 0; from < world_.size(); from++) {
    for (int to = 0; to < world_.size(); to++) {
      world_.fabric().set_link_params(from, to, base_links_[size_t(from * world_.size() + to)]);
    }
  }
  for (int id = 0; id < world_.size(); id++) {
    Node& node = world_.node(id);
    node.clock().set_drift_ppm(0);
    node.disk().set_faults(DiskFaults{});
    if (!node.up()) world_.start(id);
  }
  world_.buggify().set_active(false);
}

}  // namespace keel::sim
