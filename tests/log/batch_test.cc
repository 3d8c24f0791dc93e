#include "log/batch.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "log/checkpoint.h"
#include "log/segment.h"
#include "tests/log/log_util.h"

namespace keel::log {
namespace {

TEST(Batch, BuildValidateDecode) {
  BatchSpec spec;
  spec.base_offset = 42;
  spec.leader_epoch = 7;
  spec.base_timestamp = 1000;
  spec.records.push_back({to_bytes("k1"), to_bytes("v1"), 0});
  spec.records.push_back({std::nullopt, to_bytes("v2"), 5});
  spec.records.push_back({to_bytes("k3"), std::nullopt, 3});
  Bytes b = build_batch(spec);
  auto h = validate_batch(b);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->base_offset, 42);
  EXPECT_EQ(h->leader_epoch, 7);
  EXPECT_EQ(h->last_offset_delta, 2);
  EXPECT_EQ(h->last_offset(), 44);
  EXPECT_EQ(h->records_count, 3);
  EXPECT_EQ(h->base_timestamp, 1000);
  EXPECT_EQ(h->max_timestamp, 1005);
  EXPECT_EQ(h->total_bytes(), b.size());
  auto records = decode_records(b);
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 3u);
  EXPECT_EQ((*records)[0].key, to_bytes("k1"));
  EXPECT_FALSE((*records)[1].key.has_value());
  EXPECT_FALSE((*records)[2].value.has_value());
  EXPECT_EQ((*records)[1].timestamp_delta, 5);
}

TEST(Batch, StampingDoesNotNeedANewCrc) {
  Bytes b = testing::make_batch(3, 1, 9);
  set_base_offset(b, 1000);
  set_leader_epoch(b, 12);
  auto h = validate_batch(b);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->base_offset, 1000);
  EXPECT_EQ(h->leader_epoch, 12);
}

TEST(Batch, RejectsMalformedHeaders) {
  Bytes good = testing::make_batch(2, 1, 1);
  auto with = [&](size_t at, uint8_t v) {
    Bytes b = good;
    b[at] = v;
    return validate_batch(b).status();
  };
  EXPECT_TRUE(absl::IsInvalidArgument(with(16, 1)));     // magic 1
  EXPECT_TRUE(absl::IsInvalidArgument(with(8, 0x7f)));   // length past the limit
  EXPECT_TRUE(absl::IsInvalidArgument(with(23, 0x80)));  // negative lastOffsetDelta
  EXPECT_TRUE(absl::IsInvalidArgument(with(0, 0x80)));   // negative base offset
  EXPECT_TRUE(absl::IsDataLoss(with(good.size() - 1, good.back() ^ 1)));
  EXPECT_TRUE(absl::IsInvalidArgument(validate_batch(ByteView(good).first(60)).status()));
  Bytes longer = good;
  longer.push_back(0);
  EXPECT_TRUE(absl::IsInvalidArgument(validate_batch(longer).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(validate_batch(good, good.size() - 1).status()));
}

// Every stored byte is covered: the frame CRC (bytes 0..20) plus the Kafka CRC (21..end)
// catch any single bit flip anywhere in a stored frame.
RC_GTEST_PROP(Batch, EveryBitFlipInAFrameIsDetected, ()) {
  const int records = *rc::gen::inRange(1, 5);
  const auto tag = *rc::gen::arbitrary<uint32_t>();
  Bytes batch = testing::make_batch(records, *rc::gen::inRange(0, 100), tag);
  set_base_offset(batch, *rc::gen::inRange<int64_t>(0, 1'000'000));
  Bytes frame;
  append_frame(frame, batch);
  RC_ASSERT(verify_frame(frame, kBatchBytesMax).ok());
  const size_t byte = *rc::gen::inRange<size_t>(0, frame.size());
  const int bit = *rc::gen::inRange(0, 8);
  frame[byte] ^= uint8_t(1 << bit);
  RC_ASSERT(!verify_frame(frame, kBatchBytesMax).ok());
}

// verify_frame_body completes parse_frame_header: together they accept exactly what
// verify_frame accepts, whichever bit of the frame is flipped.
RC_GTEST_PROP(Batch, HeaderThenBodyIsVerifyFrame, ()) {
  Bytes batch = testing::make_batch(*rc::gen::inRange(1, 5), *rc::gen::inRange(0, 100),
                                    *rc::gen::arbitrary<uint32_t>());
  Bytes frame;
  append_frame(frame, batch);
  if (*rc::gen::arbitrary<bool>()) {
    const size_t byte = *rc::gen::inRange<size_t>(0, frame.size());
    frame[byte] ^= uint8_t(1 << *rc::gen::inRange(0, 8));
  }
  if (*rc::gen::arbitrary<bool>()) frame.push_back(0);
  auto h = parse_frame_header(frame, kBatchBytesMax);
  const bool split = h.ok() && verify_frame_body(frame, *h).ok();
  RC_ASSERT(split == verify_frame(frame, kBatchBytesMax).ok());
}

TEST(Checkpoint, RoundTripAndRejects) {
  Checkpoint cp{10, 5, 4096, 77, {{5, 1}, {20, 3}, {70, 4}}};
  auto back = decode_checkpoint(encode_checkpoint(cp));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, cp);
  Checkpoint bad = cp;
  bad.epochs = {{5, 3}, {20, 1}};  // epochs must increase
  EXPECT_FALSE(decode_checkpoint(encode_checkpoint(bad)).ok());
  bad.epochs = {{80, 1}};  // a run must start before the checkpoint offset
  EXPECT_FALSE(decode_checkpoint(encode_checkpoint(bad)).ok());
  Bytes enc = encode_checkpoint(cp);
  enc.pop_back();
  EXPECT_FALSE(decode_checkpoint(enc).ok());
}

TEST(SegmentNames, RoundTrip) {
  int64_t base = 0;
  EXPECT_EQ(segment_file_name(123), "00000000000000000123.seg");
  EXPECT_TRUE(parse_segment_file_name("00000000000000000123.seg", &base));
  EXPECT_EQ(base, 123);
  EXPECT_FALSE(parse_segment_file_name("0000000000000000012x.seg", &base));
  EXPECT_FALSE(parse_segment_file_name("checkpoint", &base));
  EXPECT_FALSE(parse_segment_file_name("99999999999999999999.seg", &base));
}

}  // namespace
}  // namespace keel::log
