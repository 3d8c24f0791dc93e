#include "raft/raft.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "base/check.h"
#include "raft/describe.h"
#include "raft/planted.h"

namespace keel::raft {
namespace {

uint64_t end_of(const Entry& e) { return e.index() + e.count() - 1; }

env::Random& checked_random(env::Random* r) {
  KEEL_CHECK(r != nullptr, "Config.random is required");
  return *r;
}

}  // namespace

std::string_view role_name(Role r) {
  switch (r) {
    case Role::kFollower:
      return "StateFollower";
    case Role::kPreCandidate:
      return "StatePreCandidate";
    case Role::kCandidate:
      return "StateCandidate";
    case Role::kLeader:
      return "StateLeader";
  }
  return "?";
}

Raft::Raft(Config config, const LogStorage& storage)
    : cfg_(std::move(config)), id_(cfg_.id), random_(checked_random(cfg_.random)), log_(storage) {
  KEEL_CHECK(id_ != kNone);
  KEEL_CHECK(cfg_.heartbeat_tick > 0 && cfg_.heartbeat_tick < cfg_.election_tick,
             "heartbeat_tick {} election_tick {}", cfg_.heartbeat_tick, cfg_.election_tick);
  KEEL_CHECK(cfg_.max_inflight_msgs > 0 && cfg_.max_msg_bytes > 0);
  const SnapshotMeta snap = storage.snapshot();
  const auto& stored = snap.conf().voters();
  voters_ = stored.empty() ? cfg_.voters : std::vector<uint64_t>(stored.begin(), stored.end());
  std::sort(voters_.begin(), voters_.end());
  KEEL_CHECK(!voters_.empty() && voters_.size() <= kVotersMax, "{} voters", voters_.size());
  KEEL_CHECK(std::adjacent_find(voters_.begin(), voters_.end()) == voters_.end());
  KEEL_CHECK(voters_.front() != kNone);

  const HardState hs = storage.hard_state();
  sent_hard_state_ = hs;
  term_ = hs.term();
  vote_ = hs.vote();
  // A crash may keep entries whose hard state write was lost: never trail the log's term.
  if (log_.last_term() > term_) {
    term_ = log_.last_term();
    vote_ = kNone;
  }
  become_follower(term_, kNone);
  sent_role_ = role_;
  sent_lead_ = lead_;
}

// ---------------------------------------------------------------------------------------
// Role changes.

void Raft::reset(uint64_t term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNone;
  }
  lead_ = kNone;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  randomized_timeout_ = cfg_.election_tick + int(random_.uniform(uint64_t(cfg_.election_tick)));
  abort_transfer();
  votes_.clear();
  progress_.clear();
  leader_matched_ = {};
  repair_target_.reset();
  uncommitted_.clear();
  uncommitted_bytes_ = 0;
}

void Raft::become_follower(uint64_t term, uint64_t lead) {
  reset(term);
  lead_ = lead;
  role_ = Role::kFollower;
  logf(fmt::format("became follower at term {}", term_));
}

void Raft::become_pre_candidate() {
  KEEL_CHECK(role_ != Role::kLeader);
  // A pre-vote changes neither term nor vote.
  votes_.clear();
  progress_.clear();
  lead_ = kNone;
  role_ = Role::kPreCandidate;
  logf(fmt::format("became pre-candidate at term {}", term_));
}

void Raft::become_candidate() {
  KEEL_CHECK(role_ != Role::kLeader);
  reset(term_ + 1);
  vote_ = id_;
  role_ = Role::kCandidate;
  logf(fmt::format("became candidate at term {}", term_));
}

void Raft::become_leader() {
  KEEL_CHECK(role_ == Role::kCandidate);
  KEEL_CHECK(!faulted_);
  reset(term_);
  lead_ = id_;
  role_ = Role::kLeader;
  for (uint64_t v : voters_) {
    auto [it, _] = progress_.emplace(
        v, Progress(log_.last_index() + 1, cfg_.max_inflight_msgs, cfg_.max_inflight_bytes));
    if (v == id_) {
      it->second.match = log_.durable_last();
      it->second.recent_active = true;
      it->second.become_replicate();
    }
  }
  logf(fmt::format("became leader at term {}", term_));
  // The no-op of the term: committing it commits every earlier entry (only current-term
  // entries are committed by counting replicas).
  Entry noop;
  noop.set_count(1);
  noop.set_type(ENTRY_NOOP);
  append_entries({noop});
}

void Raft::hup(bool transfer) {
  if (role_ == Role::kLeader) return;
  if (faulted_) {
    logf("cannot campaign: storage fault not repaired");
    return;
  }
  if (!is_voter(id_)) return;
  if (term_ >= kTermMax) {
    logf(fmt::format("cannot campaign: term {} is the last one", term_));
    return;
  }
  start_election(cfg_.pre_vote && !transfer, transfer);
}

