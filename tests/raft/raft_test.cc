// Unit tests of the core's API edges: message validation, proposals off the leader, a group
// of one (its own vote counts only once durable), and restart from durable state.
#include "raft/raft.h"

#include <gtest/gtest.h>

#include "raft/log_storage.h"

namespace keel::raft {
namespace {

Message app(uint64_t prev, std::vector<std::pair<uint64_t, uint32_t>> entries) {
  Message m;
  m.set_type(MSG_APP);
  m.set_from(1);
  m.set_to(2);
  m.set_term(3);
  m.set_index(prev);
  for (auto [index, count] : entries) {
    Entry* e = m.add_entries();
    e->set_index(index);
    e->set_count(count);
    e->set_term(3);
    m.set_leader_last(index + count - 1);
  }
  if (entries.empty()) m.set_leader_last(prev);
  return m;
}

TEST(ValidateMessage, AcceptsContiguousEntries) {
  EXPECT_TRUE(validate_message(app(4, {{5, 3}, {8, 1}})).ok());
  EXPECT_TRUE(validate_message(app(4, {})).ok());
}

TEST(ValidateMessage, RejectsMalformed) {
  EXPECT_FALSE(validate_message(app(4, {{6, 1}})).ok());          // gap after prev
  EXPECT_FALSE(validate_message(app(4, {{5, 2}, {8, 1}})).ok());  // gap between entries
  EXPECT_FALSE(validate_message(app(4, {{5, 0}})).ok());          // empty entry
  Message m = app(4, {});
  m.set_term(0);
  EXPECT_FALSE(validate_message(m).ok());
  m = app(4, {});
  m.set_to(1);
  EXPECT_FALSE(validate_message(m).ok());
  m = app(4, {});
  m.set_type(MessageType(99));
  EXPECT_FALSE(validate_message(m).ok());
  m = app(4, {{5, 3}});
  m.set_leader_last(6);  // a leader's log ends no earlier than what it sends
  EXPECT_FALSE(validate_message(m).ok());
}

// Node 2 of voters {1, 2, 3}, a follower at term 0 with an empty log.
struct Follower {
  MemoryStorage storage{{1, 2, 3}};
  env::Random random{3};
  Raft raft{[this] {
              Config c;
              c.id = 2;
              c.voters = {1, 2, 3};
              c.random = &random;
              return c;
            }(),
            storage};
};

struct Single {
  MemoryStorage storage{{1}};
  env::Random random{7};
  std::unique_ptr<Raft> raft;
  Single() { restart(); }
  void restart() {
    Config c;
    c.id = 1;
    c.random = &random;
    raft = std::make_unique<Raft>(c, storage);
  }
  // Writes and persists every Ready.
  void drain() {
    for (int i = 0; i < 10 && raft->has_ready(); i++) {
      Ready rd = raft->take_ready();
      EXPECT_TRUE(rd.messages.empty());
      if (rd.snapshot) storage.apply_snapshot(*rd.snapshot);
      if (!rd.entries.empty()) storage.append(rd.entries);
      if (rd.hard_state) storage.set_hard_state(*rd.hard_state);
      if (rd.must_persist) raft->persisted(rd.id);
    }
  }
};

TEST(Raft, GroupOfOneLeadsOnlyOnceItsVoteIsDurable) {
  Single s;
  EXPECT_EQ(s.raft->propose("x").status().code(), absl::StatusCode::kFailedPrecondition);
  s.raft->campaign();
  EXPECT_EQ(s.raft->role(), Role::kCandidate);
  Ready rd = s.raft->take_ready();
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->vote(), 1u);
  EXPECT_EQ(s.raft->role(), Role::kCandidate);  // not before persisted()
  s.storage.set_hard_state(*rd.hard_state);
  s.raft->persisted(rd.id);
  EXPECT_EQ(s.raft->role(), Role::kLeader);
  s.drain();
  EXPECT_EQ(s.raft->committed(), 1u);  // its no-op
}

TEST(Raft, ProposalsCommitWhenDurableAndSurviveRestart) {
  Single s;
  s.raft->campaign();
  s.drain();
  auto r = s.raft->propose("batch", 10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->index, 2u);
  Ready rd = s.raft->take_ready();
  ASSERT_EQ(rd.entries.size(), 1u);
  EXPECT_EQ(s.raft->committed(), 1u);  // the leader's own write is not durable yet
  s.storage.append(rd.entries);
  if (rd.hard_state) s.storage.set_hard_state(*rd.hard_state);
  s.raft->persisted(rd.id);
  EXPECT_EQ(s.raft->committed(), 11u);
  EXPECT_EQ(s.raft->next_index(), 12u);
  s.drain();
  s.restart();
  EXPECT_EQ(s.raft->term(), 1u);
  EXPECT_EQ(s.raft->last_index(), 11u);
  EXPECT_EQ(s.raft->committed(), 11u);
  EXPECT_EQ(s.raft->role(), Role::kFollower);
}

TEST(Raft, LeaderRefusesProposalsPastUncommittedLimit) {
  Single s;
  s.raft->campaign();
  s.drain();
  ASSERT_TRUE(s.raft->propose(std::string(40 << 20, 'a')).ok());
  EXPECT_EQ(s.raft->propose(std::string(30 << 20, 'b')).status().code(),
            absl::StatusCode::kResourceExhausted);
  s.drain();  // durable: committed, the budget is free again
  EXPECT_TRUE(s.raft->propose(std::string(30 << 20, 'b')).ok());
}

TEST(Raft, FaultedReplicaDoesNotCampaign) {
  Single s;
  s.raft->report_storage_fault(1, 0);  // only the state was damaged: nothing to truncate
  s.raft->campaign();
  EXPECT_EQ(s.raft->role(), Role::kFollower);
  for (int i = 0; i < 100; i++) s.raft->tick();
  EXPECT_EQ(s.raft->role(), Role::kFollower);
  s.raft->report_storage_repaired();
  s.raft->campaign();
  EXPECT_EQ(s.raft->role(), Role::kCandidate);
}

// Readies are written in order and synced together: a later Ready may replace an earlier
// one's entries before either is durable. The earlier acknowledgement must then never be
// sent, or the old leader could count entries this replica never stored (found by
// RaftProperties.SafeUnderChaosAndLiveAfter: "node 2 acknowledged offset 6 at term 2 but its
// durable log ends at 2").
TEST(Raft, AcknowledgementOfReplacedEntriesIsDropped) {
  Follower f;
  Raft& raft = f.raft;
  auto append = [](uint64_t from, uint64_t term, uint64_t first, uint64_t n) {
    Message m;
    m.set_type(MSG_APP);
    m.set_from(from);
    m.set_to(2);
    m.set_term(term);
    for (uint64_t i = first; i < first + n; i++) {
      Entry* e = m.add_entries();
      e->set_index(i);
      e->set_count(1);
      e->set_term(term);
      e->set_data("x");
    }
    m.set_leader_last(first + n - 1);
    return m;
  };
  raft.step(append(1, 2, 1, 3));  // leader 1, term 2: entries 1..3
  Ready first = raft.take_ready();
  ASSERT_EQ(first.entries.size(), 3u);
  EXPECT_TRUE(first.messages.empty());  // the acknowledgement waits for durability
  raft.step(append(3, 3, 1, 1));        // leader 3, term 3: entry 1 replaces them
  Ready second = raft.take_ready();
  ASSERT_EQ(second.entries.size(), 1u);
  f.storage.append(second.entries);  // the sync covers both writes: only the second remains
  if (second.hard_state) f.storage.set_hard_state(*second.hard_state);
  raft.persisted(second.id);
  Ready after = raft.take_ready();
  ASSERT_EQ(after.messages.size(), 1u);
  EXPECT_EQ(after.messages[0].to(), 3u);
  EXPECT_EQ(after.messages[0].index(), 1u);
  EXPECT_EQ(after.messages[0].term(), 3u);
}

// step(Message&&) may take the entries instead of copying them: the log gets the same ones.
TEST(Raft, StepByMoveAppendsTheSameEntries) {
  auto follower_entries = [](bool by_move) {
    Follower f;
    Raft& raft = f.raft;
    Message m = app(0, {{1, 2}, {3, 1}});
    for (int i = 0; i < m.entries_size(); i++) {
      m.mutable_entries(i)->set_data(std::string(size_t(40 + i), char('a' + i)));
    }
    if (by_move) {
      raft.step(std::move(m));
    } else {
      raft.step(static_cast<const Message&>(m));
      EXPECT_EQ(m.entries(1).data(), std::string(41, 'b')) << "a const message is left as is";
    }
    return raft.take_ready().entries;
  };
  const std::vector<Entry> copied = follower_entries(false);
  const std::vector<Entry> moved = follower_entries(true);
  ASSERT_EQ(copied.size(), 2u);
  ASSERT_EQ(moved.size(), 2u);
  for (size_t i = 0; i < 2; i++) {
    EXPECT_EQ(moved[i].SerializeAsString(), copied[i].SerializeAsString());
    EXPECT_EQ(moved[i].data(), std::string(40 + i, char('a' + i)));
  }
}

// A recycled Ready only lends its buffer: messages produced before or after the hand-back
// all come out in the next Ready, in order.
TEST(Raft, RecycledReadyLosesNoMessages) {
  Follower f;
  Raft& raft = f.raft;
  auto heartbeat = [](uint64_t from, uint64_t term) {
    Message m;
    m.set_type(MSG_HEARTBEAT);
    m.set_from(from);
    m.set_to(2);
    m.set_term(term);
    return m;
  };
  raft.step(heartbeat(1, 2));
  raft.step(heartbeat(1, 2));
  Ready first = raft.take_ready();
  ASSERT_EQ(first.messages.size(), 2u);
  raft.step(heartbeat(1, 2));  // queued before the hand-back: it stays
  raft.recycle(std::move(first));
  raft.step(heartbeat(1, 2));
  Ready second = raft.take_ready();
  ASSERT_EQ(second.messages.size(), 2u);
  raft.recycle(std::move(second));  // an empty queue takes the buffer
  raft.step(heartbeat(1, 2));
  raft.step(heartbeat(1, 2));
  raft.step(heartbeat(1, 2));
  Ready third = raft.take_ready();
  ASSERT_EQ(third.messages.size(), 3u);
  for (const Message& m : third.messages) {
    EXPECT_EQ(m.type(), MSG_HEARTBEAT_RESP);
    EXPECT_EQ(m.to(), 1u);
  }
}

}  // namespace
}  // namespace keel::raft
