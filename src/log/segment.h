// On-disk layout of one segment file: a sequence of frames, each
//
//   u32 frame CRC | batch bytes (a RecordBatch v2, exactly as stored and served)
//
// The frame CRC is CRC-32C of the batch's first 21 bytes (baseOffset, batchLength,
// partitionLeaderEpoch, magic, crc): exactly the bytes the Kafka CRC (over 21..end) leaves
// out, so together they cover every stored byte. Segment files are named by their base
// offset, "%020d.seg". A segment never has a file header: an empty file is an empty segment.
#pragma once

#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "base/bytes.h"
#include "env/disk.h"
#include "log/batch.h"

namespace keel::log {

inline constexpr size_t kFrameHeaderBytes = 4;
inline constexpr size_t kFrameProbeBytes = kFrameHeaderBytes + kBatchHeaderBytes;

uint32_t frame_crc(ByteView batch);
// Appends a frame holding `batch` (which must be at least kBatchHeaderBytes) to `out`.
void append_frame(Bytes& out, ByteView batch);

// Checks the frame header at the start of `probe` (>= kFrameProbeBytes bytes): frame CRC
// and batch header. DataLoss / InvalidArgument as parse_batch_header. Does not check the
// Kafka CRC (the payload may not be loaded yet).
[[nodiscard]] absl::StatusOr<BatchHeader> parse_frame_header(ByteView probe,
                                                             size_t batch_bytes_max);
// Checks a whole frame (`frame` is header + batch, exactly): both CRCs.
[[nodiscard]] absl::StatusOr<BatchHeader> verify_frame(ByteView frame, size_t batch_bytes_max);
// The rest of verify_frame, for a frame whose header `h` parse_frame_header returned from
// these very bytes (not from an earlier read of them): its size and the Kafka CRC.
[[nodiscard]] absl::Status verify_frame_body(ByteView frame, const BatchHeader& h);

std::string segment_file_name(int64_t base_offset);
// Parses "%020d.seg"; false for any other name.
bool parse_segment_file_name(std::string_view name, int64_t* base_offset);

// One verified batch found by scan_frames.
struct ScannedBatch {
  BatchHeader header;
  uint64_t position = 0;  // of the frame in the file
  uint64_t frame_bytes = 0;
};

struct ScanResult {
  uint64_t end_position = 0;  // just after the last good frame
  int64_t next_offset = 0;    // after the last good batch
  int32_t last_epoch = 0;
  bool clean_end = false;   // stopped at the end of the file, not at a bad frame
  std::string stop_reason;  // why it stopped, when not clean
};

// Reads frames from `file` starting at `position` and verifies each fully (frame CRC, batch
// header, Kafka CRC, base offset == the expected next offset, epoch >= the previous one),
// calling on_batch for each good one, until the end of the file or the first bad frame.
// Reads in chunks of at most chunk_bytes (plus one batch). IO errors also stop the scan
// (reported in stop_reason; the caller treats the rest as unreadable).
ScanResult scan_frames(env::File& file, uint64_t position, int64_t expected_offset,
                       int32_t min_epoch, size_t batch_bytes_max,
                       absl::FunctionRef<void(const ScannedBatch&)> on_batch,
                       size_t chunk_bytes = 1u << 20);

}  // namespace keel::log
