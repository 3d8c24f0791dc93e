#include "raft/progress.h"

#include <algorithm>

namespace keel::raft {

void Inflights::add(uint64_t last, uint64_t bytes) {
  KEEL_CHECK(!full());
  KEEL_CHECK(sent_.empty() || sent_.back().last < last);
  sent_.push_back({last, bytes});
  bytes_ += bytes;
}

void Inflights::free_le(uint64_t last) {
  while (!sent_.empty() && sent_.front().last <= last) {
    bytes_ -= sent_.front().bytes;
    sent_.pop_front();
  }
}

void Progress::become_probe() {
  // After a snapshot, resume right after it; otherwise right after what matches.
  if (state == State::kSnapshot) {
    next = std::max(match + 1, pending_snapshot + 1);
  } else {
    next = match + 1;
  }
  state = State::kProbe;
  probe_sent = false;
  pending_snapshot = 0;
  inflight.reset();
}

void Progress::become_replicate() {
  next = match + 1;
  state = State::kReplicate;
  probe_sent = false;
  pending_snapshot = 0;
  inflight.reset();
}

void Progress::become_snapshot(uint64_t snapshot_index) {
  state = State::kSnapshot;
  probe_sent = false;
  pending_snapshot = snapshot_index;
  inflight.reset();
}

bool Progress::maybe_update(uint64_t index) {
  bool updated = false;
  if (match < index) {
    match = index;
    updated = true;
    probe_sent = false;
  }
  next = std::max(next, index + 1);
  return updated;
}

bool Progress::is_paused() const {
  switch (state) {
    case State::kProbe:
      return probe_sent;
    case State::kReplicate:
      return inflight.full();
    case State::kSnapshot:
      return true;
  }
  return true;
}

std::string_view Progress::state_name() const {
  switch (state) {
    case State::kProbe:
      return "probe";
    case State::kReplicate:
      return "replicate";
    case State::kSnapshot:
      return "snapshot";
  }
  return "?";
}

}  // namespace keel::raft
