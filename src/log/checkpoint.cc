#include "log/checkpoint.h"

#include "absl/status/status.h"
#include "base/check.h"

namespace keel::log {
namespace {
constexpr uint32_t kVersion = 1;
constexpr size_t kFixedBytes = 4 + 8 + 8 + 8 + 8 + 4;
constexpr size_t kRunBytes = 12;
}  // namespace

Bytes encode_checkpoint(const Checkpoint& cp) {
  KEEL_CHECK_LE(cp.epochs.size(), kEpochRunsMax);
  Bytes out(kFixedBytes + kRunBytes * cp.epochs.size());
  uint8_t* p = out.data();
  put_be32(p, kVersion);
  put_be64(p + 4, uint64_t(cp.log_start_offset));
  put_be64(p + 12, uint64_t(cp.segment_base));
  put_be64(p + 20, cp.position);
  put_be64(p + 28, uint64_t(cp.offset));
  put_be32(p + 36, uint32_t(cp.epochs.size()));
  p += kFixedBytes;
  for (const EpochRun& r : cp.epochs) {
    put_be64(p, uint64_t(r.start_offset));
    put_be32(p + 8, uint32_t(r.epoch));
    p += kRunBytes;
  }
  return out;
}

absl::StatusOr<Checkpoint> decode_checkpoint(ByteView b) {
  if (b.size() < kFixedBytes) return absl::DataLossError("checkpoint: short");
  if (get_be32(&b[0]) != kVersion) return absl::DataLossError("checkpoint: version");
  Checkpoint cp;
  cp.log_start_offset = int64_t(get_be64(&b[4]));
  cp.segment_base = int64_t(get_be64(&b[12]));
  cp.position = get_be64(&b[20]);
  cp.offset = int64_t(get_be64(&b[28]));
  uint32_t runs = get_be32(&b[36]);
  if (runs > kEpochRunsMax || b.size() != kFixedBytes + kRunBytes * size_t(runs)) {
    return absl::DataLossError("checkpoint: run count");
  }
  if (cp.log_start_offset < 0 || cp.offset < 0 || cp.segment_base < -1 ||
      cp.position > (uint64_t(1) << 62)) {
    return absl::DataLossError("checkpoint: negative field");
  }
  if (cp.segment_base >= 0 && (cp.segment_base > cp.offset)) {
    return absl::DataLossError("checkpoint: segment after offset");
  }
  for (uint32_t i = 0; i < runs; i++) {
    const uint8_t* p = &b[kFixedBytes + kRunBytes * i];
    EpochRun r{int64_t(get_be64(p)), int32_t(get_be32(p + 8))};
    if (r.start_offset < 0 || r.start_offset >= cp.offset) {
      return absl::DataLossError("checkpoint: run outside range");
    }
    if (!cp.epochs.empty() &&
        (r.start_offset <= cp.epochs.back().start_offset || r.epoch <= cp.epochs.back().epoch)) {
      return absl::DataLossError("checkpoint: runs not increasing");
    }
    cp.epochs.push_back(r);
  }
  return cp;
}

}  // namespace keel::log