void Raft::start_election(bool pre, bool transfer) {
  uint64_t vote_term;
  if (pre) {
    become_pre_candidate();
    vote_term = term_ + 1;
    votes_[id_] = true;  // a pre-vote promises nothing: count it now
  } else {
    become_candidate();
    vote_term = term_;
    // Our own vote counts once it is durable, like any other.
    Message self;
    self.set_type(MSG_VOTE_RESP);
    self.set_to(id_);
    send_after_persist(std::move(self));
  }
  if (pre && votes_.size() >= quorum()) {  // a group of one
    start_election(false, false);
    return;
  }
  for (uint64_t v : voters_) {
    if (v == id_) continue;
    Message m;
    m.set_type(pre ? MSG_PRE_VOTE : MSG_VOTE);
    m.set_to(v);
    m.set_term(vote_term);
    m.set_index(log_.last_index());
    m.set_log_term(log_.last_term());
    m.set_transfer(transfer);
    logf(fmt::format("[logterm: {}, index: {}] sent {} request to {} at term {}", m.log_term(),
                     m.index(), pre ? "MsgPreVote" : "MsgVote", v, term_));
    send(std::move(m));
  }
}

// ---------------------------------------------------------------------------------------
// Input.

void Raft::campaign() { hup(false); }

void Raft::tick() {
  if (role_ == Role::kLeader) {
    tick_heartbeat();
  } else {
    tick_election();
  }
}

void Raft::tick_election() {
  election_elapsed_++;
  if (election_elapsed_ >= randomized_timeout_ && is_voter(id_) && !faulted_) {
    election_elapsed_ = 0;
    hup(false);
  }
}

void Raft::tick_heartbeat() {
  heartbeat_elapsed_++;
  election_elapsed_++;
  if (election_elapsed_ >= cfg_.election_tick) {
    election_elapsed_ = 0;
    if (cfg_.check_quorum) {
      if (!quorum_active()) {
        logf("stepped down to follower since quorum is not active");
        become_follower(term_, kNone);
        return;
      }
      for (auto& [peer, pr] : progress_) pr.recent_active = (peer == id_);
    }
    if (lead_transferee_ != kNone) abort_transfer();
  }
  if (heartbeat_elapsed_ >= cfg_.heartbeat_tick) {
    heartbeat_elapsed_ = 0;
    bcast_heartbeat();
  }
}

absl::StatusOr<ProposeResult> Raft::propose(std::string data, uint32_t count) {
  if (role_ != Role::kLeader) return absl::FailedPreconditionError("not the leader");
  if (lead_transferee_ != kNone) {
    return absl::UnavailableError("leadership transfer in progress");
  }
  if (count == 0 || count > kEntryCountMax) {
    return absl::InvalidArgumentError(fmt::format("entry count {} out of range", count));
  }
  if (!uncommitted_.empty() && uncommitted_bytes_ + data.size() > cfg_.max_uncommitted_bytes) {
    return absl::ResourceExhaustedError(
        fmt::format("{} bytes waiting for commitment", uncommitted_bytes_));
  }
  const ProposeResult result{log_.last_index() + 1, term_};
  uncommitted_.emplace_back(result.index + count - 1, data.size());
  uncommitted_bytes_ += data.size();
  Entry e;
  e.set_count(count);
  e.set_type(ENTRY_NORMAL);
  e.set_data(std::move(data));
  std::vector<Entry> entries;
  entries.push_back(std::move(e));  // not a braced list: that would copy the data
  append_entries(std::move(entries));
  // Batching: the appends go out at the next take_ready(), so the proposals made in between
  // travel together (up to max_msg_bytes per message).
  bcast_pending_ = true;
  return result;
}

void Raft::append_entries(std::vector<Entry> entries) {
  uint64_t next = log_.last_index() + 1;
  for (Entry& e : entries) {
    e.set_index(next);
    e.set_term(term_);
    next += e.count();
  }
  log_.append(std::move(entries));
  // The leader's own match advances only when these entries are durable (persisted()).
}

void Raft::transfer_leadership(uint64_t to) {
  if (role_ != Role::kLeader) return;
  if (to == id_ || !is_voter(to)) return;
  if (lead_transferee_ == to) return;
  abort_transfer();
  logf(fmt::format("starting leadership transfer to {}", to));
  lead_transferee_ = to;
  election_elapsed_ = 0;  // the transfer must finish within an election timeout
  const Progress& pr = progress_.at(to);
  if (pr.match == log_.last_index()) {
    Message m;
    m.set_type(MSG_TIMEOUT_NOW);
    m.set_to(to);
    send(std::move(m));
  } else {
    send_append_loop(to);
  }
}

void Raft::abort_transfer() { lead_transferee_ = kNone; }

void Raft::report_unreachable(uint64_t to) {
  if (role_ != Role::kLeader) return;
  auto it = progress_.find(to);
  if (it == progress_.end()) return;
  if (it->second.state != Progress::State::kProbe) it->second.become_probe();
}

void Raft::report_storage_fault(uint64_t lo, uint64_t hi) {
  KEEL_CHECK(lo <= hi + 1 && lo <= log_.last_index() + 1, "fault [{}, {}] last {}", lo, hi,
             log_.last_index());
  // Whatever this replica made durable may have been acknowledged: it must hold all of it
  // again, from a leader, before its vote counts.
  repair_through_ = std::max({repair_through_, hi, log_.durable_high()});
  faulted_ = true;
  log_.truncate_damaged(lo);
  drop_acks_from(log_.take_cut());
  logf(fmt::format("storage fault at [{}, {}]: abstaining until repaired through {}", lo, hi,
                   repair_through_));
  if (role_ != Role::kFollower) {
    become_follower(term_, kNone);
  }
  leader_matched_ = {};
  repair_target_.reset();  // only a leader's word from after the fault counts
}

