#include "sim/world.h"

#include <fmt/format.h>

#include "base/check.h"

namespace keel::sim {

Node::Incarnation::Incarnation(World& world, Node& node, std::unique_ptr<env::Network> net)
    : network(std::move(net)),
      random(world.stream(fmt::format("node/{}/{}/process", node.name_, node.incarnations_))),
      faults(world.buggify(), world.scheduler(),
             world.stream(fmt::format("node/{}/{}/buggify", node.name_, node.incarnations_)),
             node.name_),
      trace(world.scheduler(), node.name_),
      env(node.name_, *node.clock_, *network, *node.disk_, random, faults, trace) {}

World::World(const WorldOptions& options)
    : master_(options.seed),
      fabric_(scheduler_, master_.derive("net")),
      buggify_(master_.derive("buggify")) {
  KEEL_CHECK(!options.nodes.empty() && options.nodes.size() <= kNodesMax);
  if (options.shuffle_ties) scheduler_.shuffle_ties(master_.derive("scheduler").seed());
  for (const std::string& name : options.nodes) {
    auto node = std::make_unique<Node>();
    node->name_ = name;
    node->id_ = fabric_.add_host(name);
    KEEL_CHECK_EQ(node->id_, int(nodes_.size()));
    node->clock_ = std::make_unique<SimClock>(scheduler_, name);
    node->disk_ = std::make_unique<SimDisk>(scheduler_, master_.derive("disk/" + name), name);
    // Random corruption is opt-in per node (the nemesis chooses at most f victims).
    node->disk_->set_corruption_allowed(false);
    nodes_.push_back(std::move(node));
  }
}

World::~World() {
  // Processes first (they hold streams, files and timers of the parts below).
  for (auto& node : nodes_) {
    if (node->up()) {
      fabric_.host_down(node->id_);
      node->clock_->stop();
      node->incarnation_.reset();
    }
  }
  nodes_.clear();
}

int World::node_id(std::string_view name) const {
  for (size_t i = 0; i < nodes_.size(); i++) {
    if (nodes_[i]->name_ == name) return int(i);
  }
  return -1;
}

void World::set_factory_all(const ProcessFactory& factory) {
  for (auto& node : nodes_) node->factory_ = factory;
}

void World::start(int id) {
  Node& n = node(id);
  KEEL_CHECK(!n.up(), "{} is already up", n.name_);
  KEEL_CHECK(n.factory_ != nullptr, "{} has no process factory", n.name_);
  n.incarnations_++;
  stats_.starts++;
  scheduler_.record(n.name_, "node.start", fmt::format("{}", n.incarnations_));
  n.clock_->resume();
  n.incarnation_ = std::make_unique<Node::Incarnation>(*this, n, fabric_.host_up(id));
  n.incarnation_->process = n.factory_(n.incarnation_->env);
  KEEL_CHECK(n.incarnation_->process != nullptr);
}

void World::start_all() {
  for (int id = 0; id < size(); id++) {
    if (!node(id).up()) start(id);
  }
}

void World::crash(int id) {
  Node& n = node(id);
  KEEL_CHECK(n.up(), "{} is not up", n.name_);
  stats_.crashes++;
  scheduler_.record(n.name_, "node.crash", fmt::format("{}", n.incarnations_));
  // Order matters: streams are closed silently first (so peers see resets, not orderly
  // closes from the dying process's destructors), timers are refused, then the process and
  // its memory go, and only then the disk loses its unsynced state (including anything the
  // destructors wrote).
  fabric_.host_down(id);
  n.clock_->stop();
  n.incarnation_->process.reset();
  n.incarnation_.reset();
  n.disk_->crash();
}

void World::restart(int id) {
  if (node(id).up()) crash(id);
  start(id);
}

DiskStats World::disk_stats() const {
  DiskStats total;
  for (const auto& node : nodes_) total += node->disk_->stats();
  return total;
}

}  // namespace keel::sim
