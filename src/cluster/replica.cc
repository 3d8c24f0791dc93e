#include "cluster/replica.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "base/check.h"
#include "log/batch.h"

namespace keel::cluster {
namespace {

constexpr const char* kStateNames[2] = {"raft.state.a", "raft.state.b"};

// Decodes one state copy: NotFound if absent, DataLoss if corrupt.
absl::StatusOr<ReplicaState> read_state(log::StateFile& file, const std::vector<uint64_t>& voters) {
  auto bytes = file.read();
  if (!bytes.ok()) return bytes.status();
  ReplicaState state;
  if (!state.ParseFromArray(bytes->data(), int(bytes->size()))) {
    return absl::DataLossError("replica state: undecodable");
  }
  // A copy whose checksum verifies but whose content no replica writes (a bug, or
  // corruption the checksum missed) counts as damaged, like an unreadable one.
  const raft::HardState& hs = state.hard_state();
  const auto& conf = state.snapshot().conf().voters();
  const bool vote_ok =
      hs.vote() == 0 || std::find(voters.begin(), voters.end(), hs.vote()) != voters.end();
  std::vector<uint64_t> stored(conf.begin(), conf.end()), configured = voters;
  std::sort(stored.begin(), stored.end());
  std::sort(configured.begin(), configured.end());
  const bool conf_ok = stored.empty() || stored == configured;
  if (hs.term() > uint64_t(std::numeric_limits<int32_t>::max()) || !vote_ok || !conf_ok ||
      state.snapshot().index() >= (uint64_t(1) << 62)) {
    return absl::DataLossError("replica state: content out of range");
  }
  return state;
}

// Which of two valid copies is newer: terms only grow; within a term a vote is only added;
// the log start only moves forward.
bool newer(const ReplicaState& a, const ReplicaState& b) {
  const auto& ha = a.hard_state();
  const auto& hb = b.hard_state();
  if (ha.term() != hb.term()) return ha.term() > hb.term();
  if ((ha.vote() != 0) != (hb.vote() != 0)) return ha.vote() != 0;
  return a.snapshot().index() > b.snapshot().index();
}

}  // namespace

Replica::Replica(env::Env& env, ReplicaOptions options, SendFn send, ReplicaObserver* observer)
    : env_(env),
      options_(std::move(options)),
      send_(std::move(send)),
      observer_(observer),
      ticker_(env.clock()) {}

Replica::~Replica() { *alive_ = false; }

absl::StatusOr<ReplicaState> Replica::load_state() {
  ReplicaState state;
  for (uint64_t v : options_.voters) state.mutable_snapshot()->mutable_conf()->add_voters(v);
  bool found = false;
  bool damaged = false;
  for (int i = 0; i < 2; i++) {
    state_files_[i] = std::make_unique<log::StateFile>(env_.disk(), options_.dir, kStateNames[i]);
    auto s = read_state(*state_files_[i], options_.voters);
    if (s.ok()) {
      if (!found || newer(*s, state)) state = *s;
      found = true;
    } else if (!absl::IsNotFound(s.status())) {
      damaged = true;
      env_.trace().event("replica.state_damaged", s.status().ToString());
    }
  }
  if (damaged && !found) {
    // Both copies unreadable: this replica cannot know what it promised, so it stays down
    // rather than risk a second vote in one term (docs/fault-model.md).
    return absl::DataLossError("replica state: both copies damaged");
  }
  return state;
}

absl::StatusOr<std::unique_ptr<Replica>> Replica::open(env::Env& env, ReplicaOptions options,
                                                       SendFn send, ReplicaObserver* observer) {
  KEEL_CHECK(options.id != 0 && !options.voters.empty());
  if (auto st = env.disk().make_dir(options.dir); !st.ok()) return st;
  std::unique_ptr<Replica> r(new Replica(env, std::move(options), std::move(send), observer));
  auto state = r->load_state();
  if (!state.ok()) return state.status();
  auto mark = DurableMark::open(env.disk(), log::join_path(r->options_.dir, "durable"));
  if (!mark.ok()) return mark.status();
  r->mark_ = *std::move(mark);
  log::Options log_options = r->options_.log;
  log_options.initial_offset = int64_t(state->snapshot().index()) + 1;
  auto log = log::Log::open(env.disk(), log::join_path(r->options_.dir, "log"), log_options);
  if (!log.ok()) return log.status();
  if (auto st = r->start(*std::move(log), *std::move(state)); !st.ok()) return st;
  return r;
}

absl::Status Replica::start(std::unique_ptr<log::Log> log, ReplicaState state) {
  log_ = std::move(log);
  const int64_t first = int64_t(state.snapshot().index()) + 1;
  if (log_->start_offset() > first) {
    return absl::DataLossError(
        fmt::format("replica: log starts at {}, state says {}", log_->start_offset(), first));
  }
  if (log_->start_offset() < first) {
    // A log-start move recorded in the state file but not yet in the log: finish it. After
    // an InstallSnapshot whose truncation was not durable yet, an older batch may straddle
    // the new start: drop it and what follows (the snapshot replaced them).
    auto straddle = log_->read(first - 1, 1);
    if (straddle.ok() && straddle->next_offset > first) {
      if (auto st = log_->truncate_suffix(straddle->first_offset); !st.ok()) return st;
    }
    advance_log_start(first);
  }
  auto storage = RaftStorage::load(*log_, state);
  if (!storage.ok()) return storage.status();
  storage_ = *std::move(storage);
  written_state_ = state;

  raft_random_ = std::make_unique<env::Random>(
      env_.random().derive(fmt::format("raft/p{}", options_.partition)));
  raft::Config config;
  config.id = options_.id;
  config.voters = options_.voters;
  config.election_tick = options_.election_tick;
  config.heartbeat_tick = options_.heartbeat_tick;
  // Rare but legal: one entry per AppendEntries and a short pipeline, so that entries of one
  // Ready travel, and get lost, separately.
  if (KEEL_BUGGIFY(env_, "replica.tiny_appends")) {
    config.max_msg_bytes = 1;
    config.max_inflight_msgs = 2;
  }
  config.committed_data = false;  // apply_committed takes the CRCs from the boundaries
  config.random = raft_random_.get();
  config.logger = [this](std::string_view text) { env_.trace().event("raft", text); };
  raft_ = std::make_unique<raft::Raft>(config, *storage_);
  env_.trace().event(
      "replica.open",
      fmt::format("p{} log [{}, {}) term {} vote {}", options_.partition, log_->start_offset(),
                  log_->next_offset(), raft_->term(), raft_->vote()));
  check_lost_tail();
  check_damage();
  if (failed()) return health_;
  ticker_.start(options_.tick, [this] { on_tick(); });
  process_ready();
  return health_;
}

void Replica::on_tick() {
  if (failed()) return;
  ticker_.start(options_.tick, [this] { on_tick(); });
  // Rare but legal: a late timer (a paused process) swallows a tick.
  if (KEEL_BUGGIFY(env_, "replica.swallow_tick")) return;
  raft_->tick();
  process_ready();
  ++ticks_;
  if (ticks_ % options_.retention_check_ticks == 0) maybe_retain();
  if (options_.scrub_ticks > 0 && ticks_ % options_.scrub_ticks == 0) scrub();
}

void Replica::scrub() {
  if (failed()) return;
  if (scrub_offset_ < log_->start_offset() || scrub_offset_ >= log_->next_offset()) {
    scrub_offset_ = log_->start_offset();
  }
  if (scrub_offset_ >= log_->next_offset()) return;
  auto r = log_->verify(scrub_offset_, options_.scrub_bytes);
  if (!r.ok()) {
    env_.trace().event("replica.scrub", r.status().ToString());
    scrub_offset_ = log_->start_offset();
    check_damage();
    process_ready();
    return;
  }
  scrub_offset_ = r->next_offset;
}

void Replica::maybe_retain() {
  if (options_.retention_bytes == 0 && options_.retention_ms <= 0) return;
  if (failed() || state_dirty_ || held_) return;
  const uint64_t bytes_max = options_.retention_bytes == 0 ? UINT64_MAX : options_.retention_bytes;
  const std::optional<int64_t> point =
      log_->retention_point(env_.clock().wall_time_ms(), bytes_max, options_.retention_ms);
  // Only whole applied entries go: `point` is a segment base, so an entry start.
  if (!point || uint64_t(*point) <= storage_->first_index() || uint64_t(*point) > applied_ + 1) {
    return;
  }
  const uint64_t start = uint64_t(*point);
  env_.trace().event("replica.retention", fmt::format("p{} log start {} -> {}", options_.partition,
                                                      storage_->first_index(), start));
  storage_->compact(start - 1);
  if (observer_ != nullptr) observer_->on_log_start(options_.id, start, false);
  // The state (with the new snapshot point) first, then the log's start (finish_persist):
  // recovery finishes a move the state records.
  state_dirty_ = true;
  maybe_persist();
}

void Replica::step(raft::Message&& m) {
  if (failed()) return;
  if (m.to() != options_.id) return;
  for (const raft::Entry& e : m.entries()) {
    if (auto st = check_entry(e); !st.ok()) {
      env_.trace().event("replica.bad_entry", st.ToString());
      return;
    }
  }
  raft_->step(std::move(m));
  process_ready();
}

void Replica::report_unreachable(uint64_t peer) {
  if (failed()) return;
  raft_->report_unreachable(peer);
  process_ready();
}

void Replica::transfer_leadership(uint64_t to) {
  if (failed()) return;
  raft_->transfer_leadership(to);
  process_ready();
}

void Replica::process_ready() {
  if (in_ready_ || failed() || held_) return;
  in_ready_ = true;
  while (!failed() && raft_->has_ready()) {
    raft::Ready rd = raft_->take_ready();
    if (hold_for_mark(rd)) break;
    if (!rd.snapshot && !rd.entries.empty() &&
        rd.entries.front().index() > uint64_t(log_->next_offset())) {
      // Entries after a snapshot whose log-start move waits for the state to be durable
      // (finish_persist): they wait too (keel sim --seed 8876 --seconds 60 failed the
      // replica appending at 250 to a log still ending at 241).
      env_.trace().event("replica.wait_start",
                         fmt::format("p{} entries from {}, log ends at {}", options_.partition,
                                     rd.entries.front().index(), log_->next_offset()));
      held_ = std::move(rd);
      break;
    }
    const bool empty = rd.entries.empty() && rd.messages.empty() && rd.committed_entries.empty() &&
                       !rd.snapshot && !rd.hard_state && !rd.must_persist && !rd.role && !rd.leader;
    handle_ready(rd);
    raft_->recycle(std::move(rd));
    // Committed entries the storage could not read: handle the damage before asking again.
    if (empty) {
      check_damage();
      if (raft_->has_ready() && log_->damage().empty()) {
        fail(absl::DataLossError("replica: committed entries unreadable"));
      }
    }
  }
  in_ready_ = false;
  if (failed()) return;
  if (held_) {
    maybe_persist();  // the round that lets a held Ready go may not have started yet
    return;
  }
  check_damage();
  maybe_persist();
}

void Replica::release_held() {
  if (!held_ || mark_ceiling_) return;
  // Entries after a snapshot wait for the log's start (process_ready); a Ready that brings
  // its own snapshot never waits for that.
  if (!held_->snapshot && !held_->entries.empty() &&
      held_->entries.front().index() > uint64_t(log_->next_offset())) {
    return;
  }
  raft::Ready rd = std::move(*held_);
  held_.reset();
  in_ready_ = true;
  handle_ready(rd);
  in_ready_ = false;
  process_ready();
}

bool Replica::hold_for_mark(raft::Ready& rd) {
  // Where this Ready cuts the log (a conflicting suffix, or what a snapshot replaces).
  const uint64_t end = uint64_t(log_->next_offset());
  uint64_t cut = UINT64_MAX;
  if (rd.snapshot && rd.snapshot->index() + 1 < end &&
      storage_->first_index() <= storage_->last_index()) {
    const uint64_t start = rd.snapshot->index() + 1;
    cut = start < storage_->first_index() ? storage_->first_index() : storage_->entry_start(start);
  }
  if (!rd.entries.empty() && rd.entries.front().index() < end) {
    cut = std::min(cut, rd.entries.front().index());
  }
  if (cut == UINT64_MAX) return false;
  // The mark may claim the entries being cut (this replica acknowledged them; they were never
  // committed, or a leader would not replace them). If the cut became durable first, a crash
  // would leave a log ending before the mark: recovery would take the cut for lost data and
  // abstain. So the mark comes down first, and the Ready waits (keel sim --seed 326
  // --seconds 60 lost liveness that way). While faulted, the mark keeps its claim.
  int64_t needed = int64_t(cut);
  if (raft_->storage_faulted()) needed = std::max(needed, int64_t(raft_->repair_through()) + 1);
  if (mark_->latest().value_or(-1) <= needed) return false;
  env_.trace().event(
      "replica.lower_mark",
      fmt::format("p{} mark {} -> {} before a cut", options_.partition, *mark_->latest(), needed));
  held_ = std::move(rd);
  mark_ceiling_ = needed;
  mark_->write(needed, [this, alive = alive_](absl::Status s) {
    if (!*alive) return;
    if (!s.ok()) return fail(s);
    mark_ceiling_.reset();  // once the Ready's cut is done, the log's durable offset shows it
    release_held();
  });
  return true;
}

void Replica::handle_ready(raft::Ready& rd) {
  if (rd.snapshot) {
    if (observer_ != nullptr) observer_->on_log_start(options_.id, rd.snapshot->index() + 1, true);
    // The state (with the snapshot point) is persisted by this Ready's round; the log's start
    // follows once it is durable (finish_persist).
    state_dirty_ = true;
    if (auto st = storage_->install_snapshot(*rd.snapshot); !st.ok()) return fail(st);
  }
  if (!rd.entries.empty()) {
    // The Ready's entries are not needed after this.
    auto st = storage_->write_entries(std::move(rd.entries), env_.clock().wall_time_ms());
    if (!st.ok()) return fail(st);
  }
  if (rd.hard_state) {
    const raft::HardState& old = storage_->hard_state();
    if (old.term() != rd.hard_state->term() || old.vote() != rd.hard_state->vote()) {
      state_dirty_ = true;
    }
    storage_->set_hard_state(*rd.hard_state);
  }
  for (const raft::Message& m : rd.messages) send_(m);
  apply_committed(rd.committed_entries);
  if (rd.role || rd.leader) {
    if (observer_ != nullptr) {
      observer_->on_role(options_.id, raft_->term(), raft_->role(), raft_->leader());
    }
    if (raft_->role() != raft::Role::kLeader) fail_pending(UNAVAILABLE, "leadership lost");
  }
  if (raft_->committed() > commit_seen_) {
    commit_seen_ = raft_->committed();
    if (observer_ != nullptr && raft_->role() == raft::Role::kLeader) {
      observer_->on_leader_commit(options_.id, raft_->term(), commit_seen_);
    }
  }
  if (rd.must_persist) to_persist_ = std::max(to_persist_, rd.id);
}

void Replica::apply_committed(const std::vector<raft::Entry>& entries) {
  if (entries.empty()) return;
  // The entries come without data (raft::Config::committed_data): their batches' CRCs are
  // in the boundaries, one per entry, in order.
  const auto& boundaries = storage_->boundaries();
  auto meta = boundaries.find(entries.front().index());
  for (const raft::Entry& e : entries) {
    if (observer_ != nullptr) {
      KEEL_CHECK(meta != boundaries.end() && meta->first == e.index(),
                 "committed entry {} not in the log", e.index());
      observer_->on_commit(options_.id, e.index(), e.count(), e.term(), meta->second.crc);
      ++meta;
    }
    applied_ = e.index() + e.count() - 1;
  }
  log_->mark_stable(int64_t(applied_) + 1);
  // A waiting produce succeeded iff the committed entry at its offset is the one this
  // leader proposed there (same term: one leader per term, one entry per offset).
  while (!pending_.empty() && pending_.begin()->first <= applied_) {
    auto node = pending_.extract(pending_.begin());
    const uint64_t base = node.key();
    ProduceResult result;
    if (base >= storage_->first_index() && storage_->entry_start(base) == base &&
        storage_->term(base) == node.mapped().term) {
      result.base_offset = int64_t(base);
    } else {
      result.error = UNAVAILABLE;
      result.message = "entry replaced after a leader change";
    }
    node.mapped().done(std::move(result));
  }
}

void Replica::check_damage() {
  if (held_) return;  // after the held Ready: its entries are not in the log yet
  // Each pass cuts at the first damaged offset; the cut may find an earlier damaged batch
  // (DataLoss with a new damage() record): cut again there. Every pass lowers the cut.
  for (int pass = 0; pass < 64; pass++) {
    const auto& damage = log_->damage();
    if (damage.empty()) return;
    int64_t lo = std::numeric_limits<int64_t>::max();
    for (const log::Damage& d : damage) lo = std::min(lo, d.first_offset);
    const uint64_t last = storage_->last_index();
    // What this replica may have acknowledged reaches past `last` when the scan at open
    // stopped at the damage: to the log's end, and to what the durable mark claims
    // (keel sim --seed 1985 --seconds 60 repaired a replica through 347 that had
    // acknowledged through 2944, which then voted for a leader without entry 2712).
    uint64_t acknowledged = std::max<uint64_t>(last, uint64_t(log_->next_offset()) - 1);
    if (mark_->value() && *mark_->value() > 0) {
      acknowledged = std::max(acknowledged, uint64_t(*mark_->value()) - 1);
    }
    uint64_t cut = uint64_t(std::max<int64_t>(lo, int64_t(storage_->first_index())));
    if (cut > last + 1) return;
    if (cut <= last) cut = storage_->entry_start(cut);
    env_.trace().event("replica.damage",
                       fmt::format("p{} cut at {} (last {}): {}", options_.partition, cut, last,
                                   damage.front().reason));
    // Below the stable offset too: committed data this replica held is gone, and the core
    // abstains from votes until a leader has replicated it again (report_storage_fault).
    absl::Status st = storage_->drop_damaged(cut);
    if (absl::IsDataLoss(st)) continue;
    if (!st.ok()) return fail(st);
    raft_->report_storage_fault(cut, std::max(cut, acknowledged));
    return;
  }
  fail(absl::DataLossError("replica: damage repair did not converge"));
}

void Replica::check_lost_tail() {
  // The mark says the log was durable below D when this replica last acknowledged; if the
  // recovered log ends before D, acknowledged entries are gone (a corruption the log
  // recovery could not tell from a torn tail). If the mark itself is unknown, so is what
  // may be lost: the fault reaches kIndexMax, and only a leader's log repairs it
  // (docs/raft.md, "Storage faults").
  const uint64_t last = storage_->last_index();
  uint64_t lost_through = 0;
  if (mark_->damaged()) {
    lost_through = raft::kIndexMax;
  } else if (mark_->value() && log_->next_offset() < *mark_->value()) {
    lost_through = uint64_t(*mark_->value()) - 1;
  }
  if (lost_through <= last) return;
  env_.trace().event("replica.lost_tail",
                     fmt::format("p{} log ends at {} but acknowledged through {}",
                                 options_.partition, last, lost_through));
  raft_->report_storage_fault(last + 1, lost_through);
}

int64_t Replica::mark_claim() const {
  int64_t durable = log_->durable_offset();
  // Below a cut that waits for the mark to come down (hold_for_mark).
  if (mark_ceiling_) durable = std::min(durable, *mark_ceiling_);
  // While a storage fault is unrepaired, the mark keeps claiming what was lost, so that a
  // restart before the repair still knows to abstain.
  if (raft_->storage_faulted()) durable = std::max(durable, int64_t(raft_->repair_through()) + 1);
  return durable;
}

void Replica::sync_log(env::DoneFn done) {
  // Sync the log, then record the new durable offset in the mark (see durable_mark.h).
  log_->sync([this, done = std::move(done)](absl::Status s) mutable {
    if (!s.ok()) return done(s);
    const int64_t claim = mark_claim();
    if (mark_->value() == claim) return done(absl::OkStatus());
    mark_->write(claim, std::move(done));
  });
}

void Replica::maybe_persist() {
  if (persisting_ || failed() || (to_persist_ <= persisted_ && !state_dirty_)) return;
  persisting_ = true;
  const uint64_t round = to_persist_;
  if (!state_dirty_ && parent_synced_ && log_->synced() && mark_->value() == mark_claim() &&
      mark_->latest() == mark_->value()) {
    // Nothing to make durable (a Ready that only moved the commit index): the round is
    // complete already, without a sync.
    return finish_persist(round, absl::OkStatus());
  }
  struct Join {
    int outstanding = 0;
    absl::Status status;
  };
  auto join = std::make_shared<Join>();
  auto part = [this, round, join](absl::Status s) {
    if (!s.ok() && join->status.ok()) join->status = s;
    if (--join->outstanding == 0) finish_persist(round, join->status);
  };
  join->outstanding = (state_dirty_ ? 2 : 1) + (parent_synced_ ? 0 : 2);
  if (!parent_synced_) {
    // The replica's directory was created (or found) by make_dir in its parent, and its
    // mark file in it: until both directories are synced, a crash may lose them.
    parent_synced_ = true;
    const size_t slash = options_.dir.rfind('/');
    env_.disk().sync_dir(slash == std::string::npos ? "" : options_.dir.substr(0, slash), part);
    env_.disk().sync_dir(options_.dir, part);
  }
  if (state_dirty_) {
    state_dirty_ = false;
    write_state(part);
  }
  sync_log(part);
}

void Replica::write_state(env::DoneFn done) {
  written_state_ = storage_->state();
  std::string bytes = written_state_.SerializeAsString();
  // Copy A, then copy B: see state_files_.
  state_files_[0]->replace(as_bytes(bytes),
                           [this, bytes, done = std::move(done)](absl::Status s) mutable {
                             if (!s.ok()) return done(s);
                             state_files_[1]->replace(as_bytes(bytes), std::move(done));
                           });
}

void Replica::finish_persist(uint64_t round, absl::Status status) {
  persisting_ = false;
  if (!status.ok()) return fail(status);
  // The state written in this round is durable: the log's start may follow it (a snapshot
  // installed or retention). Recovery finishes the move if it is cut short, so the
  // acknowledgement need not wait for it.
  const int64_t first = int64_t(written_state_.snapshot().index()) + 1;
  if (first > log_->start_offset()) advance_log_start(first);
  mark_persisted(round);
  release_held();   // entries that waited for the start to move
  maybe_persist();  // what arrived meanwhile (a state-only round runs no Ready)
}

void Replica::advance_log_start(int64_t first) {
  log_->advance_start(first, [this](absl::Status s) {
    if (!s.ok()) fail(s);
  });
}

void Replica::mark_persisted(uint64_t round) {
  if (failed() || round <= persisted_) return;
  persisted_ = round;
  raft_->persisted(round);
  process_ready();
}

void Replica::fail(absl::Status status) {
  if (failed()) return;
  KEEL_CHECK(!status.ok());
  health_ = status;
  ticker_.cancel();
  env_.trace().event("replica.failed", status.ToString());
  fail_pending(UNAVAILABLE, "replica failed: " + status.ToString());
}

void Replica::fail_pending(ErrorCode error, const std::string& why) {
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [base, p] : pending) {
    ProduceResult r;
    r.error = error;
    r.message = why;
    p.done(std::move(r));
  }
}

