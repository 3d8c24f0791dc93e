// The world-proof workload: a small env::Process that uses every part of the Env, written
// against env:: interfaces only, so the same class runs in the simulator and on real sockets
// and files (tests/realio).
//
// Each node:
// - appends records to a segmented log on its Disk ("seg-<first seq>" files, each record
//   [magic][length][seq][check][payload], check = CRC-32C over length, seq and payload),
//   group-commits them with File::sync, creates segments with a sync_dir, trims the oldest segments
//   past a limit; a record is acknowledged (reported to the observer) once the sync covering it,
//   every earlier record's sync and its segment's directory entry have all completed OK;
// - recovers on start: reads the segments in order, keeps the longest valid prefix, truncates
//   the torn tail and removes what follows it, and reports what it recovered;
// - listens for peers and connects to each peer, reconnecting with jittered exponential
//   backoff; sends numbered messages in small length-prefixed frames, keeps them until the
//   peer acknowledges them, and re-sends the unacknowledged ones on every new stream, which
//   creates duplicates across reconnections (receivers detect and count them).
// A sync error poisons the log for this incarnation (nothing more is written: the data can
// no longer be assumed durable); write errors (EIO, ENOSPC) change nothing and are retried.
//
// WorkloadChecker (an observer) verifies, from a global view: every acknowledged record is
// recovered, with its bytes, after every restart; nothing recovered was never written; every
// message received was sent, with its bytes; within one stream messages arrive in order.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "base/bytes.h"
#include "env/env.h"

namespace keel::sim {

struct RecoveredRecord {
  uint64_t seq = 0;
  uint64_t digest = 0;  // WorkloadProcess::payload_digest
};

// Hooks for a global checker. Every call happens on the node's event loop.
class WorkloadObserver {
 public:
  virtual ~WorkloadObserver() = default;
  // Record `seq` with payload digest was written (not yet durable).
  virtual void on_written(std::string_view node, uint64_t seq, uint64_t digest) = 0;
  // Record `seq` is durable: acknowledged. Calls come in seq order.
  virtual void on_acked(std::string_view node, uint64_t seq, uint64_t digest) = 0;
  // Records below `first_seq` were deliberately deleted (retention).
  virtual void on_trimmed(std::string_view node, uint64_t first_seq) = 0;
  // The log as recovered at process start, in seq order.
  virtual void on_recovered(std::string_view node, const std::vector<RecoveredRecord>& log) = 0;
  // A message left `node` (incarnation id `sender`), payload digest.
  virtual void on_sent(std::string_view node, uint64_t sender, uint64_t seq, uint64_t digest) = 0;
  // `node` received a message of `from`'s incarnation `sender`; `duplicate` if already seen.
  virtual void on_received(std::string_view node, std::string_view from, uint64_t sender,
                           uint64_t seq, uint64_t digest, bool duplicate) = 0;
  // The process found something impossible (a bad frame, reordering within a stream).
  virtual void on_violation(std::string_view node, std::string_view what) = 0;
  // A sync failed: the log is poisoned for this incarnation.
  virtual void on_disk_failed(std::string_view node, const absl::Status& status) = 0;
};

struct WorkloadOptions {
  env::Address listen;              // where this node accepts peers
  std::vector<env::Address> peers;  // the other nodes
  WorkloadObserver* observer = nullptr;

  int64_t append_interval_min_ns = 2'000'000;
  int64_t append_interval_max_ns = 20'000'000;
  size_t record_bytes_min = 1;
  size_t record_bytes_max = 2'000;
  int64_t message_interval_min_ns = 5'000'000;
  int64_t message_interval_max_ns = 40'000'000;
  size_t message_bytes_max = 600;
  size_t outbox_messages_max = 64;  // unacknowledged messages per peer
  uint64_t segment_bytes_max = 128 * 1024;
  size_t segments_max = 4;  // older segments are trimmed
  int64_t backoff_min_ns = 10'000'000;
  int64_t backoff_max_ns = 1'000'000'000;
  int64_t write_retry_ns = 50'000'000;
  // Group commit: a sync starts up to this long after the write that needs it, so several
  // writes share one sync (and a crash often finds unsynced data to drop or tear).
  int64_t sync_delay_max_ns = 10'000'000;
};

class WorkloadProcess final : public env::Process {
 public:
  static constexpr uint32_t kRecordMagic = 0x4b45454c;  // "KEEL"
  static constexpr size_t kRecordHeaderBytes = 24;
  static constexpr size_t kFrameBytesMax = 64 * 1024;
  static constexpr size_t kLogBytesMax = 64 << 20;  // recovery refuses to read more

  WorkloadProcess(env::Env& env, WorkloadOptions options);
  ~WorkloadProcess() override;

  // Introspection for tests.
  uint64_t next_seq() const { return next_seq_; }
  uint64_t acked_upto() const { return acked_upto_; }
  bool poisoned() const { return poisoned_; }
  uint64_t messages_received() const { return messages_received_; }
  uint64_t duplicates_received() const { return duplicates_received_; }
  size_t open_peers() const;