void Raft::report_storage_repaired() {
  if (!faulted_) return;
  faulted_ = false;
  logf("storage repaired (reported)");
}

void Raft::note_leader_last(const Message& m) {
  // The first word from the current leader after the fault: its log then holds every entry
  // this replica may have helped commit (docs/raft.md, "Storage faults").
  if (faulted_ && !repair_target_ && m.from() == lead_) repair_target_ = m.leader_last();
}

void Raft::maybe_clear_fault() {
  if (!faulted_ || role_ != Role::kFollower || lead_ == kNone) return;
  // Either bound suffices: everything this replica may have acknowledged, or the current
  // leader's whole log as of its first message after the fault.
  const uint64_t through = std::min(repair_through_, repair_target_.value_or(repair_through_));
  if (leader_matched_.index < through) return;
  if (log_.durable_last() < through) return;
  if (log_.term(leader_matched_.index) != leader_matched_.term) return;
  faulted_ = false;
  logf(fmt::format("storage repaired through {} from leader {} at term {}", through, lead_, term_));
}

// ---------------------------------------------------------------------------------------
// Messages.

absl::Status validate_message(const Message& m) {
  auto bad = [](std::string what) { return absl::InvalidArgumentError(std::move(what)); };
  if (m.type() <= MSG_UNKNOWN || m.type() > MSG_TIMEOUT_NOW) {
    return bad(fmt::format("unknown message type {}", int(m.type())));
  }
  if (m.from() == kNone || m.to() == kNone || m.from() == m.to()) {
    return bad("bad sender or recipient");
  }
  if (m.term() == 0) return bad("term 0");
  if (m.term() > kTermMax) return bad(fmt::format("term {} beyond {}", m.term(), kTermMax));
  if (m.log_term() > m.term() || m.hint_term() > m.term()) {
    return bad(fmt::format("log term {} or hint term {} above term {}", m.log_term(), m.hint_term(),
                           m.term()));
  }
  if (m.index() > kIndexMax || m.commit() > kIndexMax || m.reject_hint() > kIndexMax ||
      m.leader_last() > kIndexMax) {
    return bad("offset out of range");
  }
  if (m.has_snapshot()) {
    const SnapshotMeta& s = m.snapshot();
    if (s.index() > kIndexMax || s.term() > m.term() || (s.index() > 0 && s.term() == 0)) {
      return bad(fmt::format("bad snapshot point {}@{}", s.index(), s.term()));
    }
  }
  if (m.entries_size() > 0 && m.type() != MSG_APP) {
    return bad("entries on a message other than MsgApp");
  }
  uint64_t next = m.index() + 1;
  uint64_t term = m.log_term();
  for (const Entry& e : m.entries()) {
    if (e.index() != next || e.count() == 0 || e.count() > kEntryCountMax || e.term() > m.term() ||
        e.term() == 0 || e.term() < term || e.index() + e.count() - 1 > kIndexMax) {
      return bad(fmt::format("bad entry {}+{}@{} after {}@{}", e.index(), e.count(), e.term(),
                             next - 1, term));
    }
    next = e.index() + e.count();
    term = e.term();
  }
  if (m.type() == MSG_APP && m.leader_last() < next - 1) {
    return bad(
        fmt::format("leader's last {} before its MsgApp's end {}", m.leader_last(), next - 1));
  }
  return absl::OkStatus();
}

void Raft::step(const Message& m) {
  absl::Status s = validate_message(m);
  if (s.ok() && m.to() != id_) s = absl::InvalidArgumentError(fmt::format("not for {}", id_));
  if (s.ok() && !is_voter(m.from())) s = absl::InvalidArgumentError("sender is not a voter");
  if (s.ok()) s = check_against_log(m);
  if (!s.ok()) {
    logf(fmt::format("dropped invalid {} from {}: {}", message_type_name(m.type()), m.from(),
                     std::string(s.message())));
    return;
  }
  step_valid(m);
}

void Raft::step(Message&& m) {
  movable_ = &m;
  step(static_cast<const Message&>(m));
  movable_ = nullptr;
}

bool Raft::is_entry_end(uint64_t offset) const {
  // Requires first_index() - 1 <= offset <= last_index().
  return offset == log_.last_index() || log_.entry_start(offset + 1) == offset + 1;
}

