#include "base/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace keel {
namespace {

constexpr uint32_t kPoly = 0x82F63B78u;  // reflected Castagnoli polynomial

// kTables[k][b]: the CRC register contribution of byte b followed by k zero bytes
// (slicing-by-8).
using Tables = std::array<std::array<uint32_t, 256>, 8>;

constexpr Tables make_tables() {
  Tables t{};
  for (uint32_t b = 0; b < 256; b++) {
    uint32_t c = b;
    for (int i = 0; i < 8; i++) c = (c >> 1) ^ ((c & 1) ? kPoly : 0);
    t[0][b] = c;
  }
  for (int k = 1; k < 8; k++) {
    for (uint32_t b = 0; b < 256; b++) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
  }
  return t;
}

constexpr Tables kTables = make_tables();

uint32_t load_le32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// Raw register update (no pre/post inversion), portable.
uint32_t raw_portable(uint32_t c, const uint8_t* p, size_t n) {
  while (n >= 8) {
    uint32_t lo = load_le32(p) ^ c;
    uint32_t hi = load_le32(p + 4);
    c = kTables[7][lo & 0xff] ^ kTables[6][(lo >> 8) & 0xff] ^ kTables[5][(lo >> 16) & 0xff] ^
        kTables[4][lo >> 24] ^ kTables[3][hi & 0xff] ^ kTables[2][(hi >> 8) & 0xff] ^
        kTables[1][(hi >> 16) & 0xff] ^ kTables[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = (c >> 8) ^ kTables[0][(c ^ *p++) & 0xff];
  return c;
}

#if defined(__x86_64__)
// The hardware loop runs three independent streams over consecutive blocks (the crc32
// instruction has a latency of 3 cycles and a throughput of 1), then folds them together
// with "shift over kBlockBytes zero bytes" operators, which are linear maps on the register.
constexpr size_t kBlockBytes = 1024;

struct ShiftTables {
  // shift[s][k][b]: register contribution of byte b at byte position k of the register,
  // after (s + 1) * kBlockBytes zero bytes.
  uint32_t shift[2][4][256];
};

const ShiftTables& shift_tables() {
  static const ShiftTables tables = [] {
    ShiftTables t{};
    static const uint8_t zeros[kBlockBytes] = {};
    for (int s = 0; s < 2; s++) {
      // The shift is linear in the register: its value on each bit, then on each byte by XOR.
      uint32_t bit[32];
      for (int i = 0; i < 32; i++) {
        uint32_t c = uint32_t(1) << i;
        for (int r = 0; r <= s; r++) c = raw_portable(c, zeros, kBlockBytes);
        bit[i] = c;
      }
      for (int k = 0; k < 4; k++) {
        for (uint32_t b = 0; b < 256; b++) {
          uint32_t c = 0;
          for (int j = 0; j < 8; j++) {
            if ((b >> j) & 1) c ^= bit[8 * k + j];
          }
          t.shift[s][k][b] = c;
        }
      }
    }
    return t;
  }();
  return tables;
}

uint32_t shift(const ShiftTables& t, int s, uint32_t c) {
  return t.shift[s][0][c & 0xff] ^ t.shift[s][1][(c >> 8) & 0xff] ^
         t.shift[s][2][(c >> 16) & 0xff] ^ t.shift[s][3][c >> 24];
}

// The three-stream loop over `groups` consecutive groups of three blocks. Kept out of line,
// so that the short inputs most calls have pay for none of its registers.
__attribute__((target("sse4.2"), noinline)) uint64_t raw_hw_blocks(uint64_t c, const uint8_t* p,
                                                                   size_t groups) {
  const ShiftTables& t = shift_tables();
  for (; groups > 0; groups--) {
    uint64_t c1 = 0, c2 = 0;
    for (size_t i = 0; i < kBlockBytes; i += 8) {
      uint64_t v0, v1, v2;
      std::memcpy(&v0, p + i, 8);
      std::memcpy(&v1, p + kBlockBytes + i, 8);
      std::memcpy(&v2, p + 2 * kBlockBytes + i, 8);
      c = _mm_crc32_u64(c, v0);
      c1 = _mm_crc32_u64(c1, v1);
      c2 = _mm_crc32_u64(c2, v2);
    }
    c = shift(t, 1, uint32_t(c)) ^ shift(t, 0, uint32_t(c1)) ^ uint32_t(c2);
    p += 3 * kBlockBytes;
  }
  return c;
}

// crc32c_extend on the hardware path (pre- and post-inversion included, so that the
// dispatcher can jump here).
__attribute__((target("sse4.2"))) uint32_t extend_hw(uint32_t crc, const uint8_t* p, size_t n) {
  uint64_t c = ~crc;
  if (n >= 3 * kBlockBytes) {
    const size_t groups = n / (3 * kBlockBytes);
    c = raw_hw_blocks(c, p, groups);
    p += groups * 3 * kBlockBytes;
    n -= groups * 3 * kBlockBytes;
  }
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  // The last 0..7 bytes in at most three steps (the wider instructions take their bytes
  // in little-endian order, as the byte-wise loop would).
  uint32_t c32 = uint32_t(c);
  if (n & 4) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    c32 = _mm_crc32_u32(c32, v);
    p += 4;
  }
  if (n & 2) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    c32 = _mm_crc32_u16(c32, v);
    p += 2;
  }
  if (n & 1) c32 = _mm_crc32_u8(c32, *p);
  return ~c32;
}
#endif

bool detect_hw() {
#if defined(__x86_64__)
  __builtin_cpu_init();  // we may run before the constructor that does it
  return __builtin_cpu_supports("sse4.2");
#else
  return false;
#endif
}

// A plain flag rather than a function-local static, whose guard made every call set up a
// frame. Read before its initializer ran (a CRC from another static initializer), it is
// false: the portable path, which gives the same result.
bool use_hardware = detect_hw();

bool hardware() { return use_hardware; }

}  // namespace

uint32_t crc32c_extend_portable(uint32_t crc, const uint8_t* data, size_t n) {
  return ~raw_portable(~crc, data, n);
}

uint32_t crc32c_extend(uint32_t crc, const uint8_t* data, size_t n) {
#if defined(__x86_64__)
  if (hardware()) return extend_hw(crc, data, n);
#endif
  return crc32c_extend_portable(crc, data, n);
}

bool crc32c_hardware() { return hardware(); }

}  // namespace keel
