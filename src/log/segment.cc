#include "log/segment.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/check.h"
#include "base/crc32c.h"

namespace keel::log {

uint32_t frame_crc(ByteView batch) {
  KEEL_CHECK(batch.size() >= kBatchCrcStart);
  // A fixed seed so that an all-zero region never looks like a valid frame.
  return crc32c_extend(0x4b45454cu, batch.first(kBatchCrcStart));
}

void append_frame(Bytes& out, ByteView batch) {
  KEEL_CHECK(batch.size() >= kBatchHeaderBytes);
  size_t at = out.size();
  out.resize(at + kFrameHeaderBytes);
  put_be32(&out[at], frame_crc(batch));
  out.insert(out.end(), batch.begin(), batch.end());
}

absl::StatusOr<BatchHeader> parse_frame_header(ByteView probe, size_t batch_bytes_max) {
  if (probe.size() < kFrameProbeBytes) return absl::DataLossError("frame: short");
  ByteView batch = probe.subspan(kFrameHeaderBytes);
  if (frame_crc(batch) != get_be32(probe.data())) return absl::DataLossError("frame: header CRC");
  auto h = parse_batch_header(batch, batch_bytes_max);
  if (!h.ok()) return absl::DataLossError(h.status().message());
  return h;
}

absl::StatusOr<BatchHeader> verify_frame(ByteView frame, size_t batch_bytes_max) {
  auto h = parse_frame_header(frame, batch_bytes_max);
  if (!h.ok()) return h;
  if (absl::Status s = verify_frame_body(frame, *h); !s.ok()) return s;
  return h;
}

absl::Status verify_frame_body(ByteView frame, const BatchHeader& h) {
  if (h.total_bytes() + kFrameHeaderBytes != frame.size()) {
    return absl::DataLossError("frame: size mismatch");
  }
  if (compute_batch_crc(frame.subspan(kFrameHeaderBytes)) != h.crc) {
    return absl::DataLossError("frame: batch CRC");
  }
  return absl::OkStatus();
}

std::string segment_file_name(int64_t base_offset) {
  KEEL_CHECK(base_offset >= 0);
  return absl::StrFormat("%020d.seg", base_offset);
}

bool parse_segment_file_name(std::string_view name, int64_t* base_offset) {
  if (name.size() != 24 || name.substr(20) != ".seg") return false;
  int64_t v = 0;
  for (size_t i = 0; i < 20; i++) {
    char c = name[i];
    if (c < '0' || c > '9') return false;
    if (v > (INT64_MAX - (c - '0')) / 10) return false;
    v = v * 10 + (c - '0');
  }
  *base_offset = v;
  return true;
}

ScanResult scan_frames(env::File& file, uint64_t position, int64_t expected_offset,
                       int32_t min_epoch, size_t batch_bytes_max,
                       absl::FunctionRef<void(const ScannedBatch&)> on_batch, size_t chunk_bytes) {
  ScanResult r;
  r.end_position = position;
  r.next_offset = expected_offset;
  r.last_epoch = min_epoch;
  const uint64_t size = file.size();
  Bytes buf;
  uint64_t buf_pos = position;  // file position of buf[0]
  uint64_t reads = 0;           // file reads into buf so far
  // Ensures buf holds [pos, pos + n) if the file has it; false at the end of the file.
  auto load = [&](uint64_t pos, size_t n) -> absl::StatusOr<bool> {
    if (pos + n > size) return false;
    if (pos >= buf_pos && pos + n <= buf_pos + buf.size()) return true;
    reads++;
    size_t want = size_t(std::min<uint64_t>(std::max(n, chunk_bytes), size - pos));
    buf.resize(want);
    auto got = file.read(pos, buf);
    if (!got.ok()) return got.status();
    buf.resize(*got);
    buf_pos = pos;
    return *got >= n;
  };
  uint64_t pos = position;
  while (true) {
    if (pos == size) {
      r.clean_end = true;
      break;
    }
    auto have = load(pos, kFrameProbeBytes);
    if (!have.ok() || !*have) {
      r.stop_reason = have.ok() ? "torn frame header" : std::string(have.status().message());
      break;
    }
    auto h =
        parse_frame_header(ByteView(buf).subspan(pos - buf_pos, kFrameProbeBytes), batch_bytes_max);
    if (!h.ok()) {
      r.stop_reason = std::string(h.status().message());
      break;
    }
    uint64_t frame_bytes = kFrameHeaderBytes + h->total_bytes();
    const uint64_t reads_before = reads;
    have = load(pos, frame_bytes);
    if (!have.ok() || !*have) {
      r.stop_reason = have.ok() ? "torn batch" : std::string(have.status().message());
      break;
    }
    const ByteView frame = ByteView(buf).subspan(pos - buf_pos, frame_bytes);
    // The header checked above is still in buf unless the frame had to be read again.
    absl::StatusOr<BatchHeader> v = h;
    if (reads != reads_before) {
      v = verify_frame(frame, batch_bytes_max);
    } else if (absl::Status s = verify_frame_body(frame, *h); !s.ok()) {
      v = s;
    }
    if (!v.ok()) {
      r.stop_reason = std::string(v.status().message());
      break;
    }
    if (v->base_offset != r.next_offset) {
      r.stop_reason =
          absl::StrCat("offset ", v->base_offset, " where ", r.next_offset, " was expected");
      break;
    }
    if (v->leader_epoch < r.last_epoch) {
      r.stop_reason = absl::StrCat("epoch ", v->leader_epoch, " after ", r.last_epoch);
      break;
    }
    on_batch(ScannedBatch{*v, pos, frame_bytes});
    pos += frame_bytes;
    r.end_position = pos;
    r.next_offset = v->next_offset();
    r.last_epoch = v->leader_epoch;
  }
  return r;
}

}  // namespace keel::log
