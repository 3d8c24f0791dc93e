// The simulator's world-proof workload (sim/workload.h), unchanged, on real IO: three nodes,
// each with its own RealEnv (event loop, TCP sockets on loopback, files in its own temporary
// data directory), stepped in turn on this thread. Nodes are restarted one at a time and all
// together, then at arbitrary moments; the workload's global checker verifies that every
// acknowledged record is recovered with its bytes, nothing unwritten appears, and every message
// received was sent.
#include "sim/workload.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "disk/real_env.h"
#include "net/loop_group.h"
#include "tests/realio/realio_util.h"

namespace keel {
namespace {

using std::chrono::seconds;

class RealCluster {
 public:
  static constexpr int kNodes = 3;

  explicit RealCluster(sim::WorkloadChecker& checker) : checker_(&checker) {
    for (int i = 0; i < kNodes; i++) {
      Node node;
      node.name = "n" + std::to_string(i + 1);
      node.address = env::Address{"127.0.0.1", realio_test::unused_port()};
      nodes_.push_back(std::move(node));
    }
  }
  ~RealCluster() {
    for (int i = 0; i < kNodes; i++) stop(i);
  }

  void start(int i) {
    Node& node = nodes_[i];
    ASSERT_FALSE(node.process);
    disk::RealEnvOptions options;
    options.node = node.name;
    options.data_dir = dir_.sub(node.name);
    options.seed = 0x5eed0000 + uint64_t(i) * 1000 + node.incarnations;
    auto env = disk::RealEnv::create(options);
    ASSERT_TRUE(env.ok()) << env.status();
    node.env = std::move(*env);
    sim::WorkloadOptions w;
    w.listen = node.address;
    for (int j = 0; j < kNodes; j++) {
      if (j != i) w.peers.push_back(nodes_[j].address);
    }
    w.observer = checker_;
    node.process = std::make_unique<sim::WorkloadProcess>(node.env->env(), w);
    node.incarnations++;
  }

  // The process goes away with all its memory; its files stay. Then its Env (loop, sockets).
  void stop(int i) {
    nodes_[i].process.reset();
    nodes_[i].env.reset();
  }

  sim::WorkloadProcess& process(int i) { return *nodes_[i].process; }
  disk::RealEnv& env(int i) { return *nodes_[i].env; }

  bool run_until(absl::FunctionRef<bool()> done, net::Nanos timeout) {
    std::vector<net::EventLoop*> loops;
    for (Node& node : nodes_) {
      if (node.env) loops.push_back(&node.env->loop());
    }
    return net::run_loops_until(loops, done, timeout);
  }

  // Every running node has acknowledged `acked` more records and received `messages` more
  // messages than at `since`, and is connected to all its peers.
  struct Mark {
    uint64_t acked[kNodes];
    uint64_t received[kNodes];
  };
  Mark mark() {
    Mark m{};
    for (int i = 0; i < kNodes; i++) {
      m.acked[i] = nodes_[i].process ? nodes_[i].process->acked_upto() : 0;
      m.received[i] = nodes_[i].process ? nodes_[i].process->messages_received() : 0;
    }
    return m;
  }
  bool progressed(const Mark& since, uint64_t acked, uint64_t messages) {
    for (int i = 0; i < kNodes; i++) {
      if (!nodes_[i].process) continue;
      const sim::WorkloadProcess& p = *nodes_[i].process;
      // acked_upto restarts from the recovered log, so compare against a fresh baseline.
      if (p.acked_upto() < since.acked[i] + acked) return false;
      if (p.messages_received() < messages) return false;
      if (p.open_peers() != size_t(kNodes - 1)) return false;
    }
    return true;
  }

  std::string data_dir(int i) const { return dir_.sub(nodes_[i].name); }

 private:
  struct Node {
    std::string name;
    env::Address address;
    uint64_t incarnations = 0;
    std::unique_ptr<disk::RealEnv> env;
    std::unique_ptr<sim::WorkloadProcess> process;
  };

