// The pure Raft core of a Keel partition (docs/raft.md). No IO, no clocks, no threads: the
// caller feeds it messages (Step), ticks (Tick), proposals (Propose), leadership transfers and
// storage-fault reports, and drains its output as Ready batches:
//
//   while (raft.has_ready()) {
//     Ready rd = raft.take_ready();
//     1. if rd.snapshot: reset the log to start after rd.snapshot->index();
//        if rd.entries: drop every offset >= rd.entries[0].index(), append rd.entries;
//        if rd.hard_state: write it. (Writes may be issued asynchronously, in Ready order, and
//        must be readable through the LogStorage at once; durability comes later.)
//     2. send rd.messages (they never depend on anything not yet durable).
//     3. apply rd.committed_entries (committed and durable here).
//     4. once everything written for Ready rd.id and all earlier ones is durable (sync
//        done), call raft.persisted(rd.id). Group commit: one call may cover many Readies.
//   }
//
// Messages that promise durable state (append acknowledgements, vote grants, the
// candidate's vote for itself) are held inside the core and released only by persisted().
//
// Indexes are Kafka offsets: an entry covers [index, index + count - 1].
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "env/random.h"
#include "raft/log_storage.h"
#include "raft/progress.h"
#include "raft/raft.pb.h"
#include "raft/raft_log.h"

namespace keel::raft {

inline constexpr uint64_t kNone = 0;  // no node (ids are >= 1)
inline constexpr uint32_t kEntryCountMax = 1u << 20;
inline constexpr size_t kVotersMax = 7;
// Bounds on what a message may carry (docs/raft.md, "Validating messages"). Terms are stamped
// into a batch's partitionLeaderEpoch (int32): a replica never enters a term beyond it, and
// refuses to campaign there. Offsets are Kafka offsets (int64); the bound leaves room for
// index + count arithmetic without overflow.
inline constexpr uint64_t kTermMax = 0x7FFFFFFF;
inline constexpr uint64_t kIndexMax = uint64_t{1} << 62;

struct Config {
  uint64_t id = kNone;
  // Voters when the storage holds none (a fresh replica).
  std::vector<uint64_t> voters;
  // A follower campaigns after a random [election_tick, 2 * election_tick - 1] ticks without
  // hearing from a leader; a leader sends heartbeats every heartbeat_tick ticks.
  int election_tick = 10;
  int heartbeat_tick = 1;
  bool pre_vote = true;
  bool check_quorum = true;
  // Flow control per follower: data bytes per AppendEntries, messages and bytes in flight.
  uint64_t max_msg_bytes = 1 << 20;
  uint32_t max_inflight_msgs = 256;
  uint64_t max_inflight_bytes = 32 << 20;
  // Committed entries per Ready, in data bytes (at least one entry).
  uint64_t max_apply_bytes = 8 << 20;
  // Whether Ready::committed_entries carry their data. Without it they come from
  // LogStorage::entries_without_data (same entries, same limit): for a caller that applies
  // by offset and term only.
  bool committed_data = true;
  // Data bytes a leader accepts beyond its commit index; propose() fails with
  // ResourceExhausted past it (back-pressure when followers or the disk fall behind).
  uint64_t max_uncommitted_bytes = 64 << 20;
  // Randomized election timeouts come from here only. Required; must outlive the core.
  env::Random* random = nullptr;
  // Optional event log ("became leader at term 2"), for tests and traces.
  std::function<void(std::string_view)> logger;
};

enum class Role { kFollower, kPreCandidate, kCandidate, kLeader };
std::string_view role_name(Role r);

struct Ready {
  uint64_t id = 0;
  // Install first: the log now starts after snapshot->index() (entries before were removed).
  std::optional<SnapshotMeta> snapshot;
  // Append, after dropping every offset >= entries[0].index().
  std::vector<Entry> entries;
  // Write if set (term, vote, commit).
  std::optional<HardState> hard_state;
  // Send now.
  std::vector<Message> messages;
  // Committed and locally durable: apply (for a partition: advance the high watermark).
  std::vector<Entry> committed_entries;
  // Set when role or leader changed since the previous Ready.
  std::optional<Role> role;
  std::optional<uint64_t> leader;
  // Whether the core waits for persisted(id) (something to write, or messages held on it).
  bool must_persist = false;
};

struct ProposeResult {
  uint64_t index = 0;  // base offset assigned
  uint64_t term = 0;
};

// Structural checks of a message from the network, independent of any replica's state:
// known type; sender and recipient set and different; term in [1, kTermMax]; offsets at most
// kIndexMax; log_term, hint_term and the snapshot term not above the term; entries only on
// MsgApp, contiguous from index + 1, count in [1, kEntryCountMax], terms in [log_term, term]
// and never decreasing; a snapshot point past 0 has a term. step() drops (and logs) a message
// that fails them, and also one that contradicts its own log (see Raft::step).
[[nodiscard]] absl::Status validate_message(const Message& m);

class Raft {
 public:
  // Starts from the durable state in `storage` (a fresh or a restarted replica). `storage`
  // must outlive the core and reflect every Ready written by the caller.
  Raft(Config config, const LogStorage& storage);