// What no correct peer can send, given this replica's log. Log matching (docs/raft.md,
// "Offsets are indexes"): the same (offset, term) on two logs means the same entry with the
// same boundaries, and whatever matches ends where an entry ends.
absl::Status Raft::check_against_log(const Message& m) const {
  auto bad = [](std::string what) { return absl::InvalidArgumentError(std::move(what)); };
  const uint64_t committed = log_.committed();
  const uint64_t last = log_.last_index();
  switch (m.type()) {
    case MSG_APP: {
      if (m.index() < committed || !log_.match_term(m.index(), m.log_term())) break;
      if (!is_entry_end(m.index())) return bad(fmt::format("prev {} inside an entry", m.index()));
      // The new commit, min(commit, last new offset), must end an entry of the log we will
      // have: ours up to prev, then the message's entries.
      const uint64_t last_new =
          m.entries().empty() ? m.index() : end_of(m.entries(m.entries_size() - 1));
      const uint64_t c = std::min(m.commit(), last_new);
      bool commit_ok = c <= committed || (c <= m.index() && is_entry_end(c));
      bool matching = true;
      for (const Entry& e : m.entries()) {
        const uint64_t end = end_of(e);
        if (end == c) commit_ok = true;
        matching = matching && log_.match_term(e.index(), e.term());  // else new or conflicting
        if (matching && (end > last || log_.entry_start(end) != e.index() || !is_entry_end(end))) {
          return bad(fmt::format("entry {}+{}@{} matches the term of another entry", e.index(),
                                 e.count(), e.term()));
        }
      }
      if (!commit_ok) return bad(fmt::format("commit {} inside an entry", c));
      break;
    }
    case MSG_HEARTBEAT: {
      const uint64_t c = std::min(m.commit(), last);
      if (c > committed && !is_entry_end(c))
        return bad(fmt::format("commit {} inside an entry", c));
      break;
    }
    case MSG_SNAPSHOT: {
      const SnapshotMeta& meta = m.snapshot();
      std::vector<uint64_t> voters(meta.conf().voters().begin(), meta.conf().voters().end());
      std::sort(voters.begin(), voters.end());
      if (voters != voters_) return bad("snapshot with another voter set");
      if (meta.index() > committed && log_.match_term(meta.index(), meta.term()) &&
          !is_entry_end(meta.index())) {
        return bad(fmt::format("snapshot point {} inside an entry", meta.index()));
      }
      break;
    }
    case MSG_APP_RESP: {
      // An acknowledgement to this leader names the end of an entry of its log.
      if (role_ != Role::kLeader || m.term() != term_ || m.reject()) break;
      if (m.index() + 1 >= log_.first_index() && m.index() <= last && !is_entry_end(m.index())) {
        return bad(fmt::format("acknowledgement {} inside an entry", m.index()));
      }
      break;
    }
    default:
      break;
  }
  return absl::OkStatus();
}

void Raft::step_valid(const Message& m) {
  if (!step_term(m)) return;
  switch (m.type()) {
    case MSG_VOTE:
    case MSG_PRE_VOTE:
      handle_vote_request(m);
      return;
    default:
      break;
  }
  switch (role_) {
    case Role::kLeader:
      step_leader(m);
      break;
    case Role::kCandidate:
    case Role::kPreCandidate:
      step_candidate(m);
      break;
    case Role::kFollower:
      step_follower(m);
      break;
  }
}

// Term rules shared by every role. Returns false when the message is done with.
bool Raft::step_term(const Message& m) {
  const MessageType t = m.type();
  if (m.term() > term_) {
    if (t == MSG_VOTE || t == MSG_PRE_VOTE) {
      // Leader lease: while we hear from a leader, a disruptive candidate (say, one that was
      // partitioned away) cannot depose it, unless the leader itself asked (transfer).
      const bool in_lease =
          cfg_.check_quorum && lead_ != kNone && election_elapsed_ < cfg_.election_tick;
      if (in_lease && !m.transfer()) {
        logf(fmt::format("ignored {} from {} at term {}: lease not expired", message_type_name(t),
                         m.from(), m.term()));
        return false;
      }
    }
    if (t == MSG_PRE_VOTE || (t == MSG_PRE_VOTE_RESP && !m.reject())) {
      // Pre-votes are asked and granted for a future term without moving to it.
    } else if (t == MSG_APP || t == MSG_HEARTBEAT || t == MSG_SNAPSHOT) {
      become_follower(m.term(), m.from());
    } else {
      become_follower(m.term(), kNone);
    }
    return true;
  }
  if (m.term() < term_) {
    if ((cfg_.check_quorum || cfg_.pre_vote) && (t == MSG_APP || t == MSG_HEARTBEAT)) {
      // A stale leader (maybe cut off and unable to learn our term through votes, which
      // pre-vote and leases suppress) learns it from this answer and steps down.
      Message r;
      r.set_type(MSG_APP_RESP);
      r.set_to(m.from());
      send(std::move(r));
    } else if (t == MSG_PRE_VOTE) {
      Message r;
      r.set_type(MSG_PRE_VOTE_RESP);
      r.set_to(m.from());
      r.set_term(term_);
      r.set_reject(true);
      send(std::move(r));
    }
    return false;
  }
  return true;
}

