// The model-based test of the log (rapidcheck rc::state), shared by the simulated-disk and the
// real-file variants.
//
// The reference model lives in the system-under-test wrapper (World), not in rapidcheck's
// model state, because a crash has many legal outcomes: the model records every state the
// log went through since its last known-durable point, and after a crash accepts any
// recovered log that is a prefix of one of them and keeps everything known durable. The
// rapidcheck model only counts, so that commands can be replayed while shrinking.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "env/disk.h"
#include "log/log.h"

namespace keel::log::testing {

// What the disk under test can do besides env::Disk.
class DiskHarness {
 public:
  virtual ~DiskHarness() = default;
  virtual env::Disk& disk() = 0;
  // Runs IO completions until nothing is pending.
  virtual void run_until_idle() = 0;
  // Runs at most `events` completions.
  virtual void run_some(int events) = 0;
  // Power loss: unsynced data may be lost or torn. False if the disk cannot do it (then the
  // test restarts the process only).
  virtual bool crash() = 0;
  // Flips a bit of a durable byte of `path` at a fraction of its durable size (1/2^32 units).
  // False if not supported or nothing durable there.
  virtual bool corrupt(const std::string& path, uint32_t where, int bit) = 0;
  // True once the disk corrupted anything by itself (random in-model corruption).
  virtual bool corrupted() const = 0;
};

struct ModelBatch {
  int64_t base = 0;
  int64_t next = 0;
  int32_t epoch = 0;
  Bytes bytes;  // as stored (offset stamped)
};
using BatchPtr = std::shared_ptr<const ModelBatch>;

struct ModelLog {
  int64_t start = 0;
  int64_t next = 0;
  std::vector<BatchPtr> batches;  // each with next > start, contiguous, ending at `next`
};

struct ModelParams {
  bool corruption = false;  // Corrupt commands are generated
  Options options;
};

class World {
 public:
  World(std::unique_ptr<DiskHarness> harness, ModelParams params);
  ~World();

  // Commands (each checks what it can and fails the property through RC_ASSERT).
  void append(int records, bool new_epoch, bool follower, size_t value_bytes);
  void sync(int run_events);  // run_events < 0: until idle
  void run_events(int events);
  void truncate(uint32_t where);
  void advance_start(uint32_t where, bool beyond_end);
  void mark_stable(uint32_t where);
  void read(uint32_t where, uint32_t max_bytes);
  void crash(bool power_loss);
  void corrupt(uint32_t file_pick, uint32_t where, int bit);
  // Raft's repair of damage: truncate_damaged at the first damaged offset, then the model's
  // batches from there appended again (as fetched from a peer). No-op without damage.
  void repair();
  void check_all_reads();

  const ModelLog& current() const { return history_.back(); }
  uint64_t stat_crashes = 0;
  uint64_t stat_truncated_recoveries = 0;
  uint64_t stat_commands = 0;
  uint64_t stat_appends = 0;
  uint64_t stat_repairs = 0;               // truncate_damaged calls that succeeded
  uint64_t stat_ambiguous_recoveries = 0;  // repaired at once (see check_recovered)

 private:
  void open();
  void push_state(ModelLog s);
  void restart_if_failed();
  void check_recovered();
  // truncate_damaged(offset) and the model's state after it; false if the log refused.
  // among_candidates: history_ holds only the candidates of an ambiguous recovery (see
  // check_recovered), and the model follows the first one, from its guess back, whose batches
  // the log's cut agrees with.
  bool cut_damage(int64_t offset, bool among_candidates = false);
  void check_read_result(int64_t from, size_t max_bytes, const ReadResult& r);
  bool covered_by_damage(int64_t offset) const;
  bool corrupted() const { return corrupted_ || harness_->corrupted(); }
  const ModelBatch* model_batch_at(int64_t base) const;

  std::unique_ptr<DiskHarness> harness_;
  ModelParams params_;
  std::unique_ptr<Log> log_;
  // States since the last known-durable point; history_id_ is the id of history_.front().
  std::deque<ModelLog> history_;
  uint64_t history_id_ = 0;
  int64_t floor_next_ = 0;               // every crash must recover at least up to here...
  int64_t floor_start_ = 0;              // ...and start at or after here
  std::map<int64_t, BatchPtr> archive_;  // batches dropped by advance_start, by base
  int32_t epoch_ = 1;
  uint64_t tag_ = 0;
  bool corrupted_ = false;
  int64_t truncated_at_ = -1;          // lowest tail cut reported by the recoveries of this restart
  std::shared_ptr<bool> incarnation_;  // callbacks of a crashed log instance are ignored
};

// Runs the model-based property with `make_harness` for each case. Case count: 10,000, or
// RC_PARAMS's max_success when RC_PARAMS is set (make soak sets it).
void run_model_property(const std::string& name,
                        std::function<std::unique_ptr<DiskHarness>(uint64_t seed)> make_harness,
                        ModelParams params, int default_cases, int max_commands);

}  // namespace keel::log::testing