void Replica::produce(ByteView batch, bool acks_all, ProduceDone done) {
  ProduceResult result;
  result.leader_hint = raft_ ? raft_->leader() : 0;
  if (failed()) {
    result.error = UNAVAILABLE;
    result.message = health_.ToString();
    return done(std::move(result));
  }
  if (raft_->role() != raft::Role::kLeader) {
    result.error = NOT_LEADER;
    return done(std::move(result));
  }
  if (pending_.size() >= options_.pending_produce_max) {
    result.error = UNAVAILABLE;
    result.message = "too many produce requests waiting for commit";
    return done(std::move(result));
  }
  auto header = log::validate_batch(batch, options_.log.batch_bytes_max);
  if (!header.ok()) {
    result.error = INVALID_REQUEST;
    result.message = header.status().ToString();
    return done(std::move(result));
  }
  const uint64_t base = raft_->next_index();
  const uint64_t term = raft_->term();
  if (term > uint64_t(std::numeric_limits<int32_t>::max())) {
    result.error = UNAVAILABLE;
    result.message = "term beyond the Kafka epoch range";
    return done(std::move(result));
  }
  // Stamped in the entry's own copy of the batch.
  std::string data(as_chars(batch));
  const std::span<uint8_t> stamped(reinterpret_cast<uint8_t*>(data.data()), data.size());
  log::set_base_offset(stamped, int64_t(base));
  log::set_leader_epoch(stamped, int32_t(term));
  auto proposed = raft_->propose(std::move(data), uint32_t(header->last_offset_delta) + 1);
  if (!proposed.ok()) {
    result.error = absl::IsFailedPrecondition(proposed.status()) ? NOT_LEADER : UNAVAILABLE;
    result.message = proposed.status().ToString();
    return done(std::move(result));
  }
  KEEL_CHECK(proposed->index == base && proposed->term == term, "proposed at {}@{}, not {}@{}",
             proposed->index, proposed->term, base, term);
  if (acks_all) {
    pending_[base] = PendingProduce{term, std::move(done)};
    process_ready();
    return;
  }
  process_ready();
  if (failed()) {
    result.error = UNAVAILABLE;
    result.message = health_.ToString();
  } else {
    result.base_offset = int64_t(base);
  }
  done(std::move(result));
}

