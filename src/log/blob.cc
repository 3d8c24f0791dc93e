#include "log/blob.h"

#include <zstd.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/check.h"

namespace keel::log {

absl::StatusOr<Bytes> compress_blob(ByteView data, int level) {
  if (data.size() > kBlobBytesMax) return absl::InvalidArgumentError("blob: too large");
  if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel()) {
    return absl::InvalidArgumentError(absl::StrCat("blob: bad level ", level));
  }
  Bytes out(ZSTD_compressBound(data.size()));
  // One-shot compression records the content size; the frame checksum (xxhash) makes a
  // corrupt blob fail to decompress instead of yielding wrong bytes.
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  KEEL_CHECK(cctx != nullptr);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  size_t n = ZSTD_compress2(cctx, out.data(), out.size(), data.data(), data.size());
  ZSTD_freeCCtx(cctx);
  if (ZSTD_isError(n)) return absl::InternalError(ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

absl::StatusOr<Bytes> decompress_blob(ByteView frame, size_t decompressed_bytes_max) {
  KEEL_CHECK_LE(decompressed_bytes_max, kBlobBytesMax);
  unsigned long long size = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) {
    return absl::DataLossError("blob: not a zstd frame with a content size");
  }
  if (size > decompressed_bytes_max) {
    return absl::DataLossError(absl::StrCat("blob: content size ", size, " over limit"));
  }
  size_t compressed = ZSTD_findFrameCompressedSize(frame.data(), frame.size());
  if (ZSTD_isError(compressed) || compressed != frame.size()) {
    return absl::DataLossError("blob: frame size mismatch");
  }
  Bytes out(size);
  size_t n = ZSTD_decompress(out.data(), out.size(), frame.data(), frame.size());
  if (ZSTD_isError(n)) return absl::DataLossError(ZSTD_getErrorName(n));
  if (n != size) return absl::DataLossError("blob: short content");
  return out;
}

}  // namespace keel::log