void Raft::handle_vote_request(const Message& m) {
  const bool pre = m.type() == MSG_PRE_VOTE;
  bool can_vote =
      vote_ == m.from() || (vote_ == kNone && lead_ == kNone) || (pre && m.term() > term_);
  if (KEEL_PLANTED(double_vote) && !pre) {
    can_vote = true;  // planted bug: forget that we already voted this term
  }
  const bool grant = !faulted_ && can_vote && log_.is_up_to_date(m.index(), m.log_term());
  logf(
      fmt::format("[logterm: {}, index: {}, vote: {}] {} {} from {} [logterm: {}, index: {}] "
                  "at term {}{}",
                  log_.last_term(), log_.last_index(), vote_, grant ? "cast" : "rejected",
                  message_type_name(m.type()), m.from(), m.log_term(), m.index(), term_,
                  faulted_ ? " (storage fault)" : ""));
  Message r;
  r.set_type(pre ? MSG_PRE_VOTE_RESP : MSG_VOTE_RESP);
  r.set_to(m.from());
  r.set_term(grant ? m.term() : term_);
  r.set_reject(!grant);
  if (pre) {
    send(std::move(r));
    return;
  }
  if (grant) {
    election_elapsed_ = 0;
    vote_ = m.from();
  }
  send_after_persist(std::move(r));
}

void Raft::step_follower(const Message& m) {
  switch (m.type()) {
    case MSG_APP:
      election_elapsed_ = 0;
      lead_ = m.from();
      handle_append(m);
      break;
    case MSG_HEARTBEAT:
      election_elapsed_ = 0;
      lead_ = m.from();
      handle_heartbeat(m);
      break;
    case MSG_SNAPSHOT:
      election_elapsed_ = 0;
      lead_ = m.from();
      handle_snapshot(m);
      break;
    case MSG_TIMEOUT_NOW:
      logf(fmt::format("received MsgTimeoutNow from {}, starting election", m.from()));
      hup(true);
      break;
    default:
      break;
  }
}

void Raft::step_candidate(const Message& m) {
  switch (m.type()) {
    case MSG_APP:
      become_follower(m.term(), m.from());
      handle_append(m);
      break;
    case MSG_HEARTBEAT:
      become_follower(m.term(), m.from());
      handle_heartbeat(m);
      break;
    case MSG_SNAPSHOT:
      become_follower(m.term(), m.from());
      handle_snapshot(m);
      break;
    case MSG_VOTE_RESP:
      if (role_ == Role::kCandidate) handle_vote_response(m);
      break;
    case MSG_PRE_VOTE_RESP:
      if (role_ == Role::kPreCandidate) handle_vote_response(m);
      break;
    default:
      break;
  }
}

void Raft::handle_vote_response(const Message& m) {
  votes_.emplace(m.from(), !m.reject());
  size_t granted = 0;
  size_t rejected = 0;
  for (const auto& [_, g] : votes_) (g ? granted : rejected)++;
  logf(fmt::format("received {} {} from {} at term {}: {} granted, {} rejected",
                   message_type_name(m.type()), m.reject() ? "rejection" : "grant", m.from(), term_,
                   granted, rejected));
  if (granted >= quorum()) {
    if (role_ == Role::kPreCandidate) {
      start_election(false, false);
    } else {
      become_leader();
      bcast_append();
    }
  } else if (voters_.size() - rejected < quorum()) {
    become_follower(term_, kNone);
  }
}

void Raft::handle_append(const Message& m) {
  note_leader_last(m);
  Message r;
  r.set_type(MSG_APP_RESP);
  r.set_to(m.from());
  if (m.index() < log_.committed()) {
    r.set_index(log_.committed());
    send_after_persist(std::move(r));
    return;
  }
  auto last_new = log_.maybe_append(m.index(), m.log_term(), m.commit(), take_entries(m));
  drop_acks_from(log_.take_cut());
  if (last_new) {
    leader_matched_ = {*last_new, *log_.term(*last_new)};
    r.set_index(*last_new);
    send_after_persist(std::move(r));
    return;
  }
  const LogPosition hint = log_.find_conflict_by_term(m.index(), m.log_term());
  logf(fmt::format("[logterm: {}, index: {}] rejected MsgApp [logterm: {}, index: {}] from {}",
                   log_.term(std::min(m.index(), log_.last_index())).value_or(0), m.index(),
                   m.log_term(), m.index(), m.from()));
  r.set_index(m.index());
  r.set_reject(true);
  r.set_reject_hint(hint.index);
  r.set_hint_term(hint.term);
  send(std::move(r));  // a rejection promises nothing
}

std::vector<Entry> Raft::take_entries(const Message& m) {
  std::vector<Entry> out;
  out.reserve(size_t(m.entries_size()));
  if (&m == movable_) {
    for (Entry& e : *movable_->mutable_entries()) out.push_back(std::move(e));
  } else {
    out.assign(m.entries().begin(), m.entries().end());
  }
  return out;
}

void Raft::handle_heartbeat(const Message& m) {
  note_leader_last(m);
  maybe_clear_fault();
  log_.commit_to(std::min(m.commit(), log_.last_index()));
  Message r;
  r.set_type(MSG_HEARTBEAT_RESP);
  r.set_to(m.from());
  if (faulted_) {
    // The leader's match for this replica may name entries it lost: tell it where the log
    // ends, so the repair starts now and not at the next write (an idle partition has none).
    r.set_reject(true);
    r.set_reject_hint(log_.last_index());
  }
  send(std::move(r));
}

