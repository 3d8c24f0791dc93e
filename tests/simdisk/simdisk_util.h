// Helpers shared by the simulated-disk tests: a scheduler plus one SimDisk, and blocking-style
// wrappers that run the scheduler until a completion arrives.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "base/bytes.h"
#include "env/disk.h"
#include "sim/disk.h"
#include "sim/scheduler.h"

namespace keel::sim::testing {

struct Rig {
  explicit Rig(uint64_t seed, const DiskFaults& faults = {})
      : disk(scheduler, env::Random(seed), "n1") {
    disk.set_faults(faults);
  }
  Scheduler scheduler;
  SimDisk disk;

  // Opens (creating if asked) or fails the test.
  std::unique_ptr<env::File> open(std::string_view path,
                                  env::OpenMode mode = env::OpenMode::kCreate);
  // Calls file.sync and runs the scheduler until it completes; returns its status.
  absl::Status sync(env::File& file);
  // Calls sync_dir and runs until it completes.
  absl::Status sync_dir(std::string_view dir);
  // The whole current content of `path` (through a fresh handle); nullopt if it is missing.
  std::optional<Bytes> read_all(std::string_view path);
  // The whole content, or the read error.
  absl::StatusOr<Bytes> try_read_all(std::string_view path);
};

// `n` bytes of a pattern that depends on `tag`, so different writes are distinguishable.
Bytes pattern(size_t n, uint8_t tag);

}  // namespace keel::sim::testing