  // Pure helpers, shared with tests.
  static Bytes encode_record(uint64_t seq, ByteView payload);
  // Writes the kRecordHeaderBytes header of record `seq` with `payload` at `out`.
  static void encode_header(uint64_t seq, ByteView payload, uint8_t* out);
  // What the observer is told about a payload: its CRC-32C and length.
  static uint64_t payload_digest(ByteView payload);
  // Parses records from `data` starting at expected seq `first_seq`; returns how many bytes
  // form valid records and appends them to `out`.
  static size_t parse_records(ByteView data, uint64_t first_seq, std::vector<RecoveredRecord>* out,
                              uint64_t* next_seq);

 private:
  struct Segment;
  struct Peer;
  struct Inbound;

  // Disk.
  void recover();
  void schedule_append();
  void append_one();
  absl::Status roll_segment();
  void request_sync(Segment& seg);
  void start_sync(Segment& seg);
  void on_sync_done(uint64_t first_seq, uint64_t upto_seq, absl::Status status);
  void on_dir_synced(uint64_t first_seq, absl::Status status);
  void advance_acks();
  void trim();
  void poison(const absl::Status& status);
  Segment* find_segment(uint64_t first_seq);

  // Network.
  void start_listening();
  void connect(size_t peer);
  void on_peer_closed(size_t peer, uint64_t stream_gen, absl::Status status);
  void schedule_reconnect(size_t peer);
  void on_peer_data(size_t peer, uint64_t stream_gen, ByteView data);
  void schedule_messages();
  void send_messages();
  absl::Status send_frame(env::Stream& stream, uint8_t type, ByteView body);
  void accept(std::unique_ptr<env::Stream> stream);
  void on_inbound_data(uint64_t id, ByteView data);
  void on_inbound_frame(Inbound& in, uint8_t type, ByteView body);
  void reap();
  void violation(std::string_view what);

  env::Env& env_;
  WorkloadOptions opt_;
  WorkloadObserver* obs_;
  std::string node_;
  uint64_t incarnation_id_;

  // Log state.
  std::vector<std::unique_ptr<Segment>> segments_;  // oldest first
  uint64_t next_seq_ = 1;
  uint64_t acked_upto_ = 0;               // every record <= this is acknowledged
  std::map<uint64_t, uint64_t> unacked_;  // seq -> digest, written but not acknowledged
  bool poisoned_ = false;
  env::Timer append_timer_;

  // Network state.
  std::unique_ptr<env::Listener> listener_;
  std::vector<std::unique_ptr<Peer>> peers_;
  std::map<uint64_t, std::unique_ptr<Inbound>> inbound_;  // by accept order
  uint64_t next_inbound_id_ = 1;
  uint64_t next_msg_seq_ = 1;
  std::map<std::tuple<std::string, uint64_t>, std::set<uint64_t>> seen_;  // (from, sender)
  uint64_t messages_received_ = 0;
  uint64_t duplicates_received_ = 0;
  env::Timer message_timer_;
  env::Timer reap_timer_;
  env::Timer listen_timer_;
  env::Timer sync_timer_;
  std::vector<std::unique_ptr<env::Stream>> graveyard_;    // closed in a callback, freed later
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // guards sync_dir callbacks
};

// The global checker for the workload. Nodes named in excuse() (their disk was corrupted on
// purpose) are exempt from the durability check but not from "never serve unwritten bytes".
class WorkloadChecker final : public WorkloadObserver {
 public:
  static constexpr size_t kViolationsKept = 20;

  void on_written(std::string_view node, uint64_t seq, uint64_t digest) override;
  void on_acked(std::string_view node, uint64_t seq, uint64_t digest) override;
  void on_trimmed(std::string_view node, uint64_t first_seq) override;
  void on_recovered(std::string_view node, const std::vector<RecoveredRecord>& log) override;
  void on_sent(std::string_view node, uint64_t sender, uint64_t seq, uint64_t digest) override;
  void on_received(std::string_view node, std::string_view from, uint64_t sender, uint64_t seq,
                   uint64_t digest, bool duplicate) override;
  void on_violation(std::string_view node, std::string_view what) override;
  void on_disk_failed(std::string_view node, const absl::Status& status) override;

  // The node's disk may be corrupted: it no longer has to keep acknowledged records.
  void excuse(std::string_view node) { excused_.insert(std::string(node)); }

  bool ok() const { return violation_count_ == 0; }
  uint64_t violation_count() const { return violation_count_; }
  const std::vector<std::string>& violations() const { return violations_; }

  struct Counts {
    uint64_t written = 0, acked = 0, recoveries = 0, recovered_records = 0, sent = 0, received = 0,
             duplicates = 0, disk_failures = 0;
  };
  const Counts& counts() const { return counts_; }
  // Acknowledged records each node must still hold.
  size_t acked_outstanding() const;

 private:
  void fail(std::string what);

  std::map<std::string, std::map<uint64_t, std::set<uint64_t>>> written_;  // node, seq
  std::map<std::string, std::map<uint64_t, uint64_t>> acked_;              // node, seq
  std::map<std::tuple<std::string, uint64_t, uint64_t>, uint64_t> sent_;   // node, sender, seq
  std::set<std::string, std::less<>> excused_;
  std::vector<std::string> violations_;
  uint64_t violation_count_ = 0;
  Counts counts_;
};

}  // namespace keel::sim