void Raft::handle_snapshot(const Message& m) {
  note_leader_last(m);
  const SnapshotMeta& meta = m.snapshot();
  Message r;
  r.set_type(MSG_APP_RESP);
  r.set_to(m.from());
  if (meta.index() <= log_.committed()) {
    r.set_index(log_.committed());
  } else if (log_.match_term(meta.index(), meta.term())) {
    // We hold the entry at the snapshot point: everything up to it is committed.
    log_.commit_to(meta.index());
    leader_matched_ = {meta.index(), meta.term()};
    r.set_index(meta.index());
  } else {
    logf(fmt::format("restoring log to start after {}/{}", meta.term(), meta.index()));
    log_.restore(meta);
    drop_acks_from(log_.take_cut());
    leader_matched_ = {meta.index(), meta.term()};
    r.set_index(meta.index());
  }
  send_after_persist(std::move(r));
}

// ---------------------------------------------------------------------------------------
// Leader.

void Raft::step_leader(const Message& m) {
  auto it = progress_.find(m.from());
  if (it == progress_.end() || m.from() == id_) return;
  Progress& pr = it->second;
  switch (m.type()) {
    case MSG_APP_RESP:
      pr.recent_active = true;
      handle_append_response(m, pr);
      break;
    case MSG_HEARTBEAT_RESP:
      pr.recent_active = true;
      pr.probe_sent = false;
      // A lost InstallSnapshot must not stall the follower: probe again (which resends it
      // if still needed; in Keel it is only metadata).
      if (pr.state == Progress::State::kSnapshot) pr.become_probe();
      if (pr.state == Progress::State::kReplicate && pr.inflight.full()) pr.inflight.free_first();
      if (m.reject() && m.reject_hint() < pr.match) {
        // A faulted follower's log ends before what it acknowledged: forget that match and
        // probe from its end (lowering a match never lowers the commit index).
        uint64_t end = m.reject_hint();
        if (end + 1 >= log_.first_index() && !is_entry_end(end)) end = log_.entry_start(end) - 1;
        logf(fmt::format("{} lost acknowledged entries (match {}, now {})", m.from(), pr.match,
                         end));
        pr.match = end;
        pr.become_probe();
      }
      if (pr.match < log_.last_index()) send_append_loop(m.from());
      break;
    default:
      break;
  }
}

void Raft::handle_append_response(const Message& m, Progress& pr) {
  const uint64_t from = m.from();
  if (m.reject()) {
    // Fast backoff: skip every entry of a term the follower does not have.
    uint64_t hint = m.reject_hint();
    if (m.hint_term() > 0) hint = log_.find_conflict_by_term(hint, m.hint_term()).index;
    bool decreased = false;
    if (pr.state == Progress::State::kReplicate) {
      if (m.index() > pr.match) {  // not stale
        pr.become_probe();
        decreased = true;
      }
    } else if (pr.next - 1 == m.index()) {  // the answer to the outstanding probe
      if (m.index() <= pr.match) {
        // The follower no longer holds entries it acknowledged: its storage lost them (it
        // abstains from votes until repaired). Forget that match, or every probe would ask
        // again at the same place; lowering a match never lowers the commit index.
        logf(fmt::format("{} lost acknowledged entries (match {}, now {})", from, pr.match,
                         std::min(pr.match, hint)));
        pr.match = std::min(pr.match, hint);
      }
      pr.next = std::max(std::min(m.index(), hint + 1), pr.match + 1);
      if (pr.next >= log_.first_index() && pr.next <= log_.last_index()) {
        pr.next = log_.entry_start(pr.next);
      }
      pr.probe_sent = false;
      decreased = true;
    }
    if (decreased) {
      logf(fmt::format("{} rejected append at {}, probing from {}", from, m.index(), pr.next));
      send_append_loop(from);
    }
    return;
  }
  if (m.index() > log_.last_index()) return;  // not from this leader's log: ignore
  const bool was_paused = pr.is_paused();
  if (pr.maybe_update(m.index())) {
    if (pr.state == Progress::State::kProbe) {
      pr.become_replicate();
    } else if (pr.state == Progress::State::kSnapshot && pr.match >= pr.pending_snapshot) {
      pr.become_replicate();
    } else if (pr.state == Progress::State::kReplicate) {
      pr.inflight.free_le(m.index());
    }
    if (maybe_commit()) {
      // The new commit index rides on appends that carry entries and on the next heartbeat;
      // a follower with nothing to send gets no commit-only append.
      bcast_append(/*send_if_empty=*/false);
    } else if (was_paused || pr.next <= log_.last_index()) {
      send_append_loop(from);
    }
    if (from == lead_transferee_ && pr.match == log_.last_index()) {
      logf(fmt::format("sent MsgTimeoutNow to {}: log caught up", from));
      Message t;
      t.set_type(MSG_TIMEOUT_NOW);
      t.set_to(from);
      send(std::move(t));
    }
  }
}

