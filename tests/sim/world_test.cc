// Nodes: crash destroys the process and every callback of its incarnation; the disk keeps
// what was synced and loses or tears what was not; restart builds a new incarnation.
#include <gtest/gtest.h>

#include "tests/sim/probe.h"

namespace keel::sim {
namespace {

using testing::probe;
using testing::Probe;
using testing::probe_world;
using testing::ProbeLog;

constexpr int64_t kMs = 1'000'000;
constexpr size_t kSector = env::kSectorBytes;

std::string pattern(char c, size_t n) { return std::string(n, c); }

Bytes read_all(env::Disk& disk, const std::string& path) {
  auto file = disk.open(path, env::OpenMode::kExisting);
  KEEL_CHECK(file.ok());
  Bytes out((*file)->size());
  auto n = (*file)->read(0, out);
  KEEL_CHECK(n.ok());
  out.resize(*n);
  return out;
}

TEST(World, AfterACrashSyncedBytesSurviveAndUnsyncedAreGoneOrTorn) {
  uint64_t intact = 0, damaged = 0;
  for (uint64_t seed = 1; seed <= 40; seed++) {
    ProbeLog log;
    auto world = probe_world(seed, 1, &log);
    probe(*world, 0).write("f", 0, pattern('a', 2 * kSector), /*sync=*/true);
    probe(*world, 0).sync_dir();  // the file's name is durable only after this
    world->run_for(100 * kMs);
    ASSERT_TRUE(log.contains("n1#1 synced f OK")) << seed;
    ASSERT_TRUE(log.contains("n1#1 dirsynced OK")) << seed;
    probe(*world, 0).write("f", 2 * kSector, pattern('b', 3 * kSector), /*sync=*/false);
    world->crash(0);
    world->start(0);
    const Bytes got = read_all(world->node(0).disk(), "f");
    ASSERT_GE(got.size(), 2 * kSector) << seed;
    EXPECT_EQ(std::string(got.begin(), got.begin() + 2 * kSector), pattern('a', 2 * kSector))
        << "synced bytes changed, seed " << seed;
    const std::string tail(got.begin() + 2 * kSector, got.end());
    (tail == pattern('b', 3 * kSector) ? intact : damaged)++;
  }
  // The crash model really drops or tears unsynced sectors (not just in theory).
  EXPECT_GT(damaged, 0u);
  EXPECT_GT(intact + damaged, 0u);
}

TEST(World, ACrashedNodesTimersStreamsAndDiskCallbacksNeverRun) {
  ProbeLog log;
  auto world = probe_world(3, 2, &log);
  Probe& p = probe(*world, 0);
  const int out = p.connect("n2");
  world->run_for(50 * kMs);
  ASSERT_TRUE(log.contains(fmt::format("n1#1 open {}", out)));
  p.timer(10 * kMs, "t");
  p.write("f", 0, "x", /*sync=*/true);
  ASSERT_TRUE(probe(*world, 1).send(probe(*world, 1).inbound()[0], "to-n1").ok());
  world->crash(0);
  const size_t lines_at_crash = log.lines.size();
  world->run_for(5'000 * kMs);
  for (size_t i = lines_at_crash; i < log.lines.size(); i++) {
    EXPECT_FALSE(log.lines[i].starts_with("n1#1")) << "dead incarnation ran: " << log.lines[i];
  }
  // The peer saw the crash as a reset.
  EXPECT_TRUE(log.contains(fmt::format("n2#1 close {} error", probe(*world, 1).inbound()[0])));
  // A new incarnation works normally.
  world->start(0);
  probe(*world, 0).timer(kMs, "again");
  world->run_for(10 * kMs);
  EXPECT_TRUE(log.contains("n1#2 timer again"));
  EXPECT_EQ(world->node(0).incarnations(), 2u);
}

TEST(World, RestartRecoversTheListenerAndPeersCanReconnect) {
  ProbeLog log;
  auto world = probe_world(4, 2, &log);
  world->restart(1);
  const int id = probe(*world, 0).connect("n2");
  world->run_for(50 * kMs);
  EXPECT_TRUE(log.contains(fmt::format("n1#1 open {}", id)));
  ASSERT_EQ(probe(*world, 1).inbound().size(), 1u);
}

TEST(World, EveryStreamIsDerivedFromTheMasterSeed) {
  World a(WorldOptions{7, {"n1", "n2"}});
  World b(WorldOptions{7, {"n1", "n2"}});
  World c(WorldOptions{8, {"n1", "n2"}});
  EXPECT_EQ(a.stream("x").seed(), b.stream("x").seed());
  EXPECT_NE(a.stream("x").seed(), a.stream("y").seed());
  EXPECT_NE(a.stream("x").seed(), c.stream("x").seed());
}

}  // namespace
}  // namespace keel::sim