  // Input. Any message is accepted: one that is invalid (validate_message), not for this
  // replica, from a non-voter or from itself, or that contradicts this replica's log in a way
  // no correct peer can (entry boundaries that differ at a matching (offset, term), a commit
  // or an acknowledgement inside an entry, another voter set) is dropped and logged, before
  // it changes anything.
  void step(const Message& m);
  // The same, but may move the entries out of `m` instead of copying them.
  void step(Message&& m);
  void tick();
  // Leader only: appends an entry covering `count` offsets. The entry's offsets and term are
  // next_index() and term() read just before (stamp them into the batch first).
  // FailedPrecondition when not leader, Unavailable during a leadership transfer,
  // ResourceExhausted when max_uncommitted_bytes are already waiting for commitment.
  [[nodiscard]] absl::StatusOr<ProposeResult> propose(std::string data, uint32_t count = 1);
  // Starts an election now (pre-vote first if configured), as if the timeout had fired.
  void campaign();
  // Leader only: hands leadership to `to` once its log is caught up (TimeoutNow).
  void transfer_leadership(uint64_t to);
  // The caller cannot reach `to` (connection down): stop streaming to it optimistically.
  void report_unreachable(uint64_t to);
  // Storage-fault rule (docs/raft.md): the caller found offsets [lo, hi] of its durable log
  // damaged and already removed every offset >= lo from its log (lo is an entry start, or
  // last_index() + 1 when only the hard state was damaged). Until repaired, this replica
  // does not vote (not even pre-vote), does not campaign and does not lead.
  void report_storage_fault(uint64_t lo, uint64_t hi);
  // The caller repaired the replica by other means; normally the core clears the fault
  // itself once its durable log holds a current leader's log through repair_through().
  void report_storage_repaired();

  // Output.
  bool has_ready() const;
  Ready take_ready();
  // Everything written for Readies with id <= ready_id is durable.
  void persisted(uint64_t ready_id);
  // Optional: takes back a Ready the caller is done with, so that later Readies reuse its
  // message buffer instead of allocating one each.
  void recycle(Ready&& rd);

  // Introspection.
  uint64_t id() const { return id_; }
  uint64_t term() const { return term_; }
  uint64_t vote() const { return vote_; }
  uint64_t leader() const { return lead_; }
  Role role() const { return role_; }
  uint64_t committed() const { return log_.committed(); }
  uint64_t applied() const { return log_.applied(); }
  uint64_t first_index() const { return log_.first_index(); }
  uint64_t last_index() const { return log_.last_index(); }
  uint64_t next_index() const { return log_.last_index() + 1; }
  uint64_t durable_last() const { return log_.durable_last(); }
  std::optional<uint64_t> term_at(uint64_t offset) const { return log_.term(offset); }
  // Every entry of the log (tests and checkers; reads storage).
  std::vector<Entry> log_entries() const;
  bool storage_faulted() const { return faulted_; }
  uint64_t repair_through() const { return repair_through_; }
  std::optional<uint64_t> repair_target() const { return repair_target_; }
  const std::vector<uint64_t>& voters() const { return voters_; }
  // The leader's view of a follower (nullptr unless leader).
  const Progress* progress(uint64_t peer) const;
  uint64_t lead_transferee() const { return lead_transferee_; }

