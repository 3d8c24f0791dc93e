#include "log/blob.h"

#include <gtest/gtest.h>

namespace keel::log {
namespace {

TEST(Blob, RoundTripAndLimits) {
  Bytes data(100000);
  for (size_t i = 0; i < data.size(); i++) data[i] = uint8_t(i % 251 < 100 ? 'a' : i);
  auto z = compress_blob(data);
  ASSERT_TRUE(z.ok()) << z.status();
  EXPECT_LT(z->size(), data.size());
  auto back = decompress_blob(*z);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, data);
  // The declared size is checked before any allocation.
  EXPECT_TRUE(absl::IsDataLoss(decompress_blob(*z, data.size() - 1).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(compress_blob(data, 1000).status()));
  auto empty = compress_blob(ByteView());
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(decompress_blob(*empty)->size(), 0u);
}

TEST(Blob, CorruptionIsRejected) {
  Bytes data(5000, 'x');
  for (size_t i = 0; i < data.size(); i += 7) data[i] = uint8_t(i);
  Bytes z = *compress_blob(data);
  int rejected = 0;
  for (size_t i = 0; i < z.size(); i++) {
    Bytes bad = z;
    bad[i] ^= 0x10;
    auto r = decompress_blob(bad);
    // A flipped bit never yields different bytes: the frame checksum catches it.
    if (r.ok()) {
      EXPECT_EQ(*r, data) << "byte " << i;
    } else {
      rejected++;
    }
  }
  EXPECT_GT(rejected, int(z.size() / 2));
  EXPECT_FALSE(decompress_blob(ByteView(z).first(z.size() - 1)).ok());
  Bytes trailing = z;
  trailing.push_back(0);
  EXPECT_FALSE(decompress_blob(trailing).ok());
  EXPECT_FALSE(decompress_blob(as_bytes("not zstd")).ok());
}

}  // namespace
}  // namespace keel::log
