// Properties of the Raft core under random schedules: message delivery, loss, duplication and
// reordering, ticks, proposals, writes that are synced late, crashes that lose unsynced
// writes, restarts. After every step the cluster checkers (cluster.h) verify election safety,
// log matching, leader completeness, state machine safety, and durable-before-send for append
// acknowledgements and votes. After the chaos, a calm phase must elect a leader and commit.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "raft/describe.h"
#include "tests/raft/cluster.h"

namespace keel::raft::testing {
namespace {

constexpr int kCalmRoundsMax = 200;

std::string violations_text(Cluster& c) {
  std::string out;
  for (const auto& v : c.violations().found) out += v + "\n";
  return out;
}

// One step of chaos chosen by `code`.
void chaos_step(Cluster& c, const std::vector<uint64_t>& ids, uint32_t code, int& proposals) {
  const uint64_t id = ids[(code / 100) % ids.size()];
  Node& n = c.node(id);
  auto& net = c.network();
  const uint32_t kind = code % 100;
  if (!n.raft) {
    // A crashed node comes back after a while.
    if (kind < 20) c.restart(id);
    return;
  }
  if (kind < 20) {
    n.raft->tick();
  } else if (kind < 55) {
    if (!net.empty()) c.deliver_one((code / 100) % net.size(), false);
  } else if (kind < 58) {
    if (!net.empty()) net.erase(net.begin() + long((code / 100) % net.size()));
  } else if (kind < 60) {
    if (!net.empty()) c.deliver_one((code / 100) % net.size(), true);
  } else if (kind < 70) {
    c.process_ready(id, false);
  } else if (kind < 80) {
    c.sync(id);
  } else if (kind < 92) {
    c.process_ready(id, true);
  } else if (kind < 98) {
    if (n.raft->role() == Role::kLeader) {
      (void)n.raft->propose(fmt::format("p{}", ++proposals), 1 + (code / 7) % 3);
    }
  } else if (code % 2 == 0) {
    c.crash(id);
  } else {
    // Retention: remove everything this node applied (committed and durable).
    const uint64_t upto = std::min(n.raft->applied(), n.raft->durable_last());
    n.written->compact(upto);
    n.durable->compact(upto);
  }
}

// Faults off: restart everyone, deliver everything, tick until one leader commits a final
// entry on every node.
bool calm_phase(Cluster& c, const std::vector<uint64_t>& ids) {
  for (uint64_t id : ids) {
    if (!c.node(id).raft) c.restart(id);
  }
  bool proposed = false;
  for (int round = 0; round < kCalmRoundsMax; round++) {
    for (uint64_t id : ids) c.node(id).raft->tick();
    c.stabilize(ids);
    c.check();
    if (!c.violations().empty()) return false;
    for (uint64_t id : ids) {
      Raft& r = *c.node(id).raft;
      if (!proposed && r.role() == Role::kLeader) proposed = r.propose("final").ok();
    }
    if (!proposed) continue;
    bool all = true;
    uint64_t leader_commit = 0;
    for (uint64_t id : ids) {
      const Raft& r = *c.node(id).raft;
      if (r.role() == Role::kLeader) leader_commit = r.committed();
    }
    for (uint64_t id : ids) {
      const Raft& r = *c.node(id).raft;
      all = all && leader_commit > 0 && r.applied() == leader_commit &&
            r.last_index() == leader_commit;
    }
    if (all) return true;
  }
  return false;
}

// Returns the first violation found, or "" when the schedule was safe and live.
std::string run_schedule(uint64_t seed, int nodes, bool pre_vote, bool check_quorum,
                         const std::vector<uint32_t>& codes) {
  Cluster c(seed);
  NodeOptions o;
  o.pre_vote = pre_vote;
  o.check_quorum = check_quorum;
  o.election_tick = 4;
  o.max_inflight_msgs = 4;
  // Small appends (down to one entry each) split what a new leader re-sends, which Figure 8
  // schedules (an old-term entry on a majority without the no-op) need.
  o.max_msg_bytes = seed % 2 == 0 ? 1 : 8;
  const auto ids = c.add_nodes(nodes, o);
  int proposals = 0;
  const bool trace = std::getenv("KEEL_RAFT_TRACE") != nullptr;
  if (trace) std::setvbuf(stdout, nullptr, _IONBF, 0);  // keep the trace up to a crash
  c.set_logging(trace);
  for (size_t i = 0; i < codes.size(); i++) {
    if (trace) {
      const uint64_t id = ids[(codes[i] / 100) % ids.size()];
      const auto& net = c.network();
      std::string what = fmt::format("node {} kind {}", id, codes[i] % 100);
      if (!net.empty()) what += " msg " + describe_message(net[(codes[i] / 100) % net.size()]);
      fmt::print("step {}: {}\n", i, what);
    }
    chaos_step(c, ids, codes[i], proposals);
    if (trace) {
      fmt::print("{}", c.take_log());
      for (uint64_t id : ids) {
        const Node& n = c.node(id);
        if (!n.raft) continue;
        fmt::print("  {} {} t{} last {} durable {} commit {} stored {}..{}\n", id,
                   role_name(n.raft->role()), n.raft->term(), n.raft->last_index(),
                   n.raft->durable_last(), n.raft->committed(), n.durable->first_index(),
                   n.durable->last_index());
      }
    }
    c.check();
    if (!c.violations().empty()) {
      return fmt::format("after step {} (code {}):\n{}", i, codes[i], violations_text(c));
    }
  }
  if (std::getenv("KEEL_RAFT_STATS") != nullptr) {
    uint64_t term = 0, commit = 0;
    for (uint64_t id : ids) {
      if (!c.node(id).raft) continue;
      term = std::max(term, c.node(id).raft->term());
      commit = std::max(commit, c.node(id).raft->committed());
    }
    fmt::print("seed {} nodes {} steps {}: max term {} max commit {} proposals {}\n", seed, nodes,
               codes.size(), term, commit, proposals);
    for (uint64_t id : ids) {
      const Node& n = c.node(id);
      fmt::print("  {}: {} durable term {} last {}\n", id,
                 n.raft ? std::string(role_name(n.raft->role())) : "down",
                 n.durable->hard_state().term(), n.durable->last_index());
    }
  }
  const bool live = calm_phase(c, ids);
  if (!c.violations().empty()) return "in the calm phase:\n" + violations_text(c);
  if (!live) return "no leader committed a final entry on every node in the calm phase";
  return "";
}

RC_GTEST_PROP(RaftProperties, SafeUnderChaosAndLiveAfter, ()) {
  // Generated at full size: rapidcheck scales integers by the test's size, which would make
  // early schedules short and aimed at node 1 only. Short enough that shrinking a failure
  // takes seconds to minutes; LongSchedules covers depth.
  const uint64_t seed = *rc::gen::resize(100, rc::gen::arbitrary<uint64_t>());
  const int nodes = *rc::gen::element(3, 5);
  const bool pre_vote = *rc::gen::arbitrary<bool>();
  const bool check_quorum = *rc::gen::arbitrary<bool>();
  const size_t steps = *rc::gen::resize(100, rc::gen::inRange<size_t>(50, 400));
  const auto codes = *rc::gen::container<std::vector<uint32_t>>(
      steps, rc::gen::resize(100, rc::gen::inRange<uint32_t>(0, 100000)));
  const std::string failure = run_schedule(seed, nodes, pre_vote, check_quorum, codes);
  if (!failure.empty()) RC_FAIL(failure);
}

// Long schedules, which reach deeper states (several terms, crashes mid-replication).
TEST(RaftProperties, LongSchedules) {
  // KEEL_RAFT_SEEDS=N runs more (a soak); the default keeps `make test` quick.
  uint64_t seeds = 150;
  if (const char* env = std::getenv("KEEL_RAFT_SEEDS")) seeds = std::strtoull(env, nullptr, 10);
  uint64_t first = 1;
  if (const char* env = std::getenv("KEEL_RAFT_FIRST_SEED")) {
    first = std::strtoull(env, nullptr, 10);
  }
  for (uint64_t seed = first; seed < first + seeds; seed++) {
    env::Random r(seed);
    std::vector<uint32_t> codes(3000);
    for (auto& code : codes) code = uint32_t(r.uniform(100000));
    const int nodes = seed % 2 == 0 ? 3 : 5;
    const std::string failure = run_schedule(seed, nodes, seed % 3 != 0, seed % 4 != 0, codes);
    ASSERT_EQ(failure, "") << "seed " << seed;
  }
}

}  // namespace
}  // namespace keel::raft::testing