bool Raft::send_append(uint64_t to) {
  Progress& pr = progress_.at(to);
  if (pr.is_paused()) return false;
  Message m;
  m.set_to(to);
  if (pr.next < log_.first_index()) {
    // The entries it needs were removed by retention: move its log start instead.
    m.set_type(MSG_SNAPSHOT);
    *m.mutable_snapshot() = log_.snapshot_meta();
    // Membership is static: the receiver checks that the voters are its own.
    m.mutable_snapshot()->mutable_conf()->mutable_voters()->Assign(voters_.begin(), voters_.end());
    m.set_leader_last(log_.last_index());
    pr.become_snapshot(m.snapshot().index());
    logf(fmt::format("sent snapshot at {} to {}", m.snapshot().index(), to));
    send(std::move(m));
    return true;
  }
  const uint64_t prev = pr.next - 1;
  const std::optional<uint64_t> prev_term = log_.term(prev);
  KEEL_CHECK(prev_term.has_value(), "no term at {}", prev);
  m.set_type(MSG_APP);
  m.set_index(prev);
  m.set_log_term(*prev_term);
  m.set_commit(log_.committed());
  m.set_leader_last(log_.last_index());
  if (pr.next <= log_.last_index()) {
    auto read =
        log_.slice_into(pr.next, log_.last_index() + 1, cfg_.max_msg_bytes, *m.mutable_entries());
    if (!read.ok()) {
      logf(fmt::format("cannot read entries at {}: {}", pr.next, read.ToString()));
      return false;
    }
    uint64_t bytes = 0;
    for (const Entry& e : m.entries()) bytes += e.data().size();
    const uint64_t last = end_of(m.entries(m.entries_size() - 1));
    if (pr.state == Progress::State::kReplicate) {
      pr.next = last + 1;
      pr.inflight.add(last, bytes);
    } else {
      pr.probe_sent = true;
    }
  } else if (pr.state == Progress::State::kProbe) {
    pr.probe_sent = true;
  }
  send(std::move(m));
  return true;
}

void Raft::send_append_loop(uint64_t to) {
  // Pipelining: in replicate state, keep sending until caught up or flow control pauses.
  for (uint32_t i = 0; i <= cfg_.max_inflight_msgs; i++) {
    if (!send_append(to)) return;
    const Progress& pr = progress_.at(to);
    if (pr.state != Progress::State::kReplicate || pr.next > log_.last_index()) return;
  }
}

void Raft::bcast_append(bool send_if_empty) {
  for (uint64_t v : voters_) {
    if (v == id_) continue;
    // Without send_if_empty, skip a follower that would get an append without entries (it
    // holds everything): what such an append would bring, the commit index, reaches it with
    // the next heartbeat. One that needs a snapshot (next before the log start) has
    // next <= last and still gets it; flow control applies as always (send_append).
    if (!send_if_empty && progress_.at(v).next > log_.last_index()) continue;
    send_append_loop(v);
  }
}

void Raft::bcast_heartbeat() {
  for (uint64_t v : voters_) {
    if (v == id_) continue;
    Message m;
    m.set_type(MSG_HEARTBEAT);
    m.set_to(v);
    // Never tell a follower to commit past what it is known to hold.
    m.set_commit(std::min(progress_.at(v).match, log_.committed()));
    m.set_leader_last(log_.last_index());
    send(std::move(m));
  }
}

bool Raft::maybe_commit() {
  // On the stack: this runs on every acknowledgement.
  std::array<uint64_t, kVotersMax> matches;
  size_t n = 0;
  for (uint64_t v : voters_) matches[n++] = progress_.at(v).match;
  std::sort(matches.begin(), matches.begin() + n, std::greater<>());
  const uint64_t index = matches[quorum() - 1];
  if (index <= log_.committed()) return false;
  // Figure 8 of the Raft paper: an entry of an earlier term may be on a majority and still
  // be overwritten; only an entry of our own term is committed by counting.
  if (log_.term(index) != term_ && !KEEL_PLANTED(commit_prev_term)) return false;
  log_.commit_to(index);
  while (!uncommitted_.empty() && uncommitted_.front().first <= index) {
    uncommitted_bytes_ -= uncommitted_.front().second;
    uncommitted_.pop_front();
  }
  return true;
}

bool Raft::quorum_active() {
  size_t active = 0;
  for (const auto& [peer, pr] : progress_) {
    if (peer == id_ || pr.recent_active) active++;
  }
  return active >= quorum();
}

// ---------------------------------------------------------------------------------------
// Output.

void Raft::send(Message&& m) {
  m.set_from(id_);
  if (m.type() != MSG_PRE_VOTE && m.type() != MSG_PRE_VOTE_RESP && m.type() != MSG_VOTE_RESP) {
    m.set_term(term_);
  } else if (m.type() == MSG_VOTE_RESP && m.term() == 0) {
    m.set_term(term_);
  }
  KEEL_CHECK(m.to() != id_);
  msgs_.push_back(std::move(m));
}

void Raft::send_after_persist(Message&& m) {
  m.set_from(id_);
  if (m.term() == 0) m.set_term(term_);
  const bool to_peer = m.to() != id_;
  if (to_peer && KEEL_PLANTED(ack_before_sync) && m.type() == MSG_APP_RESP) {
    msgs_.push_back(std::move(m));  // planted bug: acknowledge what may not be durable
    return;
  }
  if (to_peer && KEEL_PLANTED(vote_not_persisted) && m.type() == MSG_VOTE_RESP) {
    msgs_.push_back(std::move(m));  // planted bug: answer before the vote is durable
    return;
  }
  held_.push_back(std::move(m));
}