  realio_test::TempDir dir_;
  sim::WorkloadChecker* checker_;
  std::vector<Node> nodes_;
};

void expect_clean(const sim::WorkloadChecker& checker) {
  EXPECT_TRUE(checker.ok()) << checker.violation_count() << " violations";
  for (const std::string& v : checker.violations()) ADD_FAILURE() << v;
}

TEST(RealWorkloadTest, ThreeNodesOverLoopbackAndFilesSurviveRestarts) {
  sim::WorkloadChecker checker;
  RealCluster cluster(checker);
  for (int i = 0; i < RealCluster::kNodes; i++) cluster.start(i);
  if (HasFatalFailure()) return;

  // Phase 1: everyone appends, syncs, acknowledges and talks to everyone.
  auto mark = cluster.mark();
  ASSERT_TRUE(cluster.run_until([&] { return cluster.progressed(mark, 30, 10); }, seconds(60)));
  expect_clean(checker);

  // Phase 2: restart one node; it recovers its acknowledged records and rejoins.
  cluster.stop(1);
  cluster.start(1);
  if (HasFatalFailure()) return;
  mark = cluster.mark();
  ASSERT_TRUE(cluster.run_until([&] { return cluster.progressed(mark, 30, 10); }, seconds(60)));
  expect_clean(checker);

  // Phase 3: restart all of them at once, twice in a row without giving them time to settle.
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < RealCluster::kNodes; i++) cluster.stop(i);
    for (int i = 0; i < RealCluster::kNodes; i++) cluster.start(i);
    if (HasFatalFailure()) return;
    cluster.run_until([] { return false; }, std::chrono::milliseconds(30 * (round + 1)));
  }
  mark = cluster.mark();
  ASSERT_TRUE(cluster.run_until([&] { return cluster.progressed(mark, 30, 10); }, seconds(60)));
  expect_clean(checker);

  // Phase 4: restarts at arbitrary moments (mid-append, mid-sync, mid-handshake), chosen by a
  // fixed seed: one node, or all of them, after 0-250 ms of running.
  std::mt19937_64 rng(20261121);
  int restarts = 0;
  for (int round = 0; round < 12; round++) {
    cluster.run_until([] { return false; }, std::chrono::milliseconds(rng() % 250));
    if (rng() % 4 == 0) {
      for (int i = 0; i < RealCluster::kNodes; i++) cluster.stop(i);
      for (int i = 0; i < RealCluster::kNodes; i++) cluster.start(i);
      restarts += RealCluster::kNodes;
    } else {
      const int i = int(rng() % RealCluster::kNodes);
      cluster.stop(i);
      cluster.start(i);
      restarts++;
    }
    if (HasFatalFailure()) return;
  }
  mark = cluster.mark();
  ASSERT_TRUE(cluster.run_until([&] { return cluster.progressed(mark, 30, 10); }, seconds(60)));

  // Final check: stop everything and recover once more, so every acknowledgement made so far
  // is verified against what the files hold.
  for (int i = 0; i < RealCluster::kNodes; i++) cluster.stop(i);
  for (int i = 0; i < RealCluster::kNodes; i++) cluster.start(i);
  if (HasFatalFailure()) return;
  for (int i = 0; i < RealCluster::kNodes; i++) cluster.stop(i);

  const auto& c = checker.counts();
  std::printf(
      "real workload: written %llu, acked %llu, recoveries %llu (%llu records), sent %llu, "
      "received %llu (%llu duplicates), disk failures %llu\n",
      (unsigned long long)c.written, (unsigned long long)c.acked, (unsigned long long)c.recoveries,
      (unsigned long long)c.recovered_records, (unsigned long long)c.sent,
      (unsigned long long)c.received, (unsigned long long)c.duplicates,
      (unsigned long long)c.disk_failures);
  expect_clean(checker);
  EXPECT_EQ(c.recoveries, uint64_t(3 + 1 + 3 + 3 + restarts + 3));
  EXPECT_GE(c.acked, uint64_t(3 * 120));
  EXPECT_GT(c.recovered_records, 0u);
  EXPECT_GE(c.received, uint64_t(3 * 30));
  EXPECT_EQ(c.disk_failures, 0u);
}

}  // namespace
}  // namespace keel
