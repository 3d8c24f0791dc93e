// Fuzzes the Raft core's handling of peer messages (raft/raft.h): arbitrary bytes parsed as
// raft::Message and stepped into node 1 of a 3-voter group, built in one of several states
// (fresh follower, follower with a log, follower whose log starts after a snapshot point,
// pre-candidate or candidate, leader with followers in probe and replicate, follower with
// an unrepaired storage fault), interleaved with ticks, proposals and Readies synced at once
// or late. A frame's CRC only protects against accidents: a buggy or hostile peer can send
// any well-formed protobuf, so the core must never reach a CHECK or undefined behaviour on
// what it is sent; invalid messages are dropped (docs/raft.md, "Validating messages").
//
// After every operation the harness checks what a hostile peer must never be able to break:
// the commit index lies in the log and ends an entry; the term stays within kTermMax and the
// voters stay the same; entries handed out as committed are
// contiguous, each exactly once; a committed entry is never replaced; the log is contiguous
// with terms that never decrease; the term never decreases; every message the core sends is
// one validate_message accepts.
//
// Input: u8 setup | operations. An operation is u8 code, then for a message a u8 length and
// that many bytes of raft.Message. code & 7: 0-3 step a message; 4 tick (code >> 3) + 1
// times; 5 process Readies, syncing at once; 6 process Readies, syncing later; 7 other
// (propose, campaign, sync what is pending, report a peer unreachable, transfer leadership).
// For messages, code bit 3 sets to = 1, bit 4 sets from = 2 or 3 (bit 5), bit 6 sets the term
// to the core's term plus (term % 3): so most inputs reach the interesting paths, and the
// raw fields remain reachable with the bits clear.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <vector>

#include "base/check.h"
#include "env/random.h"
#include "raft/log_storage.h"
#include "raft/raft.h"

namespace {

using namespace keel;
using namespace keel::raft;

constexpr uint64_t kSelf = 1;

Entry make_entry(uint64_t index, uint32_t count, uint64_t term, EntryType type = ENTRY_NORMAL) {
  Entry e;
  e.set_index(index);
  e.set_count(count);
  e.set_term(term);
  e.set_type(type);
  if (type == ENTRY_NORMAL) e.set_data(std::string(count, 'x'));
  return e;
}

uint64_t end_of(const Entry& e) { return e.index() + e.count() - 1; }

class Harness {
 public:
  explicit Harness(uint8_t setup) : storage_({1, 2, 3}), random_(setup) {
    const int state = setup % 6;
    if (state != 0) {
      // [1]@1 no-op, [2..4]@1, [5]@2 no-op, [6..10]@3: a log some peers disagree with.
      storage_.append({make_entry(1, 1, 1, ENTRY_NOOP), make_entry(2, 3, 1),
                       make_entry(5, 1, 2, ENTRY_NOOP), make_entry(6, 5, 3)});
      HardState hs;
      hs.set_term(3);
      hs.set_vote(2);
      hs.set_commit(5);
      storage_.set_hard_state(hs);
      if (state == 2) storage_.compact(4);
    }
    Config c;
    c.id = kSelf;
    c.voters = {1, 2, 3};
    c.election_tick = 10;
    c.heartbeat_tick = 1;
    c.pre_vote = (setup & 8) != 0;
    c.check_quorum = (setup & 16) != 0;
    c.max_msg_bytes = 4;  // several appends per catch-up
    c.max_inflight_msgs = 3;
    c.max_inflight_bytes = 64;
    c.max_apply_bytes = 8;
    c.random = &random_;
    // KEEL_FUZZ_LOG=1 prints the core's event log (to debug one input).
    if (std::getenv("KEEL_FUZZ_LOG") != nullptr) {
      c.logger = [](std::string_view text) {
        std::fprintf(stderr, "%.*s\n", int(text.size()), text.data());
      };
    }
    raft_ = std::make_unique<Raft>(c, storage_);
    applied_ = raft_->applied();
    term_ = raft_->term();
    drain(true);

    if (state == 3 || state == 4) {
      raft_->campaign();
      drain(true);
      if (raft_->role() == Role::kPreCandidate) {
        step_fixed(MSG_PRE_VOTE_RESP, 2, raft_->term() + 1);
        drain(true);
      }
      if (state == 4 && raft_->role() == Role::kCandidate) {
        step_fixed(MSG_VOTE_RESP, 2, raft_->term());
        drain(true);
        KEEL_CHECK(raft_->role() == Role::kLeader);
        // Follower 2 has everything (replicate); 3 has not answered (probe).
        Message ack;
        ack.set_type(MSG_APP_RESP);
        ack.set_index(raft_->last_index());
        step_fixed(ack, 2, raft_->term());
        drain(true);
      }
    }
    if (state == 5) {
      storage_.truncate_from(6);
      raft_->report_storage_fault(6, 10);
      drain(true);
    }
    check();
  }

  void step(Message m, uint8_t code) {
    if (code & 8) m.set_to(kSelf);
    if (code & 16) m.set_from((code & 32) ? 3 : 2);
    if (code & 64) m.set_term(raft_->term() + m.term() % 3);
    // The caller's routing: the replica steps only messages addressed to it.
    if (m.to() != kSelf) return;
    raft_->step(m);
    check();
  }

