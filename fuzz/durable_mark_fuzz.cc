// Fuzzes DurableMark::open (cluster/durable_mark.h) over arbitrary file contents on the
// simulated disk: it must never crash; value() must come from a copy that is fully readable,
// carries the magic, a verifying CRC and its own slot number (the newest such copy, the
// lowest slot on a tie), damaged() must say exactly "bytes but no valid copy"; and a write()
// after open must be what the next open reads back.
//
// Input: u8 valid | u8 flags | u16 file size (big-endian, modulo kSlots + 1 sectors + 1) | up
// to 28 bytes for each of the kSlots (6) slots | up to 8 bytes: the offset to write. The file
// is zeros with slot i's bytes copied in at i * kSectorBytes (cut at the file size). Bit i of
// `valid` gives slot i a valid magic and CRC over its bytes (so the fuzzer reaches well-formed
// copies with arbitrary slot numbers, sequences and offsets). Bit i of `flags` (i < 6) makes
// sector i unreadable; bit 6 writes a mark after open and reopens.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>

#include "base/bytes.h"
#include "base/check.h"
#include "base/crc32c.h"
#include "cluster/durable_mark.h"
#include "sim/disk.h"
#include "sim/scheduler.h"

namespace {

using namespace keel;

constexpr size_t kSlotBytes = cluster::DurableMark::kSlotBytes;
constexpr int kSlots = cluster::DurableMark::kSlots;
constexpr uint32_t kMagic = 0x4B444D32;
const char* const kPath = "mark";

void run(sim::Scheduler& s) {
  for (int i = 0; i < 100000 && s.step(); i++) {
  }
}

// The oracle: what open() must find in `file` (nullopt slots are unreadable or absent).
struct Expected {
  std::optional<int64_t> value;
  bool damaged = false;
};

Expected expect(const Bytes& file, const bool unreadable[kSlots]) {
  Expected out;
  uint64_t best = 0;
  for (int slot = 0; slot < kSlots; slot++) {
    const size_t at = size_t(slot) * env::kSectorBytes;
    if (at >= file.size()) continue;
    if (unreadable[slot] || file.size() - at < kSlotBytes) continue;
    const uint8_t* p = file.data() + at;
    if (get_be32(p) != kMagic || crc32c(ByteView(p, 24)) != get_be32(p + 24)) continue;
    if (get_be32(p + 4) != uint32_t(slot)) continue;
    const uint64_t seq = get_be64(p + 8);
    const int64_t offset = int64_t(get_be64(p + 16));
    if (offset < 0 || seq > cluster::DurableMark::kSequenceMax) continue;
    if (!out.value || seq > best) {
      out.value = offset;
      best = seq;
    }
  }
  out.damaged = !file.empty() && !out.value;
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const uint8_t valid = data[0];
  const uint8_t flags = data[1];
  const size_t file_size = get_be16(data + 2) % ((kSlots + 1) * env::kSectorBytes + 1);
  ByteView rest(data + 4, size - 4);
  Bytes file(file_size, 0);
  bool unreadable[kSlots] = {};
  for (int slot = 0; slot < kSlots; slot++) {
    uint8_t buf[kSlotBytes] = {};
    const size_t n = std::min(rest.size(), kSlotBytes);
    std::memcpy(buf, rest.data(), n);
    rest = rest.subspan(n);
    if (valid & (1 << slot)) {
      put_be32(buf, kMagic);
      put_be32(buf + 24, crc32c(ByteView(buf, 24)));
    }
    const size_t at = size_t(slot) * env::kSectorBytes;
    if (at < file.size()) {
      std::memcpy(file.data() + at, buf, std::min(kSlotBytes, file.size() - at));
      unreadable[slot] = (flags & (1 << slot)) != 0;
    }
  }
  int64_t to_write = 0;
  for (size_t i = 0; i < 8 && i < rest.size(); i++) to_write = (to_write << 8) | rest[i];
  if (to_write < 0) to_write = -(to_write + 1);

  sim::Scheduler scheduler;
  sim::SimDisk disk(scheduler, env::Random(1), "fuzz");
  {
    auto f = disk.open(kPath, env::OpenMode::kCreate);
    KEEL_CHECK(f.ok());
    KEEL_CHECK((*f)->write(0, file).ok());
    bool synced = false;
    (*f)->sync([&](absl::Status s) { synced = s.ok(); });
    disk.sync_dir("", [](absl::Status) {});
    run(scheduler);
    KEEL_CHECK(synced);
  }
  for (int slot = 0; slot < kSlots; slot++) {
    if (unreadable[slot]) KEEL_CHECK(disk.make_unreadable(kPath, uint64_t(slot)).ok());
  }

  const Expected want = expect(file, unreadable);
  auto mark = cluster::DurableMark::open(disk, kPath);
  KEEL_CHECK(mark.ok(), "{}", mark.status().ToString());
  KEEL_CHECK((*mark)->value() == want.value, "value {} expected {}", (*mark)->value().value_or(-1),
             want.value.value_or(-1));
  KEEL_CHECK((*mark)->damaged() == want.damaged);
  if (!(flags & 64)) return 0;

  // A write after open is what the next open finds (it must not lose to an older copy).
  bool done = false;
  absl::Status status;
  (*mark)->write(to_write, [&](absl::Status s) {
    done = true;
    status = s;
  });
  run(scheduler);
  KEEL_CHECK(done);
  mark->reset();
  auto again = cluster::DurableMark::open(disk, kPath);
  KEEL_CHECK(again.ok());
  if (status.ok()) {
    KEEL_CHECK((*again)->value() == to_write, "wrote {}, reopened {}", to_write,
               (*again)->value().value_or(-1));
    KEEL_CHECK(!(*again)->damaged());
  } else {
    // A refused write changes nothing.
    KEEL_CHECK((*again)->value() == want.value);
  }
  return 0;
}
