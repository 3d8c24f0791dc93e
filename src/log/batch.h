// Kafka RecordBatch v2 ("magic 2"): the unit Keel stores, replicates and serves. One Raft
// entry is one batch; the leader stamps baseOffset, and the Raft term goes into
// partitionLeaderEpoch. Layout (big-endian, see shared/kafka-protocol/README.md section 5):
//
//   0 baseOffset i64 | 8 batchLength i32 (bytes after this field) | 12 partitionLeaderEpoch
//   i32 | 16 magic i8 = 2 | 17 crc u32 = CRC-32C of bytes 21..end | 21 attributes i16 | 23
//   lastOffsetDelta i32 | 27 baseTimestamp i64 | 35 maxTimestamp i64 | 43 producerId i64 |
//   51 producerEpoch i16 | 53 baseSequence i32 | 57 recordsCount i32 | 61 records
//
// The Kafka CRC does not cover bytes 0..20 (offset, length, epoch, magic, crc); the segment
// frame (segment.h) covers those on disk.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "base/bytes.h"

namespace keel::log {

inline constexpr size_t kBatchHeaderBytes = 61;
// Bytes 0..11 (baseOffset, batchLength) are not counted in batchLength.
inline constexpr size_t kBatchLengthPrefixBytes = 12;
inline constexpr size_t kBatchCrcStart = 21;
// The largest batch Keel accepts (Kafka's default message.max.bytes is ~1 MiB; 16 MiB leaves
// room for large producer batches while bounding memory per read).
inline constexpr size_t kBatchBytesMax = 16u << 20;
inline constexpr int8_t kMagicV2 = 2;

inline constexpr int16_t kAttrCodecMask = 0x7;
inline constexpr int16_t kAttrTimestampLogAppend = 1 << 3;
inline constexpr int16_t kAttrTransactional = 1 << 4;
inline constexpr int16_t kAttrControl = 1 << 5;

struct BatchHeader {
  int64_t base_offset = 0;
  int32_t batch_length = 0;
  int32_t leader_epoch = 0;
  int8_t magic = 0;
  uint32_t crc = 0;
  int16_t attributes = 0;
  int32_t last_offset_delta = 0;
  int64_t base_timestamp = 0;
  int64_t max_timestamp = 0;
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int32_t base_sequence = -1;
  int32_t records_count = 0;

  int64_t last_offset() const { return base_offset + last_offset_delta; }
  int64_t next_offset() const { return last_offset() + 1; }
  size_t total_bytes() const { return kBatchLengthPrefixBytes + size_t(batch_length); }
  bool is_control() const { return (attributes & kAttrControl) != 0; }
};

// Parses and checks the fixed header at the start of `bytes` (at least kBatchHeaderBytes):
// magic 2, kBatchHeaderBytes <= total size <= batch_bytes_max, lastOffsetDelta >= 0,
// recordsCount >= 0, baseOffset >= 0 and the last offset not overflowing. Does not check the
// CRC or that `bytes` holds the whole batch.
[[nodiscard]] absl::StatusOr<BatchHeader> parse_batch_header(ByteView bytes,
                                                             size_t batch_bytes_max);

// Checks that `batch` is exactly one well-formed batch (parse_batch_header) whose CRC
// matches. Returns DataLoss for a bad CRC, InvalidArgument for a malformed header.
[[nodiscard]] absl::StatusOr<BatchHeader> validate_batch(ByteView batch,
                                                         size_t batch_bytes_max = kBatchBytesMax);

// The CRC-32C the batch should carry (over bytes 21..end). Requires size >= 21.
uint32_t compute_batch_crc(ByteView batch);

// Overwrite the fields the broker stamps (not covered by the Kafka CRC).
void set_base_offset(std::span<uint8_t> batch, int64_t base_offset);
void set_leader_epoch(std::span<uint8_t> batch, int32_t leader_epoch);

// Building batches (leader no-ops, tests, benchmarks, the simulator's producers).
struct Record {
  std::optional<Bytes> key;
  std::optional<Bytes> value;
  int64_t timestamp_delta = 0;
};
struct BatchSpec {
  int64_t base_offset = 0;
  int32_t leader_epoch = 0;
  int16_t attributes = 0;  // codec must be 0: the builder does not compress
  int64_t base_timestamp = 0;
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int32_t base_sequence = -1;
  std::vector<Record> records;  // at least one
};
// Encodes an uncompressed batch with a valid CRC. Requires at least one record.
Bytes build_batch(const BatchSpec& spec);

// Decodes the records of an uncompressed batch (tests and tools; the broker never needs to).
[[nodiscard]] absl::StatusOr<std::vector<Record>> decode_records(ByteView batch);

}  // namespace keel::log
