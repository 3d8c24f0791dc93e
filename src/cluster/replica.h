// Replica: one partition's Raft replica on a node. It drives the pure core (raft/) with the
// node's Env: ticks from a timer, entries into the partition log (log/), term and vote into
// a state file, messages out through a send function; and it serves produce and fetch.
//
// Durability rule: a Ready's writes are issued at once; the core is told they are durable
// (Raft::persisted) only after one group-commit round has synced the log, replaced the state
// file when term/vote/log start changed, and completed any log-start move. Messages that
// promise durable state are released by the core only then. A round with nothing to make
// durable (a Ready that only moved the commit index) completes at once, without a sync.
//
// Acknowledgement:
// - acks=all: the reply comes when the entry is committed (a majority has it durably) AND
//   the committed entry at that offset is the one this leader proposed (same term). If
//   leadership is lost first, the reply is UNAVAILABLE: the outcome is unknown.
// - acks=1: the reply comes after the leader's local append (not synced). It may be lost in
//   a failover, as in Kafka.
// Consumers (fetch) see committed data only: high watermark = commit + 1.
//
// Failure: an IO error on a write or a sync makes the replica failed (it stops ticking,
// replies UNAVAILABLE, and never tells the core anything is durable); the node must restart.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "cluster/cluster.pb.h"
#include "cluster/durable_mark.h"
#include "cluster/raft_storage.h"
#include "env/env.h"
#include "log/log.h"
#include "log/state_file.h"
#include "raft/raft.h"

namespace keel::cluster {

struct ReplicaOptions {
  uint64_t id = 0;
  std::vector<uint64_t> voters;
  uint32_t partition = 0;
  std::string dir;  // the replica's directory on the node's disk
  env::Nanos tick = std::chrono::milliseconds(20);
  int election_tick = 10;  // elections after 200..400 ms of silence with the default tick
  int heartbeat_tick = 2;
  log::Options log;
  // Bound on produce requests waiting for commit; beyond it produce answers UNAVAILABLE.
  size_t pending_produce_max = 4096;
  // Retention (Kafka's retention.bytes / retention.ms; 0 keeps everything): whole segments
  // of applied entries are dropped from the start, checked every retention_check_ticks.
  // A follower that needs dropped entries gets the new log start (InstallSnapshot).
  uint64_t retention_bytes = 0;
  int64_t retention_ms = 0;
  int retention_check_ticks = 50;
  // Scrubbing: every scrub_ticks, read (and so verify) the next scrub_bytes of the log,
  // wrapping at its end, so that latent damage is found and repaired from the leader before
  // it is needed (0 turns it off).
  int scrub_ticks = 50;
  size_t scrub_bytes = 1 << 20;
};

// Hooks for the simulator's global checkers (and metrics later). Called synchronously.
class ReplicaObserver {
 public:
  virtual ~ReplicaObserver() = default;
  virtual void on_role(uint64_t node, uint64_t term, raft::Role role, uint64_t leader) {}
  // An entry became committed and durable on `node`; crc is its batch's Kafka CRC.
  virtual void on_commit(uint64_t node, uint64_t index, uint32_t count, uint64_t term,
                         uint32_t crc) {}
  // `node`, leading `term`, advanced its commit index to `index` (checkers verify Raft's
  // commitment rule from the global view).
  virtual void on_leader_commit(uint64_t node, uint64_t term, uint64_t index) {}
  // `node`'s log now starts at `start`: its own retention, or a snapshot from the leader.
  virtual void on_log_start(uint64_t node, uint64_t start, bool from_leader) {}
};

struct ProduceResult {
  ErrorCode error = OK;
  int64_t base_offset = -1;
  uint64_t leader_hint = 0;
  std::string message;
};

struct FetchResult {
  ErrorCode error = OK;
  int64_t high_watermark = 0;
  int64_t log_start = 0;
  uint64_t leader_hint = 0;
  Bytes batches;
  std::string message;
};

class Replica {
 public:
  using SendFn = absl::AnyInvocable<void(const raft::Message&)>;
  using ProduceDone = absl::AnyInvocable<void(ProduceResult)>;