  void op(uint8_t code, const uint8_t*& p, const uint8_t* end) {
    switch (code & 7) {
      case 0:
      case 1:
      case 2:
      case 3: {
        if (p == end) return;
        const size_t want = *p++;  // then what is left (one statement would be unsequenced)
        const size_t n = std::min(want, size_t(end - p));
        Message m;
        const bool parsed = m.ParseFromArray(p, int(n));
        p += n;
        if (parsed) step(m, code);
        return;
      }
      case 4:
        for (int i = 0; i <= (code >> 3); i++) raft_->tick();
        break;
      case 5:
        drain(true);
        break;
      case 6:
        drain(false);
        break;
      case 7:
        switch ((code >> 3) % 5) {
          case 0:
            (void)raft_->propose(std::string((code >> 6) + 1, 'p'), (code >> 6) + 1);
            break;
          case 1:
            raft_->campaign();
            break;
          case 2:
            sync_pending();
            break;
          case 3:
            raft_->report_unreachable(2 + ((code >> 6) & 1));
            break;
          case 4:
            raft_->transfer_leadership(2 + ((code >> 6) & 1));
            break;
        }
        break;
    }
    check();
  }

  void finish() {
    drain(true);
    sync_pending();
    drain(true);
  }

 private:
  void step_fixed(MessageType type, uint64_t from, uint64_t term) {
    Message m;
    m.set_type(type);
    step_fixed(m, from, term);
  }
  void step_fixed(Message m, uint64_t from, uint64_t term) {
    m.set_from(from);
    m.set_to(kSelf);
    m.set_term(term);
    raft_->step(m);
  }

  void drain(bool sync) {
    for (int guard = 0; raft_->has_ready(); guard++) {
      KEEL_CHECK(guard < 1000, "Ready loop does not end");
      Ready rd = raft_->take_ready();
      if (rd.snapshot) {
        storage_.apply_snapshot(*rd.snapshot);
        applied_ = rd.snapshot->index();
      }
      if (!rd.entries.empty()) storage_.append(rd.entries);
      if (rd.hard_state) storage_.set_hard_state(*rd.hard_state);
      for (const Message& m : rd.messages) {
        auto st = validate_message(m);
        // A rejection at term 0 (a fresh replica) is dropped by the receiver: harmless.
        const bool term0_reject = m.term() == 0 && m.reject();
        KEEL_CHECK(st.ok() || term0_reject, "sent an invalid message: {}", st.ToString());
        KEEL_CHECK(m.from() == kSelf && m.to() != kSelf);
      }
      for (const Entry& e : rd.committed_entries) {
        KEEL_CHECK(e.index() == applied_ + 1, "applied {} then {}", applied_, e.index());
        KEEL_CHECK(e.count() >= 1);
        applied_ = end_of(e);
        auto [it, fresh] = committed_.emplace(e.index(), std::make_pair(e.count(), e.term()));
        KEEL_CHECK(fresh || it->second == std::make_pair(e.count(), e.term()),
                   "committed entry at {} changed", e.index());
      }
      if (rd.must_persist) {
        if (sync) {
          raft_->persisted(rd.id);
        } else {
          pending_ = rd.id;
        }
      }
      check();
    }
  }

  void sync_pending() {
    if (pending_ == 0) return;
    raft_->persisted(pending_);
    pending_ = 0;
  }

  void check() {
    const Raft& r = *raft_;
    KEEL_CHECK(r.term() >= term_, "term went back from {} to {}", term_, r.term());
    KEEL_CHECK(r.term() <= kTermMax, "term {} beyond the Kafka epoch range", r.term());
    KEEL_CHECK(storage_.snapshot().conf().voters_size() == 3, "voters changed");
    term_ = r.term();
    const uint64_t first = r.first_index();
    const uint64_t last = r.last_index();
    KEEL_CHECK(first >= 1 && last + 1 >= first, "log [{}, {}]", first, last);
    KEEL_CHECK(r.committed() + 1 >= first && r.committed() <= last, "commit {} outside [{}, {}]",
               r.committed(), first, last);
    // Walk the log (small: the harness keeps it so) and check its shape.
    uint64_t next = first;
    uint64_t prev_term = *r.term_at(first - 1);
    bool commit_is_end = r.committed() + 1 == first;
    for (const Entry& e : r.log_entries()) {
      KEEL_CHECK(e.index() == next && e.count() >= 1, "entry {}+{} expected at {}", e.index(),
                 e.count(), next);
      KEEL_CHECK(e.term() >= prev_term && e.term() <= r.term(), "entry {}@{} after term {}",
                 e.index(), e.term(), prev_term);
      prev_term = e.term();
      next = end_of(e) + 1;
      if (end_of(e) == r.committed()) commit_is_end = true;
      auto it = committed_.find(e.index());
      if (it != committed_.end()) {
        KEEL_CHECK(it->second == std::make_pair(e.count(), e.term()),
                   "committed entry at {} replaced", e.index());
      }
    }
    KEEL_CHECK(next == last + 1);
    KEEL_CHECK(commit_is_end, "commit {} is not the end of an entry", r.committed());
  }

  MemoryStorage storage_;
  env::Random random_;
  std::unique_ptr<Raft> raft_;
  uint64_t applied_ = 0;
  uint64_t term_ = 0;
  uint64_t pending_ = 0;
  std::map<uint64_t, std::pair<uint32_t, uint64_t>> committed_;  // index -> (count, term)
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 4096) return 0;
  Harness h(data[0]);
  const uint8_t* p = data + 1;
  const uint8_t* end = data + size;
  while (p < end) {
    const uint8_t code = *p++;
    h.op(code, p, end);
  }
  h.finish();
  return 0;
}
