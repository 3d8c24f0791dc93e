// Raft core throughput: entries and bytes per second through propose -> Ready -> step for a
// three-node group in memory. Messages are handed straight to their recipient, every Ready is
// written to a MemoryStorage and reported durable at once, so this measures the core itself
// (plus protobuf message copies), not IO. Recorded in docs/benchmarks.md (section raft).
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "base/check.h"
#include "env/random.h"
#include "raft/log_storage.h"
#include "raft/raft.h"

namespace keel::raft {
namespace {

constexpr int kNodes = 3;
constexpr int kDriveRoundsMax = 1000;

class BenchCluster {
 public:
  BenchCluster() {
    std::vector<uint64_t> voters;
    for (int i = 1; i <= kNodes; i++) voters.push_back(uint64_t(i));
    for (int i = 0; i < kNodes; i++) {
      storage_.push_back(std::make_unique<MemoryStorage>(voters));
      random_.push_back(std::make_unique<env::Random>(uint64_t(i + 1)));
      Config c;
      c.id = uint64_t(i + 1);
      c.voters = voters;
      c.random = random_.back().get();
      raft_.push_back(std::make_unique<Raft>(c, *storage_.back()));
    }
    raft_[0]->campaign();
    drive();
    KEEL_CHECK(raft_[0]->role() == Role::kLeader);
  }

  Raft& leader() { return *raft_[0]; }

  // Runs the group until every entry is committed and applied on every node. The leader
  // sends no append just to carry a new commit index: followers learn it from the next
  // heartbeat, so once the group settles, one leader tick (heartbeat_tick = 1) sends it.
  void drive() {
    settle();
    bool behind = false;
    for (int i = 1; i < kNodes; i++) behind = behind || raft_[i]->applied() < leader().committed();
    if (!behind) return;
    raft_[0]->tick();
    settle();
  }

  // Processes Readies and delivers messages until nothing moves.
  void settle() {
    for (int round = 0; round < kDriveRoundsMax; round++) {
      bool moved = false;
      for (int i = 0; i < kNodes; i++) {
        while (raft_[i]->has_ready()) {
          moved = true;
          Ready rd = raft_[i]->take_ready();
          MemoryStorage& s = *storage_[i];
          if (rd.snapshot) s.apply_snapshot(*rd.snapshot);
          if (!rd.entries.empty()) s.append(rd.entries);
          if (rd.hard_state) s.set_hard_state(*rd.hard_state);
          for (Message& m : rd.messages) pending_.push_back(std::move(m));
          if (rd.must_persist) raft_[i]->persisted(rd.id);
        }
      }
      std::vector<Message> batch;
      batch.swap(pending_);
      for (const Message& m : batch) {
        moved = true;
        raft_[m.to() - 1]->step(m);
      }
      if (!moved) return;
    }
    KEEL_CHECK(false, "cluster did not settle");
  }

  void check_applied_everywhere() const {
    for (int i = 0; i < kNodes; i++) {
      KEEL_CHECK(raft_[i]->applied() == raft_[0]->last_index(), "node {} applied {} of {}", i + 1,
                 raft_[i]->applied(), raft_[0]->last_index());
    }
  }

  // Retention, so memory stays bounded over a long run.
  void compact() {
    for (int i = 0; i < kNodes; i++) storage_[i]->compact(raft_[i]->applied());
  }

 private:
  std::vector<std::unique_ptr<MemoryStorage>> storage_;
  std::vector<std::unique_ptr<env::Random>> random_;
  std::vector<std::unique_ptr<Raft>> raft_;
  std::vector<Message> pending_;
};

// Args: entry data size in bytes, entries proposed per round (before the cluster is driven).
void BM_RaftCoreThroughput(benchmark::State& state) {
  const size_t entry_bytes = size_t(state.range(0));
  const int per_round = int(state.range(1));
  BenchCluster cluster;
  const std::string data(entry_bytes, 'x');
  int64_t entries = 0;
  uint64_t rounds = 0;
  for (auto _ : state) {
    for (int i = 0; i < per_round; i++) {
      auto r = cluster.leader().propose(data);
      KEEL_CHECK(r.ok());
    }
    cluster.drive();
    entries += per_round;
    if (++rounds % 64 == 0) cluster.compact();
  }
  KEEL_CHECK_EQ(cluster.leader().committed(), cluster.leader().last_index());
  cluster.check_applied_everywhere();
  state.SetItemsProcessed(entries);
  state.SetBytesProcessed(entries * int64_t(entry_bytes));
}
BENCHMARK(BM_RaftCoreThroughput)
    ->ArgNames({"bytes", "batch"})
    ->Args({100, 1})
    ->Args({100, 64})
    ->Args({1024, 64})
    ->Args({16384, 64});

}  // namespace
}  // namespace keel::raft

BENCHMARK_MAIN();
