// Progress: the leader's view of one follower (etcd's Progress / Inflights, redone for
// offsets). Internal to the core.
#pragma once

#include <cstdint>
#include <deque>
#include <string_view>

#include "base/check.h"

namespace keel::raft {

// AppendEntries messages sent to one follower and not yet acknowledged, bounded in count and
// bytes (flow control).
class Inflights {
 public:
  Inflights(uint32_t max_msgs, uint64_t max_bytes) : max_msgs_(max_msgs), max_bytes_(max_bytes) {}
  bool full() const { return sent_.size() >= max_msgs_ || bytes_ >= max_bytes_; }
  uint32_t count() const { return uint32_t(sent_.size()); }
  uint64_t bytes() const { return bytes_; }
  // Records a message whose last offset is `last`. Requires !full() and increasing `last`.
  void add(uint64_t last, uint64_t bytes);
  // Forgets the messages whose last offset is <= last (acknowledged).
  void free_le(uint64_t last);
  void free_first() {
    if (!sent_.empty()) free_le(sent_.front().last);
  }
  void reset() {
    sent_.clear();
    bytes_ = 0;
  }

 private:
  struct Sent {
    uint64_t last;
    uint64_t bytes;
  };
  uint32_t max_msgs_;
  uint64_t max_bytes_;
  std::deque<Sent> sent_;
  uint64_t bytes_ = 0;
};

struct Progress {
  // Probe: one AppendEntries at a time until a match is found. Replicate: stream entries
  // optimistically (next runs ahead of match), bounded by inflight. Snapshot: waiting for an
  // InstallSnapshot to land.
  enum class State { kProbe, kReplicate, kSnapshot };

  Progress(uint64_t next_index, uint32_t max_msgs, uint64_t max_bytes)
      : next(next_index), inflight(max_msgs, max_bytes) {}

  uint64_t match = 0;  // last offset known replicated (and durable) there
  uint64_t next;       // first offset to send next (an entry start)
  State state = State::kProbe;
  bool probe_sent = false;  // in kProbe: an append is outstanding, wait
  uint64_t pending_snapshot = 0;
  bool recent_active = false;  // heard from within the current election timeout
  Inflights inflight;

  void become_probe();
  void become_replicate();
  void become_snapshot(uint64_t snapshot_index);
  // An acknowledgement up to `index`: returns whether match advanced.
  bool maybe_update(uint64_t index);
  bool is_paused() const;
  std::string_view state_name() const;
};

}  // namespace keel::raft
