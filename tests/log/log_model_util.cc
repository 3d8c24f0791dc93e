#include "tests/log/log_model_util.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/state.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "log/batch.h"
#include "tests/log/log_util.h"

namespace keel::log::testing {

constexpr char kDir[] = "log";

// KEEL_LOG_MODEL_TRACE=1 prints every command's effect and every recovery (for shrunk
// counterexamples).
static bool tracing() {
  static const bool on = std::getenv("KEEL_LOG_MODEL_TRACE") != nullptr;
  return on;
}

World::World(std::unique_ptr<DiskHarness> harness, ModelParams params)
    : harness_(std::move(harness)), params_(params), incarnation_(std::make_shared<bool>(true)) {
  ModelLog empty;
  empty.start = empty.next = params_.options.initial_offset;
  history_.push_back(empty);
  floor_next_ = floor_start_ = empty.start;
  open();
}

World::~World() {
  log_.reset();
  harness_->run_until_idle();
}

void World::open() {
  for (int attempt = 0; attempt < 50; attempt++) {
    auto log = Log::open(harness_->disk(), kDir, params_.options);
    if (!log.ok()) continue;  // an injected IO error while recovering: restart again
    log_ = std::move(*log);
    // A cut made by an attempt whose recovery round then failed is not reported again by
    // the next attempt (the bytes are gone by then): remember it.
    const int64_t cut = log_->recovery().truncated_at_offset;
    if (cut >= 0 && (truncated_at_ < 0 || cut < truncated_at_)) truncated_at_ = cut;
    harness_->run_until_idle();  // the recovery round
    if (log_->health().ok()) return;
    log_.reset();  // an injected sync error during recovery: the node restarts again
  }
  RC_FAIL("the log never opened cleanly");
}

void World::push_state(ModelLog s) { history_.push_back(std::move(s)); }

void World::restart_if_failed() {
  if (log_->health().ok()) return;
  crash(false);
}

const ModelBatch* World::model_batch_at(int64_t base) const {
  const ModelLog& cur = current();
  auto it = std::lower_bound(cur.batches.begin(), cur.batches.end(), base,
                             [](const BatchPtr& b, int64_t o) { return b->base < o; });
  if (it != cur.batches.end() && (*it)->base == base) return it->get();
  auto a = archive_.find(base);
  return a == archive_.end() ? nullptr : a->second.get();
}

void World::append(int records, bool new_epoch, bool follower, size_t value_bytes) {
  restart_if_failed();
  if (new_epoch) epoch_++;
  const ModelLog& cur = current();
  ++tag_;
  Bytes batch = make_batch(records, epoch_, tag_, int64_t(tag_) * 10, value_bytes);
  std::optional<int64_t> expected;
  if (follower) {
    set_base_offset(batch, cur.next);
    expected = cur.next;
  }
  auto r = log_->append(batch, expected, int64_t(tag_));
  if (tracing()) {
    std::fprintf(stderr, "append tag %llu at %lld: %s\n", (unsigned long long)tag_,
                 (long long)cur.next, r.status().ToString().c_str());
  }
  if (!r.ok()) {
    // A failed log (injected EIO) or a full buffer behind a truncate barrier: no change.
    RC_ASSERT(!log_->health().ok() || absl::IsUnavailable(r.status()));
    return;
  }
  RC_ASSERT(r->base_offset == cur.next);
  stat_appends++;
  auto mb = std::make_shared<ModelBatch>();
  mb->base = cur.next;
  mb->next = cur.next + records;
  mb->epoch = epoch_;
  set_base_offset(batch, cur.next);
  mb->bytes = std::move(batch);
  RC_ASSERT(r->last_offset == mb->next - 1);
  RC_ASSERT(log_->next_offset() == mb->next);
  ModelLog s = cur;
  s.batches.push_back(std::move(mb));
  s.next = s.batches.back()->next;
  push_state(std::move(s));
}

void World::sync(int run_events) {
  restart_if_failed();
  const uint64_t id = history_id_ + history_.size() - 1;
  std::weak_ptr<bool> inc = incarnation_;
  log_->sync([this, id, inc](absl::Status s) {
    if (tracing()) std::fprintf(stderr, "sync done: %s\n", s.ToString().c_str());
    if (inc.expired() || !s.ok() || id < history_id_) return;
    // Everything in the state at the call that was not truncated since is durable.
    size_t idx = size_t(id - history_id_);
    int64_t durable = INT64_MAX;
    for (size_t j = idx; j < history_.size(); j++) durable = std::min(durable, history_[j].next);
    floor_next_ = std::max(floor_next_, durable);
    while (history_id_ < id) {
      history_.pop_front();
      history_id_++;
    }
  });
  if (run_events < 0) {
    harness_->run_until_idle();
  } else {
    harness_->run_some(run_events);
  }
}

void World::run_events(int events) { harness_->run_some(events); }

void World::truncate(uint32_t where) {
  restart_if_failed();
  const ModelLog& cur = current();
  const int64_t stable = log_->stable_offset();
  std::vector<int64_t> boundaries;
  for (const BatchPtr& b : cur.batches) {
    if (b->base >= std::max(stable, cur.start)) boundaries.push_back(b->base);
  }
  if (stable > cur.start) {
    // Stable data is never truncated.
    for (const BatchPtr& b : cur.batches) {
      if (b->base > cur.start && b->base < stable) {
        RC_ASSERT(absl::IsFailedPrecondition(log_->truncate_suffix(b->base)));
        break;
      }
    }
  }
  if (boundaries.empty()) return;
  const int64_t to = boundaries[where % boundaries.size()];
  absl::Status s = log_->truncate_suffix(to);
  if (tracing()) {
    std::fprintf(stderr, "truncate_suffix(%lld) stable %lld: %s\n", (long long)to,
                 (long long)stable, s.ToString().c_str());
  }
  if (!s.ok()) {
    RC_ASSERT(!log_->health().ok() || (corrupted() && absl::IsDataLoss(s)));
    return;
  }
  RC_ASSERT(log_->next_offset() == to);
  ModelLog n = cur;
  while (!n.batches.empty() && n.batches.back()->base >= to) n.batches.pop_back();
  n.next = to;
  floor_next_ = std::min(floor_next_, to);
  push_state(std::move(n));
}

void World::advance_start(uint32_t where, bool beyond_end) {
  restart_if_failed();
  const ModelLog& cur = current();
  int64_t to = beyond_end ? cur.next + 1 + where % 5
                          : cur.start + int64_t(where % uint64_t(cur.next - cur.start + 1));
  std::weak_ptr<bool> inc = incarnation_;
  if (tracing()) std::fprintf(stderr, "advance_start(%lld)\n", (long long)to);
  log_->advance_start(to, [this, to, inc](absl::Status s) {
    if (inc.expired() || !s.ok()) return;
    floor_start_ = std::max(floor_start_, to);
  });
  ModelLog n = cur;
  n.start = std::max(cur.start, to);
  if (n.start >= cur.next) {
    for (const BatchPtr& b : n.batches) archive_[b->base] = b;
    n.batches.clear();
    n.next = n.start;
  } else {
    while (!n.batches.empty() && n.batches.front()->next <= n.start) {
      archive_[n.batches.front()->base] = n.batches.front();
      n.batches.erase(n.batches.begin());
    }
  }
  RC_ASSERT(log_->start_offset() == n.start);
  RC_ASSERT(log_->next_offset() == n.next);
  push_state(std::move(n));
}

void World::mark_stable(uint32_t where) {
  const ModelLog& cur = current();
  const int64_t to = cur.start + int64_t(where % uint64_t(cur.next - cur.start + 1));
  if (tracing()) std::fprintf(stderr, "mark_stable(%lld)\n", (long long)to);
  log_->mark_stable(to);
}

bool World::covered_by_damage(int64_t offset) const {
  for (const Damage& d : log_->damage()) {
    if (d.first_offset <= offset && offset <= d.last_offset) return true;
  }
  return false;
}

void World::check_read_result(int64_t from, size_t max_bytes, const ReadResult& r) {
  const ModelLog& cur = current();
  auto it = std::upper_bound(cur.batches.begin(), cur.batches.end(), from,
                             [](int64_t o, const BatchPtr& b) { return o < b->next; });
  RC_ASSERT(it != cur.batches.end());
  RC_ASSERT(r.batch_count >= 1u);
  RC_ASSERT(r.first_offset == (*it)->base);
  Bytes want;
  int64_t next = (*it)->base;
  for (size_t i = 0; i < r.batch_count; i++, ++it) {
    RC_ASSERT(it != cur.batches.end());
    want.insert(want.end(), (*it)->bytes.begin(), (*it)->bytes.end());
    next = (*it)->next;
  }
  RC_ASSERT(r.batches == want);
  RC_ASSERT(r.next_offset == next);
  RC_ASSERT(r.batch_count == 1u || r.batches.size() <= max_bytes);
}

void World::read(uint32_t where, uint32_t max_bytes) {
  const ModelLog& cur = current();
  if (cur.next == cur.start) {
    RC_ASSERT(absl::IsOutOfRange(log_->read(cur.start, max_bytes).status()));
    return;
  }
  const int64_t from = cur.start + int64_t(where % uint64_t(cur.next - cur.start));
  auto r = log_->read(from, max_bytes);
  if (!r.ok()) {
    RC_ASSERT(corrupted() && absl::IsDataLoss(r.status()));
    RC_ASSERT(covered_by_damage(from));
    return;
  }
  check_read_result(from, max_bytes, *r);
  auto term = log_->term_at(from);
  RC_ASSERT(term.ok());
  auto it = std::upper_bound(cur.batches.begin(), cur.batches.end(), from,
                             [](int64_t o, const BatchPtr& b) { return o < b->next; });
  RC_ASSERT(*term == (*it)->epoch);
}

void World::check_all_reads() {
  restart_if_failed();
  const ModelLog& cur = current();
  RC_ASSERT(log_->start_offset() == cur.start);
  RC_ASSERT(log_->next_offset() == cur.next);
  int64_t at = cur.start;
  while (at < cur.next) {
    auto r = log_->read(at, 1 << 20);
    if (!r.ok()) {
      RC_ASSERT(corrupted() && absl::IsDataLoss(r.status()));
      RC_ASSERT(covered_by_damage(at));
      return;
    }
    check_read_result(at, 1 << 20, *r);
    at = r->next_offset;
  }
}

void World::corrupt(uint32_t file_pick, uint32_t where, int bit) {
  auto names = harness_->disk().list(kDir);
  if (!names.ok()) return;
  std::vector<std::string> segments;
  for (const std::string& n : *names) {
    if (n.size() > 4 && n.substr(n.size() - 4) == ".seg") segments.push_back(n);
  }
  if (segments.empty()) return;
  const std::string path = std::string(kDir) + "/" + segments[file_pick % segments.size()];
  if (harness_->corrupt(path, where, bit)) corrupted_ = true;
}

bool World::cut_damage(int64_t offset, bool among_candidates) {
  absl::Status s = log_->truncate_damaged(offset);
  if (tracing()) {
    std::fprintf(stderr, "truncate_damaged(%lld): %s\n", (long long)offset, s.ToString().c_str());
  }
  if (!s.ok()) {
    // A failed log; damage found below the offset (DataLoss, a new damage() record); or the
    // damage begins in the batch holding the start, which is not a boundary.
    RC_ASSERT(!log_->health().ok() || absl::IsDataLoss(s) ||
              (absl::IsInvalidArgument(s) && offset == current().start));
    return false;
  }
  stat_repairs++;
  RC_ASSERT(log_->next_offset() == offset);
  RC_ASSERT(log_->stable_offset() <= offset);
  RC_ASSERT(log_->checkpoint_offset() <= offset);
  for (const Damage& d : log_->damage()) RC_ASSERT(d.last_offset < offset);
  auto cut_model = [offset](ModelLog s) {
    while (!s.batches.empty() && s.batches.back()->base >= offset) s.batches.pop_back();
    return s;
  };
  auto ends_at = [offset](const ModelLog& s) {
    return s.batches.empty() || s.batches.back()->next == offset;
  };
  ModelLog n = cut_model(current());
  if (among_candidates && !ends_at(n)) {
    // The log accepted the cut, so a batch begins at `offset` on the disk. After an ambiguous
    // recovery the model's batch there is a guess: at the recovered start, a candidate's batch
    // may begin below it (a truncated batch that held it) where the disk's begins at it. The
    // log's answer rules that guess out; the model follows a candidate that agrees.
    for (auto it = history_.rbegin(); it != history_.rend(); ++it) {
      if (ModelLog c = cut_model(*it); ends_at(c)) {
        n = std::move(c);
        break;
      }
    }
  }
  const bool ends_at_cut = ends_at(n);
  RC_ASSERT(ends_at_cut);
  n.next = offset;
  floor_next_ = std::min(floor_next_, offset);
  push_state(std::move(n));
  return true;
}

void World::repair() {
  restart_if_failed();
  // A few rounds: the cut may find damage further down first (then cut there).
  for (int attempt = 0; attempt < 4 && !log_->damage().empty(); attempt++) {
    int64_t first = INT64_MAX;
    for (const Damage& d : log_->damage()) first = std::min(first, d.first_offset);
    const ModelLog before = current();
    const int64_t to = std::max(first, before.start);
    if (!cut_damage(to)) {
      if (!log_->health().ok()) return;
      continue;
    }
    // Fetched again from a peer: the model's batches, as follower appends.
    for (const BatchPtr& b : before.batches) {
      if (b->base < to) continue;
      auto r = log_->append(b->bytes, b->base, int64_t(tag_));
      if (tracing()) {
        std::fprintf(stderr, "append again at %lld: %s\n", (long long)b->base,
                     r.status().ToString().c_str());
      }
      if (!r.ok()) {
        RC_ASSERT(!log_->health().ok() || absl::IsUnavailable(r.status()));
        return;
      }
      ModelLog s = current();
      s.batches.push_back(b);
      s.next = b->next;
      push_state(std::move(s));
    }
    return;
  }
}

void World::crash(bool power_loss) {
  if (tracing()) std::fprintf(stderr, "crash(power_loss=%d)\n", power_loss);
  log_.reset();
  truncated_at_ = -1;
  incarnation_ = std::make_shared<bool>(true);
  if (power_loss) harness_->crash();
  stat_crashes++;
  open();
  check_recovered();
}

void World::check_recovered() {
  const int64_t start = log_->start_offset();
  const int64_t next = log_->next_offset();
  const RecoveryReport& rep = log_->recovery();
  if (tracing()) {
    std::fprintf(stderr,
                 "recovered [%lld, %lld) floor [%lld, %lld) cp_found=%d cp_used=%d cp_offset=%lld "
                 "cut_at=%lld (%s) removed=%zu segments=%zu history=%zu\n",
                 (long long)start, (long long)next, (long long)floor_start_, (long long)floor_next_,
                 rep.checkpoint_found, rep.checkpoint_used, (long long)rep.checkpoint_offset,
                 (long long)rep.truncated_at_offset, rep.truncate_reason.c_str(),
                 rep.segments_removed, rep.segments, history_.size());
  }
  if (truncated_at_ >= 0) stat_truncated_recoveries++;
  // Never lose what was durable (unless corruption hit it, and then recovery says so).
  if (next < floor_next_) {
    RC_ASSERT(corrupted());
    // Recovery says what it lost: a cut tail, or a checkpoint it could not read (which alone
    // recorded where an emptied log stood).
    const bool cut = truncated_at_ >= 0 && truncated_at_ <= next;
    const bool lost_checkpoint = rep.checkpoint_found && !rep.checkpoint_used;
    RC_ASSERT(cut || lost_checkpoint);
  }
  if (start < floor_start_) {
    // Only a corrupted checkpoint may lose the recorded start (recovery then starts at the
    // first segment and says it ignored the checkpoint).
    RC_ASSERT(corrupted());
    RC_ASSERT(!rep.checkpoint_used);
  }
  RC_ASSERT(next >= start);
  // Read the recovered log back, batch by batch.
  std::vector<BatchPtr> got;
  int64_t at = start;
  bool unreadable = false;
  while (at < next) {
    auto r = log_->read(at, 1);
    if (!r.ok()) {
      RC_ASSERT(corrupted() && absl::IsDataLoss(r.status()));
      RC_ASSERT(covered_by_damage(at));
      unreadable = true;
      if (tracing())
        std::fprintf(stderr, "  unreadable at %lld: %s\n", (long long)at,
                     r.status().ToString().c_str());
      break;
    }
    RC_ASSERT(r->batch_count == 1u);
    auto h = validate_batch(r->batches);
    RC_ASSERT(h.ok());
    auto mb = std::make_shared<ModelBatch>();
    mb->base = h->base_offset;
    mb->next = h->next_offset();
    mb->epoch = h->leader_epoch;
    mb->bytes = r->batches;
    const bool contiguous = got.empty() ? mb->base <= at : mb->base == got.back()->next;
    RC_ASSERT(contiguous);
    got.push_back(std::move(mb));
    at = r->next_offset;
  }
  // Never a changed byte, never a hole: a prefix of some state the log went through.
  const ModelLog* match = nullptr;
  for (const ModelLog& s : history_) {
    if (next > s.next && !(s.batches.empty() && next <= s.start)) continue;
    bool ok = true;
    for (const BatchPtr& b : got) {
      const ModelBatch* want = nullptr;
      auto it = std::lower_bound(s.batches.begin(), s.batches.end(), b->base,
                                 [](const BatchPtr& x, int64_t o) { return x->base < o; });
      if (it != s.batches.end() && (*it)->base == b->base) {
        want = it->get();
      } else if (auto a = archive_.find(b->base); a != archive_.end()) {
        want = a->second.get();
      }
      if (want == nullptr || want->bytes != b->bytes) {
        ok = false;
        break;
      }
    }
    if (ok) {
      match = &s;
      break;
    }
  }
  if (match == nullptr && tracing()) {
    for (const BatchPtr& b : got) {
      std::fprintf(stderr, "  recovered batch [%lld, %lld) %zu bytes\n", (long long)b->base,
                   (long long)b->next, b->bytes.size());
    }
    for (const ModelLog& s : history_) {
      std::fprintf(stderr, "  history state [%lld, %lld) %zu batches\n", (long long)s.start,
                   (long long)s.next, s.batches.size());
    }
  }
  const bool matched = match != nullptr;
  RC_ASSERT(matched);
  // The recovered log is the model from now on (built from the matched truth, so damaged,
  // unreadable batches keep their true bytes in the model).
  auto model_from = [&](const ModelLog& truth) {
    ModelLog r;
    r.start = start;
    r.next = next;
    r.batches = got;
    // Past the readable prefix, the batches `truth` (or, below its start, the archive) has.
    auto batch_at = [&](int64_t o) -> BatchPtr {
      auto it = std::upper_bound(truth.batches.begin(), truth.batches.end(), o,
                                 [](int64_t x, const BatchPtr& b) { return x < b->next; });
      if (it != truth.batches.end() && (*it)->base <= o) return *it;
      auto a = archive_.upper_bound(o);
      if (a != archive_.begin() && std::prev(a)->second->next > o) return std::prev(a)->second;
      return nullptr;
    };
    for (int64_t o = at; unreadable && o < next;) {
      BatchPtr b = batch_at(o);
      if (b == nullptr) break;
      r.batches.push_back(b);
      o = b->next;
    }
    return r;
  };
  ModelLog r = model_from(*match);
  // With an unreadable batch, other states that agree on the readable prefix may differ
  // after it, and then the model cannot know which one the disk holds. Raft repairs such a
  // log at once (the replica can neither serve it nor vote on it), and so does the model,
  // after keeping every candidate as a state a later crash may still recover.
  std::vector<ModelLog> others;
  if (unreadable) {
    auto same = [](const ModelLog& a, const ModelLog& b) {
      if (a.batches.size() != b.batches.size()) return false;
      for (size_t i = 0; i < a.batches.size(); i++) {
        if (a.batches[i]->base != b.batches[i]->base ||
            a.batches[i]->bytes != b.batches[i]->bytes) {
          return false;
        }
      }
      return true;
    };
    for (const ModelLog& s : history_) {
      if (&s == match) continue;
      if (next > s.next && !(s.batches.empty() && next <= s.start)) continue;
      bool prefix = true;
      for (const BatchPtr& b : got) {
        auto it = std::lower_bound(s.batches.begin(), s.batches.end(), b->base,
                                   [](const BatchPtr& x, int64_t o) { return x->base < o; });
        const ModelBatch* want = nullptr;
        if (it != s.batches.end() && (*it)->base == b->base) {
          want = it->get();
        } else if (auto a = archive_.find(b->base); a != archive_.end()) {
          want = a->second.get();
        }
        if (want == nullptr || want->bytes != b->bytes) prefix = false;
      }
      if (!prefix) continue;
      ModelLog o = model_from(s);
      if (!same(o, r)) others.push_back(std::move(o));
    }
  }
  history_.clear();
  for (ModelLog& o : others) history_.push_back(std::move(o));
  history_.push_back(std::move(r));
  history_id_++;
  floor_next_ = std::min(floor_next_, next);
  // The recovered start is the floor from now on: the recovery round made it durable (open()
  // returns only after it succeeded), and a start lost with a corrupted checkpoint was
  // reported above and must not be held against later recoveries that trust a newer one.
  floor_start_ = start;
  if (!others.empty()) {
    stat_ambiguous_recoveries++;
    for (int attempt = 0; attempt < 4 && log_->health().ok(); attempt++) {
      int64_t first = INT64_MAX;
      for (const Damage& d : log_->damage()) first = std::min(first, d.first_offset);
      RC_ASSERT(first <= at);
      if (cut_damage(std::max(first, start), /*among_candidates=*/true)) return;
    }
    // The log failed (the next command restarts it, and may recover any candidate), or the
    // damage begins in the batch holding a start that is not a batch boundary; then the
    // model keeps its first guess, which a later read may contradict (not seen so far).
  }
}

// --- rapidcheck commands ----------------------------------------------------------------------

namespace {

struct RcModel {};
using Cmd = rc::state::Command<RcModel, World>;

struct Append : Cmd {
  int records = *rc::gen::inRange(1, 5);
  bool new_epoch = *rc::gen::weightedElement<bool>({{1, true}, {8, false}});
  bool follower = *rc::gen::arbitrary<bool>();
  size_t value_bytes = *rc::gen::inRange<size_t>(0, 80);
  void run(const RcModel&, World& w) const override {
    w.append(records, new_epoch, follower, value_bytes);
  }
  void show(std::ostream& os) const override {
    os << "Append(" << records << ", new_epoch=" << new_epoch << ", follower=" << follower
       << ", value_bytes=" << value_bytes << ")";
  }
};

struct Sync : Cmd {
  int events = *rc::gen::weightedElement<int>({{3, -1}, {1, 0}, {1, 1}, {1, 3}});
  void run(const RcModel&, World& w) const override { w.sync(events); }
  void show(std::ostream& os) const override { os << "Sync(run " << events << ")"; }
};

struct RunEvents : Cmd {
  int events = *rc::gen::inRange(1, 6);
  void run(const RcModel&, World& w) const override { w.run_events(events); }
  void show(std::ostream& os) const override { os << "RunEvents(" << events << ")"; }
};

struct Truncate : Cmd {
  uint32_t where = *rc::gen::arbitrary<uint32_t>();
  void run(const RcModel&, World& w) const override { w.truncate(where); }
  void show(std::ostream& os) const override { os << "Truncate(" << where << ")"; }
};

struct AdvanceStart : Cmd {
  uint32_t where = *rc::gen::arbitrary<uint32_t>();
  bool beyond = *rc::gen::weightedElement<bool>({{1, true}, {6, false}});
  void run(const RcModel&, World& w) const override { w.advance_start(where, beyond); }
  void show(std::ostream& os) const override {
    os << "AdvanceStart(" << where << ", beyond=" << beyond << ")";
  }
};

struct MarkStable : Cmd {
  uint32_t where = *rc::gen::arbitrary<uint32_t>();
  void run(const RcModel&, World& w) const override { w.mark_stable(where); }
  void show(std::ostream& os) const override { os << "MarkStable(" << where << ")"; }
};

struct Read : Cmd {
  uint32_t where = *rc::gen::arbitrary<uint32_t>();
  uint32_t max_bytes = *rc::gen::inRange<uint32_t>(1, 2000);
  void run(const RcModel&, World& w) const override { w.read(where, max_bytes); }
  void show(std::ostream& os) const override {
    os << "Read(" << where << ", max " << max_bytes << ")";
  }
};

struct Crash : Cmd {
  bool power_loss = *rc::gen::weightedElement<bool>({{3, true}, {1, false}});
  void run(const RcModel&, World& w) const override { w.crash(power_loss); }
  void show(std::ostream& os) const override { os << "Crash(power_loss=" << power_loss << ")"; }
};

struct Repair : Cmd {
  void run(const RcModel&, World& w) const override { w.repair(); }
  void show(std::ostream& os) const override { os << "Repair"; }
};

struct Corrupt : Cmd {
  uint32_t file = *rc::gen::arbitrary<uint32_t>();
  uint32_t where = *rc::gen::arbitrary<uint32_t>();
  int bit = *rc::gen::inRange(0, 8);
  void run(const RcModel&, World& w) const override { w.corrupt(file, where, bit); }
  void show(std::ostream& os) const override {
    os << "Corrupt(" << file << ", " << where << ", bit " << bit << ")";
  }
};

}  // namespace

void run_model_property(const std::string& name,
                        std::function<std::unique_ptr<DiskHarness>(uint64_t seed)> make_harness,
                        ModelParams params, int default_cases, int max_commands) {
  rc::detail::TestParams test_params = rc::detail::configuration().testParams;
  // RC_PARAMS may fix the seed (make test does, for a reproducible CI) without changing the
  // case count; only its max_success overrides the default (make soak).
  const char* rc_params = std::getenv("RC_PARAMS");
  if (rc_params == nullptr ||
      std::string_view(rc_params).find("max_success") == std::string_view::npos) {
    test_params.maxSuccess = default_cases;
  }
  test_params.maxSize = std::min(test_params.maxSize, max_commands);
  rc::detail::TestMetadata metadata;
  metadata.id = name;
  metadata.description = name;
  uint64_t crashes = 0, truncated = 0, cases = 0, commands_run = 0, appends = 0, repairs = 0,
           ambiguous = 0;
  auto property = [&] {
    const uint64_t seed = *rc::gen::arbitrary<uint64_t>();
    World world(make_harness(seed), params);
    auto commands =
        params.corruption
            ? *rc::state::gen::commands(
                  RcModel{},
                  rc::state::gen::execOneOfWithArgs<Append, Append, Append, Append, Sync, Sync,
                                                    RunEvents, Truncate, AdvanceStart, MarkStable,
                                                    Read, Read, Crash, Corrupt, Repair>())
            : *rc::state::gen::commands(
                  RcModel{},
                  rc::state::gen::execOneOfWithArgs<Append, Append, Append, Append, Sync, Sync,
                                                    RunEvents, Truncate, AdvanceStart, MarkStable,
                                                    Read, Read, Crash>());
    rc::state::runAll(commands, RcModel{}, world);
    world.stat_commands += commands.size();
    world.check_all_reads();
    crashes += world.stat_crashes;
    truncated += world.stat_truncated_recoveries;
    commands_run += world.stat_commands;
    appends += world.stat_appends;
    repairs += world.stat_repairs;
    ambiguous += world.stat_ambiguous_recoveries;
    cases++;
  };
  const auto result = rc::detail::checkTestable(property, metadata, test_params);
  std::printf(
      "%s: %llu cases, %llu commands, %llu appends, %llu restarts, %llu recoveries that cut a "
      "tail, %llu repairs of damage (%llu at once after an ambiguous recovery)\n",
      name.c_str(), (unsigned long long)cases, (unsigned long long)commands_run,
      (unsigned long long)appends, (unsigned long long)crashes, (unsigned long long)truncated,
      (unsigned long long)repairs, (unsigned long long)ambiguous);
  if (!result.template is<rc::detail::SuccessResult>()) {
    std::ostringstream ss;
    rc::detail::printResultMessage(result, ss);
    FAIL() << ss.str();
  }
}

}  // namespace keel::log::testing
