// zstd compression for data Keel produces itself (snapshots, archived segments). Client
// record batches are never recompressed: the log stores them exactly as sent.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "base/bytes.h"

namespace keel::log {

// The largest blob Keel compresses or decompresses in one call: a bound on memory.
inline constexpr size_t kBlobBytesMax = 256u << 20;
inline constexpr int kBlobLevelDefault = 3;

// One zstd frame with its content size recorded. InvalidArgument if data is larger than
// kBlobBytesMax or level is outside zstd's range.
[[nodiscard]] absl::StatusOr<Bytes> compress_blob(ByteView data, int level = kBlobLevelDefault);

// Decompresses one zstd frame written by compress_blob. Rejects (DataLoss) a frame that is
// corrupt, lacks its content size, or would exceed decompressed_bytes_max (which must be <=
// kBlobBytesMax), before allocating.
[[nodiscard]] absl::StatusOr<Bytes> decompress_blob(ByteView frame,
                                                    size_t decompressed_bytes_max = kBlobBytesMax);

}  // namespace keel::log
