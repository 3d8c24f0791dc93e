// CRC-32C against published vectors (RFC 3720 appendix B.4, and "123456789"), and the
// hardware path against the portable one on every length and alignment that matters.
#include "base/crc32c.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <string>
#include <vector>

namespace keel {
namespace {

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(crc32c(as_bytes("123456789")), 0xE3069283u);
  EXPECT_EQ(crc32c(ByteView()), 0u);
  Bytes zeros(32, 0), ones(32, 0xff), inc(32), dec(32);
  for (int i = 0; i < 32; i++) {
    inc[i] = uint8_t(i);
    dec[i] = uint8_t(31 - i);
  }
  EXPECT_EQ(crc32c(zeros), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones), 0x62A8AB43u);
  EXPECT_EQ(crc32c(inc), 0x46DD794Eu);
  EXPECT_EQ(crc32c(dec), 0x113FDB5Cu);
  // An iSCSI SCSI Read (10) command PDU (RFC 3720 B.4).
  const uint8_t pdu[48] = {0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                           0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
                           0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
                           0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  EXPECT_EQ(crc32c(ByteView(pdu, 48)), 0xD9963A56u);
  for (const Bytes& v : {zeros, ones, inc, dec}) {
    EXPECT_EQ(crc32c_extend_portable(0, v.data(), v.size()), crc32c(v));
  }
}

TEST(Crc32c, HardwareMatchesPortableOnAllShapes) {
  std::printf("crc32c hardware path: %s\n", crc32c_hardware() ? "yes" : "no");
  Bytes data(3 * 1024 * 4 + 77);
  uint64_t x = 1;
  for (auto& b : data) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    b = uint8_t(x >> 56);
  }
  // Every start alignment, lengths around the 3-way block boundaries.
  for (size_t start = 0; start < 8; start++) {
    for (size_t len : {0, 1, 7, 8, 9, 63, 1024, 3071, 3072, 3073, 6144, 9216, 12000}) {
      if (start + len > data.size()) continue;
      EXPECT_EQ(crc32c(ByteView(data).subspan(start, len)),
                crc32c_extend_portable(0, data.data() + start, len))
          << start << " " << len;
    }
  }
}

RC_GTEST_PROP(Crc32c, ExtendIsConcatenation,
              (const std::vector<uint8_t>& a, const std::vector<uint8_t>& b)) {
  Bytes ab = a;
  ab.insert(ab.end(), b.begin(), b.end());
  RC_ASSERT(crc32c_extend(crc32c(a), b) == crc32c(ab));
  RC_ASSERT(crc32c(ab) == crc32c_extend_portable(0, ab.data(), ab.size()));
}

}  // namespace
}  // namespace keel
