// Properties of the simulated disk against simple models, over random operation sequences
// and random crash weights (rapidcheck).
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <deque>
#include <map>
#include <set>
#include <tuple>

#include "tests/simdisk/simdisk_util.h"

namespace keel::sim::testing {
namespace {

using env::kSectorBytes;
using env::OpenMode;

// What one file must look like, tracked from the caller's side only.
struct FileModel {
  struct InFlight {
    Bytes snapshot;              // the content at the sync call
    std::set<uint64_t> touched;  // sectors written since the call
    uint64_t low = 0;            // smallest size since the call
  };
  Bytes current;
  Bytes durable;             // content at the durable point
  std::set<uint64_t> dirty;  // sectors written since the durable point
  uint64_t low = 0;          // smallest size since the durable point
  std::deque<InFlight> in_flight;

  void write(uint64_t offset, const Bytes& data) {
    if (offset + data.size() > current.size()) current.resize(offset + data.size(), 0);
    std::copy(data.begin(), data.end(), current.begin() + long(offset));
    for (uint64_t s = offset / kSectorBytes; s <= (offset + data.size() - 1) / kSectorBytes; s++) {
      dirty.insert(s);
      for (InFlight& f : in_flight) f.touched.insert(s);
    }
  }
  void truncate(uint64_t size) {
    current.resize(size, 0);
    low = std::min(low, size);
    for (InFlight& f : in_flight) f.low = std::min(f.low, size);
  }
  void sync_called() { in_flight.push_back(InFlight{current, {}, current.size()}); }
  void sync_completed() {
    RC_ASSERT(!in_flight.empty());
    durable = std::move(in_flight.front().snapshot);
    dirty = std::move(in_flight.front().touched);
    low = in_flight.front().low;
    in_flight.pop_front();
  }
  // Checks a post-crash content against the model, then adopts it.
  void crashed(const Bytes& after) {
    const uint64_t ds = durable.size();
    RC_ASSERT(after.size() >= std::min(low, ds));
    RC_ASSERT(after.size() <= std::max<uint64_t>(ds, current.size()));
    // Sectors nobody wrote since the durable point hold the durable bytes, with the pending
    // shrink either applied (zeros from `low`) or not, the same way for the whole file.
    bool as_durable = true, as_shrunk = true;
    for (uint64_t i = 0; i < after.size(); i++) {
      if (dirty.contains(i / kSectorBytes)) continue;
      const uint8_t whole = i < ds ? durable[i] : 0;
      const uint8_t shrunk = i < std::min(low, ds) ? durable[i] : 0;
      as_durable = as_durable && after[i] == whole;
      as_shrunk = as_shrunk && after[i] == shrunk;
    }
    // The size is the base size (durable, or `low` if the shrink applied) or the end of a
    // surviving written sector past it.
    auto size_ok = [&](uint64_t base) {
      if (after.size() == base) return true;
      for (uint64_t s : dirty) {
        const uint64_t end = std::min<uint64_t>(current.size(), (s + 1) * kSectorBytes);
        if (end > base && end == after.size()) return true;
      }
      return false;
    };
    RC_ASSERT((as_durable && size_ok(ds)) || (low < ds && as_shrunk && size_ok(low)));
    if (dirty.empty() && low >= ds) RC_ASSERT(after == durable);
    current = durable = after;
    dirty.clear();
    low = after.size();
    in_flight.clear();
  }
};

RC_GTEST_PROP(SimDiskProperty, FileCrashStatesStayWithinTheModel, ()) {
  const uint64_t seed = *rc::gen::arbitrary<uint64_t>();
  DiskFaults faults;
  faults.crash_keep_weight = *rc::gen::inRange<uint32_t>(0, 4);
  faults.crash_drop_weight = *rc::gen::inRange<uint32_t>(0, 4);
  faults.crash_tear_weight = *rc::gen::inRange<uint32_t>(0, 4);
  if (faults.crash_keep_weight + faults.crash_drop_weight + faults.crash_tear_weight == 0) {
    faults.crash_drop_weight = 1;
  }
  const auto ops =
      *rc::gen::container<std::vector<std::tuple<uint8_t, uint32_t, uint16_t>>>(rc::gen::tuple(
          rc::gen::inRange<uint8_t>(0, 100), rc::gen::inRange<uint32_t>(0, 6 * kSectorBytes),
          rc::gen::inRange<uint16_t>(1, 6000)));
  Rig rig(seed, faults);
  auto file = rig.open("log");
  RC_ASSERT(rig.sync_dir("").ok());
  FileModel model;
  uint64_t completions_expected = 0, completions = 0, generation = 0;
  auto call_sync = [&] {
    model.sync_called();
    completions_expected++;
    file->sync([&, g = generation](absl::Status s) {
      RC_ASSERT(s.ok());
      RC_ASSERT(g == generation);  // never a callback from before a crash
      model.sync_completed();
      completions++;
    });
  };
  uint8_t tag = 0;
  for (const auto& [kind, offset, length] : ops) {
    if (kind < 40) {
      const Bytes data = pattern(length, ++tag);
      RC_ASSERT(file->write(offset, data).ok());
      model.write(offset, data);
    } else if (kind < 48) {
      RC_ASSERT(file->truncate(offset).ok());
      model.truncate(offset);
    } else if (kind < 63) {
      call_sync();
    } else if (kind < 85) {
      rig.scheduler.step();
    } else if (kind < 90) {
      while (rig.scheduler.step()) {
      }
    } else {
      rig.disk.crash();
      generation++;
      completions_expected = completions;
      const Bytes after = *rig.read_all("log");
      model.crashed(after);
      file = rig.open("log", OpenMode::kExisting);
    }
    RC_ASSERT(file->size() == model.current.size());
    RC_ASSERT(*rig.read_all("log") == model.current);
  }
  // Finally everything syncs: the durable image is exactly the content.
  call_sync();
  while (rig.scheduler.step()) {
  }
  RC_ASSERT(completions == completions_expected);
  RC_ASSERT(*rig.disk.pending_sectors("log") == 0u);
  rig.disk.crash();
  RC_ASSERT(*rig.read_all("log") == model.current);
}

// Names in one directory: after a crash the directory equals its durable state plus some
// prefix of the operations not yet covered by a completed sync_dir.
RC_GTEST_PROP(SimDiskProperty, NamespaceCrashKeepsAPrefixOfPendingOperations, ()) {
  const uint64_t seed = *rc::gen::arbitrary<uint64_t>();
  const auto ops = *rc::gen::container<std::vector<std::tuple<uint8_t, uint8_t, uint8_t>>>(
      rc::gen::tuple(rc::gen::inRange<uint8_t>(0, 100), rc::gen::inRange<uint8_t>(0, 5),
                     rc::gen::inRange<uint8_t>(0, 5)));
  using Names = std::map<std::string, uint64_t>;  // name -> file id (its durable content)
  struct Op {
    uint64_t seq;
    Names after;  // the directory once this op is applied on top of the previous ones
  };
  Rig rig(seed);
  Names current, durable;
  std::deque<Op> pending;
  uint64_t seq = 0, next_id = 1;
  std::deque<uint64_t> dir_syncs;  // upto-seq of each sync_dir in flight
  auto name = [](uint8_t n) { return "f" + std::to_string(n); };
  auto push = [&] { pending.push_back(Op{++seq, current}); };
  for (const auto& [kind, a, b] : ops) {
    if (kind < 30) {
      if (current.contains(name(a))) continue;
      const uint64_t id = next_id++;
      auto f = rig.open(name(a));
      Bytes content(8);
      put_be64(content.data(), id);
      RC_ASSERT(f->write(0, content).ok());
      RC_ASSERT(rig.sync(*f).ok());  // data durable before any name games
      current[name(a)] = id;
      push();
    } else if (kind < 50) {
      const bool ok = rig.disk.rename(name(a), name(b)).ok();
      RC_ASSERT(ok == current.contains(name(a)));
      if (!ok || a == b) continue;
      current[name(b)] = current[name(a)];
      current.erase(name(a));
      push();
    } else if (kind < 60) {
      const bool ok = rig.disk.remove(name(a)).ok();
      RC_ASSERT(ok == current.contains(name(a)));
      if (!ok) continue;
      current.erase(name(a));
      push();
    } else if (kind < 75) {
      dir_syncs.push_back(seq);
      rig.disk.sync_dir("", [&](absl::Status s) {
        RC_ASSERT(s.ok());
        const uint64_t upto = dir_syncs.front();
        dir_syncs.pop_front();
        while (!pending.empty() && pending.front().seq <= upto) {
          durable = pending.front().after;
          pending.pop_front();
        }
      });
    } else if (kind < 92) {
      rig.scheduler.step();
    } else {
      rig.disk.crash();
      dir_syncs.clear();
      Names after;
      const std::vector<std::string> names = *rig.disk.list("");
      for (const std::string& n : names) {
        const Bytes content = *rig.read_all(n);
        RC_ASSERT(content.size() == 8u);
        after[n] = get_be64(content.data());
      }
      bool matched = after == durable;
      for (const Op& op : pending) matched = matched || after == op.after;
      RC_ASSERT(matched);
      current = durable = after;
      pending.clear();
    }
    std::vector<std::string> want;
    for (const auto& [n, id] : current) want.push_back(n);
    RC_ASSERT(*rig.disk.list("") == want);
  }
}

}  // namespace
}  // namespace keel::sim::testing