 private:
  // Role changes.
  void become_follower(uint64_t term, uint64_t lead);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void reset(uint64_t term);
  void hup(bool transfer);
  void start_election(bool pre, bool transfer);

  // Message handling.
  void step_valid(const Message& m);
  absl::Status check_against_log(const Message& m) const;
  bool is_entry_end(uint64_t offset) const;
  bool step_term(const Message& m);
  void handle_vote_request(const Message& m);
  void step_leader(const Message& m);
  void step_candidate(const Message& m);
  void step_follower(const Message& m);
  void handle_append(const Message& m);
  std::vector<Entry> take_entries(const Message& m);
  void handle_heartbeat(const Message& m);
  void handle_snapshot(const Message& m);
  void handle_append_response(const Message& m, Progress& pr);
  void handle_vote_response(const Message& m);

  // Leader machinery.
  bool send_append(uint64_t to);
  void send_append_loop(uint64_t to);
  // To every follower (send_append_loop). send_if_empty=false (a commit advance): only to
  // followers with entries to send, as etcd's maybeSendAppend(to, sendIfEmpty=false).
  void bcast_append(bool send_if_empty = true);
  void bcast_heartbeat();
  bool maybe_commit();
  bool quorum_active();
  void abort_transfer();
  void append_entries(std::vector<Entry> entries);
  void tick_election();
  void tick_heartbeat();

  // Output plumbing.
  // By rvalue reference: the message is moved once, into the output queue.
  void send(Message&& m);
  void send_after_persist(Message&& m);
  void release(Message&& m);
  HardState hard_state() const;
  bool hard_state_changed() const;  // since the last Ready
  void maybe_clear_fault();
  void note_leader_last(const Message& m);
  void drop_acks_from(uint64_t from);
  uint64_t quorum() const { return voters_.size() / 2 + 1; }
  bool is_voter(uint64_t id) const;
  void logf(std::string_view text) const;

  Config cfg_;
  const uint64_t id_;
  // The message step(Message&&) is handling (its entries may be moved out), or null.
  Message* movable_ = nullptr;
  env::Random& random_;
  RaftLog log_;
  std::vector<uint64_t> voters_;  // sorted

  uint64_t term_ = 0;
  uint64_t vote_ = kNone;
  uint64_t lead_ = kNone;
  Role role_ = Role::kFollower;
  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_timeout_ = 0;
  std::map<uint64_t, bool> votes_;
  std::map<uint64_t, Progress> progress_;
  uint64_t lead_transferee_ = kNone;
  // Leader: (last offset, data bytes) of its proposals not yet committed, oldest first.
  std::deque<std::pair<uint64_t, uint64_t>> uncommitted_;
  uint64_t uncommitted_bytes_ = 0;

  bool faulted_ = false;
  uint64_t repair_through_ = 0;
  // Storage fault: the current leader's last offset in its first message after the fault.
  std::optional<uint64_t> repair_target_;
  LogPosition leader_matched_;  // last position a current-term leader's append matched

  // Output.
  bool bcast_pending_ = false;  // proposals appended since the last broadcast
  std::vector<Message> msgs_;   // send at the next Ready
  std::vector<Message> held_;   // send once the next Ready is durable
  struct InFlight {
    uint64_t id = 0;
    std::optional<LogPosition> last_entry;
    std::optional<uint64_t> snapshot_index;
    std::vector<Message> held;
  };
  std::deque<InFlight> in_flight_;
  uint64_t next_ready_id_ = 1;
  HardState sent_hard_state_;
  Role sent_role_ = Role::kFollower;
  uint64_t sent_lead_ = kNone;
};

}  // namespace keel::raft
