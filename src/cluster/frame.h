// Peer frames: how Keel nodes talk to each other over env::Network byte streams.
//
// Layout (big-endian), 12-byte header then payload:
//   u16 magic 0x4B46 ("KF") | u8 type | u8 flags (0) | u32 payload length | u32 CRC-32C of
//   (type, flags, length, payload)
// The decoder is fed arbitrary splits of the byte stream and yields whole frames. Any bad
// frame (magic, flags, length over kFramePayloadBytesMax, checksum, unknown type) is a
// protocol error: the caller closes that one connection. Nothing else is affected.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/bytes.h"

namespace keel::cluster {

inline constexpr size_t kFrameHeaderBytes = 12;
inline constexpr uint16_t kFrameMagic = 0x4B46;
// A Raft AppendEntries carries at most a few MiB of batches (flow control bounds it).
inline constexpr uint32_t kFramePayloadBytesMax = 16u << 20;

enum class FrameType : uint8_t {
  kHello = 1,   // payload: the sender's node name (first frame on every stream)
  kRaft = 2,    // payload: a serialized keel.cluster.PeerMessage
  kClient = 3,  // payload: a keel.cluster.ClientRequest or ClientResponse (client streams)
};
bool frame_type_known(uint8_t type);

struct Frame {
  FrameType type;
  Bytes payload;
};

// A decoded frame whose payload points into the decoder's buffer.
struct FrameView {
  FrameType type;
  ByteView payload;
};

// Appends the encoded frame to `out`. Requires payload.size() <= kFramePayloadBytesMax.
void encode_frame(FrameType type, ByteView payload, Bytes& out);
// Encodes a frame in place: `frame` is kFrameHeaderBytes of room, then the payload, whose
// header is written there (the bytes encode_frame would append for that payload).
void seal_frame(FrameType type, std::span<uint8_t> frame);

class FrameDecoder {
 public:
  // Buffers `bytes`. Bounded: at most one header plus kFramePayloadBytesMax is kept.
  void feed(ByteView bytes);
  // Like feed(), but whole frames are read in place: only bytes after the last whole frame
  // are buffered. `bytes` must stay valid until next_view() or next() returns std::nullopt
  // or an error, or the next feed; a caller that stops before must not use the decoder
  // again.
  void feed_in_place(ByteView bytes);
  // The next whole frame, std::nullopt if more bytes are needed, or an error (after which
  // the decoder is poisoned and keeps returning it).
  absl::StatusOr<std::optional<Frame>> next();
  // Like next(), without copying the payload: it stays valid until the next call to feed(),
  // next() or next_view(), or the decoder's destruction.
  absl::StatusOr<std::optional<FrameView>> next_view();

 private:
  void buffer_in_place();

  Bytes buffer_;
  size_t consumed_ = 0;
  // What feed_in_place() left to read in place; when set, buffer_ holds nothing unread.
  ByteView in_place_;
  absl::Status error_;
};

}  // namespace keel::cluster