  // Opens (or creates) the replica in options.dir, recovering its log and state file.
  // `observer` may be null.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Replica>> open(env::Env& env,
                                                                     ReplicaOptions options,
                                                                     SendFn send,
                                                                     ReplicaObserver* observer);
  ~Replica();

  // A Raft message from a peer (already decoded; checked here). Its entries may be moved
  // out.
  void step(raft::Message&& m);
  // A peer's connection is down: stop streaming to it optimistically.
  void report_unreachable(uint64_t peer);
  void transfer_leadership(uint64_t to);

  // `batch` is one Kafka RecordBatch v2 from a client.
  void produce(ByteView batch, bool acks_all, ProduceDone done);
  // Committed batches from `offset` (whole batches, at least one if any is committed).
  FetchResult fetch(int64_t offset, size_t max_bytes);

  bool failed() const { return !health_.ok(); }
  const absl::Status& health() const { return health_; }
  const raft::Raft& core() const { return *raft_; }
  const RaftStorage& storage() const { return *storage_; }
  int64_t high_watermark() const { return int64_t(raft_->committed()) + 1; }

 private:
  struct PendingProduce {
    uint64_t term = 0;
    ProduceDone done;
  };

  Replica(env::Env& env, ReplicaOptions options, SendFn send, ReplicaObserver* observer);
  absl::StatusOr<ReplicaState> load_state();
  absl::Status start(std::unique_ptr<log::Log> log, ReplicaState state);
  void advance_log_start(int64_t first);
  void on_tick();
  void process_ready();
  void handle_ready(raft::Ready& rd);
  bool hold_for_mark(raft::Ready& rd);
  void release_held();
  void apply_committed(const std::vector<raft::Entry>& entries);
  void check_damage();
  void check_lost_tail();
  void sync_log(env::DoneFn done);
  int64_t mark_claim() const;
  void maybe_persist();
  void maybe_retain();
  void scrub();
  void finish_persist(uint64_t round, absl::Status status);
  void mark_persisted(uint64_t round);
  void write_state(env::DoneFn done);
  void fail(absl::Status status);
  void fail_pending(ErrorCode error, const std::string& why);
  ErrorCode not_leader_error() const;

  env::Env& env_;
  ReplicaOptions options_;
  SendFn send_;
  ReplicaObserver* observer_;
  std::unique_ptr<log::Log> log_;
  // Term, vote and log start, kept in two copies written one after the other: a vote is
  // released only when both are durable, so if either copy is later found corrupt, the
  // other holds the newest promise or an older state whose promises were never sent.
  std::unique_ptr<log::StateFile> state_files_[2];
  std::unique_ptr<DurableMark> mark_;
  std::unique_ptr<RaftStorage> storage_;
  std::unique_ptr<env::Random> raft_random_;
  std::unique_ptr<raft::Raft> raft_;
  env::Timer ticker_;
  absl::Status health_;
  bool in_ready_ = false;
  // A Ready that cuts entries the durable mark claims waits until the mark is lowered to
  // mark_ceiling_ (hold_for_mark); meanwhile no mark write claims more than that. A Ready
  // whose entries follow a snapshot waits until the log's start has moved (finish_persist).
  std::optional<raft::Ready> held_;
  std::optional<int64_t> mark_ceiling_;

  // Group commit of Readies: everything up to to_persist_ must be durable before
  // raft_->persisted(to_persist_).
  uint64_t to_persist_ = 0;
  uint64_t commit_seen_ = 0;  // for ReplicaObserver::on_leader_commit
  bool persisting_ = false;
  int ticks_ = 0;
  int64_t scrub_offset_ = 0;  // where the next scrub read starts
  bool state_dirty_ = false;
  bool parent_synced_ = false;  // the parent directory was synced since open          //
                                // term/vote/log start changed since the last write
  uint64_t persisted_ = 0;
  uint64_t applied_ = 0;        // last offset of the committed entries applied
  ReplicaState written_state_;  // what the state file holds (or is being replaced to)

  std::map<uint64_t, PendingProduce> pending_;  // acks=all, by base offset
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace keel::cluster