FetchResult Replica::fetch(int64_t offset, size_t max_bytes) {
  FetchResult out;
  if (failed()) {
    out.error = UNAVAILABLE;
    out.message = health_.ToString();
    return out;
  }
  out.high_watermark = int64_t(applied_) + 1;
  out.log_start = int64_t(storage_->first_index());
  out.leader_hint = raft_->leader();
  if (raft_->role() != raft::Role::kLeader) {
    out.error = NOT_LEADER;
    return out;
  }
  if (offset < out.log_start || offset > out.high_watermark) {
    out.error = OFFSET_OUT_OF_RANGE;
    return out;
  }
  if (offset == out.high_watermark) return out;
  auto r = log_->read(offset, max_bytes);
  if (!r.ok()) {
    out.error = STORAGE_ERROR;
    out.message = r.status().ToString();
    check_damage();
    return out;
  }
  // Only whole batches below the high watermark leave the replica.
  ByteView rest(r->batches);
  size_t keep = 0;
  while (keep < rest.size()) {
    auto h = log::parse_batch_header(rest.subspan(keep), log::kBatchBytesMax);
    KEEL_CHECK(h.ok(), "log returned an unverified batch");
    if (h->next_offset() > out.high_watermark) break;
    keep += h->total_bytes();
  }
  out.batches.assign(rest.begin(), rest.begin() + keep);
  return out;
}

}  // namespace keel::cluster
