// The simulated network: partitions cut exactly the links they name, healing restores them,
// resets and refusals behave like TCP, and streams are independent (late delivery across
// reconnections).
#include "sim/network.h"

#include <gtest/gtest.h>

#include <set>

#include "tests/sim/probe.h"

namespace keel::sim {
namespace {

using testing::probe;
using testing::probe_world;
using testing::ProbeLog;

constexpr int64_t kMs = 1'000'000;

// One established stream per unordered pair, keyed by (from, to) -> (stream id at `from`).
struct Mesh {
  std::map<std::pair<int, int>, int> stream;
};

Mesh connect_all(World& world, ProbeLog& log) {
  Mesh mesh;
  const int n = world.size();
  for (int a = 0; a < n; a++) {
    for (int b = a + 1; b < n; b++) {
      const size_t before = probe(world, b).inbound().size();
      const int out = probe(world, a).connect(world.node(b).name());
      world.run_for(50 * kMs);
      EXPECT_EQ(probe(world, b).inbound().size(), before + 1);
      mesh.stream[{a, b}] = out;
      mesh.stream[{b, a}] = probe(world, b).inbound().back();
    }
  }
  return mesh;
}

std::string tag(World& world, int from, int to) {
  return "m-" + world.node(from).name() + "-" + world.node(to).name();
}

// Sends one message over every ordered pair and returns the set of pairs that delivered it
// within `wait_ns`.
std::set<std::pair<int, int>> deliveries(World& world, ProbeLog& log, Mesh& mesh, int round,
                                         int64_t wait_ns) {
  const int n = world.size();
  for (int a = 0; a < n; a++) {
    for (int b = 0; b < n; b++) {
      if (a == b) continue;
      EXPECT_TRUE(probe(world, a)
                      .send(mesh.stream[{a, b}], fmt::format("{}-{}", tag(world, a, b), round))
                      .ok());
    }
  }
  world.run_for(wait_ns);
  std::set<std::pair<int, int>> got;
  for (int a = 0; a < n; a++) {
    for (int b = 0; b < n; b++) {
      if (a == b) continue;
      const std::string want = fmt::format("{}#1 data {} {}-{}", world.node(b).name(),
                                           mesh.stream[{b, a}], tag(world, a, b), round);
      if (log.contains(want)) got.insert({a, b});
    }
  }
  return got;
}

std::set<std::pair<int, int>> all_pairs(int n) {
  std::set<std::pair<int, int>> s;
  for (int a = 0; a < n; a++) {
    for (int b = 0; b < n; b++) {
      if (a != b) s.insert({a, b});
    }
  }
  return s;
}

std::set<std::pair<int, int>> minus(std::set<std::pair<int, int>> s,
                                    const std::set<std::pair<int, int>>& cut) {
  for (auto& p : cut) s.erase(p);
  return s;
}

class PartitionTest : public ::testing::TestWithParam<int> {};

TEST_P(PartitionTest, CutsExactlyTheNamedLinksAndHealingRestoresThem) {
  ProbeLog log;
  auto world = probe_world(100 + uint64_t(GetParam()), 4, &log);
  Mesh mesh = connect_all(*world, log);
  ASSERT_EQ(deliveries(*world, log, mesh, 0, 100 * kMs), all_pairs(4));

  Fabric& fabric = world->fabric();
  std::set<std::pair<int, int>> cut;
  switch (GetParam()) {
    case 0:  // symmetric: {n1,n2} | {n3,n4}
      fabric.partition_symmetric({0, 1}, {2, 3});
      cut = {{0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 0}, {3, 0}, {2, 1}, {3, 1}};
      break;
    case 1:  // asymmetric: n1 -> {n2, n3} only
      fabric.partition_asymmetric({0}, {1, 2});
      cut = {{0, 1}, {0, 2}};
      break;
    case 2:  // bridge: {n1} and {n3,n4} cannot talk; n2 talks to everyone
      fabric.partition_bridge({0}, {2, 3}, 1);
      cut = {{0, 2}, {0, 3}, {2, 0}, {3, 0}};
      break;
  }
  for (int a = 0; a < 4; a++) {
    for (int b = 0; b < 4; b++) {
      if (a != b) {
        EXPECT_EQ(fabric.is_cut(a, b), cut.contains({a, b})) << a << "->" << b;
      }
    }
  }
  // Well below Fabric::kCutResetNs: the blocked streams stall, they are not reset yet.
  EXPECT_EQ(deliveries(*world, log, mesh, 1, 500 * kMs), minus(all_pairs(4), cut));

  fabric.heal_all();
  world->run_for(500 * kMs);
  // The bytes held back by the partition arrive after healing, and new ones flow everywhere.
  for (const auto& [a, b] : cut) {
    EXPECT_TRUE(log.contains(fmt::format("{}#1 data {} {}-1", world->node(b).name(),
                                         mesh.stream[{b, a}], tag(*world, a, b))))
        << a << "->" << b;
  }
  EXPECT_EQ(deliveries(*world, log, mesh, 2, 100 * kMs), all_pairs(4));
}

INSTANTIATE_TEST_SUITE_P(Shapes, PartitionTest, ::testing::Values(0, 1, 2));

TEST(Network, ConnectAcrossAPartitionTimesOutAndAfterHealingSucceeds) {
  ProbeLog log;
  auto world = probe_world(1, 2, &log);
  world->fabric().partition_asymmetric({1}, {0});  // n2 -> n1 cut: the handshake cannot finish
  const int id = probe(*world, 0).connect("n2");
  world->run_for(Fabric::kConnectTimeoutNs + 100 * kMs);
  EXPECT_TRUE(log.contains(fmt::format("n1#1 close {} error", id)));
  EXPECT_EQ(world->fabric().stats().connect_timeouts, 1u);
  EXPECT_TRUE(probe(*world, 1).inbound().empty());
  world->fabric().heal_all();
  const int again = probe(*world, 0).connect("n2");
  world->run_for(100 * kMs);
  EXPECT_TRUE(log.contains(fmt::format("n1#1 open {}", again)));
}

TEST(Network, AStreamBlockedByAPartitionIsResetAfterAWhile) {
  ProbeLog log;
  auto world = probe_world(2, 2, &log);
  const int id = probe(*world, 0).connect("n2");
  world->run_for(50 * kMs);
  world->fabric().cut(0, 1);
  ASSERT_TRUE(probe(*world, 0).send(id, "stuck").ok());
  world->run_for(Fabric::kCutResetNs + Fabric::kCutRetryNs * 2 + 100 * kMs);
  EXPECT_TRUE(log.contains(fmt::format("n1#1 close {} error", id)));
  EXPECT_TRUE(log.contains(fmt::format("n2#1 close {} error", probe(*world, 1).inbound()[0])));
  for (const auto& line : log.lines) EXPECT_EQ(line.find("stuck"), std::string::npos);
}

TEST(Network, ConnectToADownOrNonListeningNodeIsRefusedAfterALatency) {
  ProbeLog log;
  auto world = probe_world(3, 3, &log);
  world->crash(1);
  const int64_t start = world->scheduler().now_ns();
  const int to_down = probe(*world, 0).connect("n2");
  const int to_nowhere = probe(*world, 0).connect("nowhere");
  world->run_for(100 * kMs);
  EXPECT_TRUE(log.contains(fmt::format("n1#1 close {} error", to_down)));
  EXPECT_TRUE(log.contains(fmt::format("n1#1 close {} error", to_nowhere)));
  EXPECT_EQ(world->fabric().stats().refused, 1u);
  EXPECT_GT(world->scheduler().now_ns(), start);
}

TEST(Network, ResetClosesBothEndsWithAnErrorAndLosesBytesInFlight) {
  ProbeLog log;
  auto world = probe_world(4, 2, &log);
  const int id = probe(*world, 0).connect("n2");
  world->run_for(50 * kMs);
  ASSERT_TRUE(probe(*world, 0).send(id, "lost").ok());
  EXPECT_EQ(world->fabric().reset_between(0, 1), 1);
  EXPECT_FALSE(probe(*world, 0).send(id, "after").ok());
  world->run_for(100 * kMs);
  EXPECT_TRUE(log.contains(fmt::format("n1#1 close {} error", id)));
  EXPECT_TRUE(log.contains(fmt::format("n2#1 close {} error", probe(*world, 1).inbound()[0])));
  for (const auto& line : log.lines) EXPECT_EQ(line.find("data"), std::string::npos) << line;
  EXPECT_GT(world->fabric().stats().bytes_lost, 0u);
}

TEST(Network, OrderlyCloseDeliversEverythingFirst) {
  ProbeLog log;
  auto world = probe_world(5, 2, &log);
  const int id = probe(*world, 0).connect("n2");
  world->run_for(50 * kMs);  // closing a stream still connecting aborts it, as in TCP
  for (int i = 0; i < 20; i++) ASSERT_TRUE(probe(*world, 0).send(id, fmt::format("{},", i)).ok());
  probe(*world, 0).close(id);
  world->run_for(100 * kMs);
  std::string got;
  bool closed = false;
  for (const auto& line : log.lines) {
    if (line.starts_with("n2#1 data")) {
      EXPECT_FALSE(closed);
      got += line.substr(line.rfind(' ') + 1);
    }
    if (line.starts_with("n2#1 close")) {
      closed = true;
      EXPECT_TRUE(line.ends_with("ok"));
    }
  }
  EXPECT_TRUE(closed);
  std::string want;
  for (int i = 0; i < 20; i++) want += fmt::format("{},", i);
  EXPECT_EQ(got, want);
}

TEST(Network, AnOldStreamsMessageMayArriveAfterANewerStreams) {
  ProbeLog log;
  auto world = probe_world(6, 2, &log);
  Fabric& fabric = world->fabric();
  LinkParams slow;
  slow.latency_min_ns = 200 * kMs;
  slow.latency_spread_ns = 0;
  slow.tail_per_million = 0;
  LinkParams fast = slow;
  fast.latency_min_ns = 1 * kMs;
  fabric.set_link_params(0, 1, fast);
  fabric.set_link_params(1, 0, fast);
  const int old_stream = probe(*world, 0).connect("n2");
  world->run_for(10 * kMs);
  fabric.set_link_params(0, 1, slow);
  ASSERT_TRUE(probe(*world, 0).send(old_stream, "old").ok());
  fabric.set_link_params(0, 1, fast);
  const int new_stream = probe(*world, 0).connect("n2");
  world->run_for(10 * kMs);
  ASSERT_TRUE(probe(*world, 0).send(new_stream, "new").ok());
  world->run_for(500 * kMs);
  int old_at = -1, new_at = -1;
  for (int i = 0; i < int(log.lines.size()); i++) {
    if (log.lines[size_t(i)].ends_with(" old")) old_at = i;
    if (log.lines[size_t(i)].ends_with(" new")) new_at = i;
  }
  ASSERT_GE(old_at, 0);
  ASSERT_GE(new_at, 0);
  EXPECT_LT(new_at, old_at);
}

TEST(Network, BandwidthSerializesALink) {
  ProbeLog log;
  auto world = probe_world(7, 2, &log, /*shuffle=*/false);
  LinkParams p;
  p.latency_min_ns = 0;
  p.latency_spread_ns = 0;
  p.tail_per_million = 0;
  p.bandwidth_bytes_per_s = 1'000'000;  // 1 byte per microsecond
  world->fabric().set_all_link_params(p);
  const int id = probe(*world, 0).connect("n2");
  world->run_for(1 * kMs);
  const std::string big(100'000, 'x');  // 100 ms on this link
  ASSERT_TRUE(probe(*world, 0).send(id, big).ok());
  world->run_for(50 * kMs);
  for (const auto& line : log.lines) EXPECT_FALSE(line.starts_with("n2#1 data")) << "too early";
  world->run_for(60 * kMs);
  bool arrived = false;
  for (const auto& line : log.lines) arrived |= line.starts_with("n2#1 data");
  EXPECT_TRUE(arrived);
}

TEST(Network, StallHoldsDeliveriesUntilItEnds) {
  ProbeLog log;
  auto world = probe_world(8, 2, &log);
  const int id = probe(*world, 0).connect("n2");
  world->run_for(50 * kMs);
  world->fabric().stall(0, 1, 300 * kMs);
  ASSERT_TRUE(probe(*world, 0).send(id, "held").ok());
  world->run_for(250 * kMs);
  for (const auto& line : log.lines) EXPECT_EQ(line.find("held"), std::string::npos);
  world->run_for(100 * kMs);
  bool arrived = false;
  for (const auto& line : log.lines) arrived |= line.ends_with(" held");
  EXPECT_TRUE(arrived);
}

}  // namespace
}  // namespace keel::sim
