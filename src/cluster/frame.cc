#include "cluster/frame.h"

#include <algorithm>
#include <utility>

#include "base/check.h"
#include "base/crc32c.h"

namespace keel::cluster {
namespace {

uint32_t frame_crc(const uint8_t* header, ByteView payload) {
  // Covers type, flags and length (header bytes 2..8) and the payload.
  uint32_t crc = crc32c_extend(0, ByteView(header + 2, 6));
  return crc32c_extend(crc, payload);
}

// Writes the header of a frame carrying `payload` at `header`.
void put_header(FrameType type, ByteView payload, uint8_t* header) {
  KEEL_CHECK(payload.size() <= kFramePayloadBytesMax, "frame payload {} bytes", payload.size());
  put_be16(header, kFrameMagic);
  header[2] = uint8_t(type);
  header[3] = 0;
  put_be32(header + 4, uint32_t(payload.size()));
  put_be32(header + 8, frame_crc(header, payload));
}

}  // namespace

bool frame_type_known(uint8_t type) {
  return type >= uint8_t(FrameType::kHello) && type <= uint8_t(FrameType::kClient);
}

void seal_frame(FrameType type, std::span<uint8_t> frame) {
  KEEL_CHECK(frame.size() >= kFrameHeaderBytes);
  put_header(type, frame.subspan(kFrameHeaderBytes), frame.data());
}

void encode_frame(FrameType type, ByteView payload, Bytes& out) {
  uint8_t header[kFrameHeaderBytes];
  put_header(type, payload, header);
  // One allocation for header and payload (keeping geometric growth for a buffer that
  // collects many frames).
  const size_t needed = out.size() + kFrameHeaderBytes + payload.size();
  if (needed > out.capacity()) out.reserve(std::max(needed, 2 * out.capacity()));
  out.insert(out.end(), header, header + kFrameHeaderBytes);
  out.insert(out.end(), payload.begin(), payload.end());
}

void FrameDecoder::feed_in_place(ByteView bytes) {
  if (!error_.ok()) return;
  // Bytes still in place (a nested call) come first; after a buffered partial frame, these
  // are buffered too.
  buffer_in_place();
  if (consumed_ < buffer_.size()) return feed(bytes);
  in_place_ = bytes;
}

void FrameDecoder::buffer_in_place() {
  if (in_place_.empty()) return;
  const ByteView rest = std::exchange(in_place_, ByteView());
  feed(rest);
}

void FrameDecoder::feed(ByteView bytes) {
  if (!error_.ok()) return;
  buffer_in_place();
  // Compact before growing, so the buffer holds at most one partial frame plus new bytes.
  if (consumed_ > 0 && consumed_ == buffer_.size()) {
    buffer_.clear();
    consumed_ = 0;
  } else if (consumed_ > (1u << 20)) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + consumed_);
    consumed_ = 0;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

absl::StatusOr<std::optional<Frame>> FrameDecoder::next() {
  auto view = next_view();
  if (!view.ok()) return view.status();
  if (!view->has_value()) return std::optional<Frame>();
  const ByteView payload = (*view)->payload;
  return std::optional<Frame>(Frame{(*view)->type, Bytes(payload.begin(), payload.end())});
}

absl::StatusOr<std::optional<FrameView>> FrameDecoder::next_view() {
  if (!error_.ok()) return error_;
  const bool in_place = !in_place_.empty();
  const size_t available = in_place ? in_place_.size() : buffer_.size() - consumed_;
  const uint8_t* h = in_place ? in_place_.data() : buffer_.data() + consumed_;
  auto need_more = [&] {
    buffer_in_place();  // the bytes fed in place may go away after this
    return std::optional<FrameView>();
  };
  if (available < kFrameHeaderBytes) return need_more();
  const uint32_t length = get_be32(h + 4);
  if (get_be16(h) != kFrameMagic) {
    error_ = absl::DataLossError("peer frame: bad magic");
  } else if (!frame_type_known(h[2])) {
    error_ = absl::InvalidArgumentError(fmt::format("peer frame: unknown type {}", h[2]));
  } else if (h[3] != 0) {
    error_ = absl::InvalidArgumentError("peer frame: unknown flags");
  } else if (length > kFramePayloadBytesMax) {
    error_ = absl::ResourceExhaustedError(fmt::format("peer frame: {} bytes over limit", length));
  }
  if (!error_.ok()) return error_;
  if (available < kFrameHeaderBytes + length) return need_more();
  ByteView payload(h + kFrameHeaderBytes, length);
  if (frame_crc(h, payload) != get_be32(h + 8)) {
    error_ = absl::DataLossError("peer frame: checksum mismatch");
    return error_;
  }
  if (in_place) {
    in_place_ = in_place_.subspan(kFrameHeaderBytes + length);
  } else {
    consumed_ += kFrameHeaderBytes + length;
  }
  return std::optional<FrameView>(FrameView{FrameType(h[2]), payload});
}

}  // namespace keel::cluster