void Raft::drop_acks_from(uint64_t from) {
  // Entries removed before they were durable: an acknowledgement of them, held until its
  // Ready is durable, would then claim what this replica never stored (Readies are written
  // in order and synced together, so a later one can replace an earlier one's entries
  // before the sync). Dropping a message is always safe; the leader probes again.
  if (from == UINT64_MAX) return;
  auto stale = [from](const Message& m) {
    return m.type() == MSG_APP_RESP && !m.reject() && m.index() >= from;
  };
  std::erase_if(held_, stale);
  for (InFlight& f : in_flight_) std::erase_if(f.held, stale);
}

void Raft::release(Message&& m) {
  if (m.to() == id_) {
    step_valid(m);  // our own vote, now durable (the one message from ourselves)
  } else {
    msgs_.push_back(std::move(m));
  }
}

HardState Raft::hard_state() const {
  HardState hs;
  hs.set_term(term_);
  hs.set_vote(vote_);
  hs.set_commit(log_.committed());
  return hs;
}

bool Raft::hard_state_changed() const {
  // hard_state() compared field by field, without building a HardState.
  return term_ != sent_hard_state_.term() || vote_ != sent_hard_state_.vote() ||
         log_.committed() != sent_hard_state_.commit();
}

bool Raft::has_ready() const {
  return bcast_pending_ || !msgs_.empty() || !held_.empty() || log_.has_unsent_entries() ||
         log_.has_unsent_snapshot() || hard_state_changed() || log_.has_next_committed() ||
         role_ != sent_role_ || lead_ != sent_lead_;
}

Ready Raft::take_ready() {
  if (bcast_pending_) {
    bcast_pending_ = false;
    if (role_ == Role::kLeader) bcast_append();
  }
  Ready rd;
  rd.id = next_ready_id_++;
  rd.snapshot = log_.take_unsent_snapshot();
  rd.entries = log_.take_unsent_entries();
  if (hard_state_changed()) {
    rd.hard_state = hard_state();
    sent_hard_state_ = *rd.hard_state;
  }
  rd.committed_entries = log_.take_next_committed(cfg_.max_apply_bytes, cfg_.committed_data);
  rd.messages = std::move(msgs_);
  msgs_.clear();
  if (role_ != sent_role_ || lead_ != sent_lead_) {
    rd.role = role_;
    rd.leader = lead_;
    sent_role_ = role_;
    sent_lead_ = lead_;
  }
  rd.must_persist = rd.snapshot || !rd.entries.empty() || rd.hard_state || !held_.empty();
  if (rd.must_persist) {
    InFlight& f = in_flight_.emplace_back();
    f.id = rd.id;
    if (rd.snapshot) f.snapshot_index = rd.snapshot->index();
    if (!rd.entries.empty())
      f.last_entry = LogPosition{end_of(rd.entries.back()), rd.entries.back().term()};
    f.held = std::move(held_);
    held_.clear();
  }
  return rd;
}

void Raft::recycle(Ready&& rd) {
  if (!msgs_.empty() || msgs_.capacity() >= rd.messages.capacity()) return;
  rd.messages.clear();
  msgs_.swap(rd.messages);
}

void Raft::persisted(uint64_t ready_id) {
  KEEL_CHECK(ready_id < next_ready_id_, "persisted({}) before the Ready was taken", ready_id);
  while (!in_flight_.empty() && in_flight_.front().id <= ready_id) {
    InFlight f = std::move(in_flight_.front());
    in_flight_.pop_front();
    if (f.snapshot_index) log_.stable_snapshot_to(*f.snapshot_index);
    if (f.last_entry) log_.stable_to(*f.last_entry);
    for (Message& m : f.held) release(std::move(m));
  }
  if (role_ == Role::kLeader) {
    Progress& self = progress_.at(id_);
    self.match = std::max(self.match, log_.durable_last());
    if (maybe_commit()) bcast_append(/*send_if_empty=*/false);
  }
  maybe_clear_fault();
}

// ---------------------------------------------------------------------------------------
// Introspection and helpers.

std::vector<Entry> Raft::log_entries() const {
  std::vector<Entry> out;
  uint64_t next = log_.first_index();
  while (next <= log_.last_index()) {
    auto part = log_.slice(next, log_.last_index() + 1, UINT64_MAX);
    KEEL_CHECK(part.ok() && !part->empty());
    for (Entry& e : *part) out.push_back(std::move(e));
    next = end_of(out.back()) + 1;
  }
  return out;
}

const Progress* Raft::progress(uint64_t peer) const {
  auto it = progress_.find(peer);
  return it == progress_.end() ? nullptr : &it->second;
}

bool Raft::is_voter(uint64_t id) const {
  return std::binary_search(voters_.begin(), voters_.end(), id);
}

void Raft::logf(std::string_view text) const {
  if (cfg_.logger) cfg_.logger(fmt::format("{} {}", id_, text));
}

}  // namespace keel::raft
