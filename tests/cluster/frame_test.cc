#include "cluster/frame.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

namespace keel::cluster {
namespace {

std::vector<Frame> decode_all(FrameDecoder& d, absl::Status* error = nullptr) {
  std::vector<Frame> frames;
  for (;;) {
    auto f = d.next();
    if (!f.ok()) {
      if (error != nullptr) *error = f.status();
      return frames;
    }
    if (!f->has_value()) return frames;
    frames.push_back(std::move(**f));
  }
}

// Encodes `payloads` as one stream of Raft frames, feeds it `chunk` bytes at a time and
// returns every frame decoded. In place, each chunk is overwritten once drained: whatever the
// decoder still needs, it must have buffered.
std::vector<Frame> feed_in_chunks(const std::vector<std::vector<uint8_t>>& payloads, size_t chunk,
                                  bool in_place) {
  Bytes stream;
  for (auto& p : payloads) encode_frame(FrameType::kRaft, p, stream);
  FrameDecoder d;
  std::vector<Frame> got;
  for (size_t at = 0; at < stream.size(); at += chunk) {
    Bytes bytes(stream.begin() + long(at),
                stream.begin() + long(std::min(at + chunk, stream.size())));
    if (in_place) {
      d.feed_in_place(bytes);
    } else {
      d.feed(bytes);
    }
    for (auto& f : decode_all(d)) got.push_back(std::move(f));
    std::fill(bytes.begin(), bytes.end(), 0xEE);
  }
  return got;
}

RC_GTEST_PROP(Frame, RoundTripsUnderAnySplit,
              (std::vector<std::vector<uint8_t>> payloads, uint8_t split)) {
  const std::vector<Frame> got = feed_in_chunks(payloads, size_t(split % 17) + 1, false);
  RC_ASSERT(got.size() == payloads.size());
  for (size_t i = 0; i < got.size(); i++) {
    RC_ASSERT(got[i].type == FrameType::kRaft);
    RC_ASSERT(got[i].payload == payloads[i]);
  }
}

RC_GTEST_PROP(Frame, InPlaceRoundTripsUnderAnySplit,
              (std::vector<std::vector<uint8_t>> payloads, uint8_t split)) {
  const std::vector<Frame> got = feed_in_chunks(payloads, size_t(split % 37) + 1, true);
  RC_ASSERT(got.size() == payloads.size());
  for (size_t i = 0; i < got.size(); i++) RC_ASSERT(got[i].payload == payloads[i]);
}

RC_GTEST_PROP(Frame, AnySingleBitFlipIsRejected, (std::vector<uint8_t> payload, size_t bit)) {
  Bytes stream;
  encode_frame(FrameType::kHello, payload, stream);
  bit %= stream.size() * 8;
  stream[bit / 8] ^= uint8_t(1u << (bit % 8));
  FrameDecoder d;
  d.feed(stream);
  absl::Status error;
  auto frames = decode_all(d, &error);
  // A flip in the length field may make the decoder wait for more bytes; it never yields
  // a frame.
  RC_ASSERT(frames.empty());
}

TEST(Frame, OversizedLengthIsRejectedBeforeBuffering) {
  uint8_t header[kFrameHeaderBytes] = {0x4B, 0x46, 2, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0};
  FrameDecoder d;
  d.feed(ByteView(header, sizeof header));
  auto f = d.next();
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(d.next().ok()) << "an error poisons the decoder";
}

TEST(Frame, UnknownTypeIsRejected) {
  Bytes stream;
  encode_frame(FrameType::kRaft, to_bytes("x"), stream);
  stream[2] = 77;
  FrameDecoder d;
  d.feed(stream);
  auto f = d.next();
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
}

RC_GTEST_PROP(Frame, ViewsMatchCopies, (std::vector<std::vector<uint8_t>> payloads)) {
  Bytes stream;
  for (auto& p : payloads) encode_frame(FrameType::kRaft, p, stream);
  FrameDecoder copies, views;
  copies.feed(stream);
  views.feed(stream);
  for (size_t i = 0; i <= payloads.size(); i++) {
    auto c = copies.next();
    auto v = views.next_view();
    RC_ASSERT(c.ok() && v.ok());
    RC_ASSERT(c->has_value() == v->has_value());
    if (!c->has_value()) break;
    RC_ASSERT((*v)->type == (*c)->type);
    RC_ASSERT(Bytes((*v)->payload.begin(), (*v)->payload.end()) == (*c)->payload);
  }
}

RC_GTEST_PROP(Frame, SealedInPlaceMatchesEncoded, (std::vector<uint8_t> payload)) {
  Bytes encoded;
  encode_frame(FrameType::kRaft, payload, encoded);
  Bytes sealed(kFrameHeaderBytes + payload.size(), 0xAA);  // header room, then the payload
  std::copy(payload.begin(), payload.end(), sealed.begin() + long(kFrameHeaderBytes));
  seal_frame(FrameType::kRaft, sealed);
  RC_ASSERT(sealed == encoded);
}

}  // namespace
}  // namespace keel::cluster
