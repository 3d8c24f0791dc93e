// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum of Kafka RecordBatch v2
// and of every structure Keel writes to disk. Uses the SSE4.2 crc32 instruction when the CPU
// has it (detected once at run time), else a portable slicing-by-8 table. Both paths give
// identical results; the choice never changes behaviour, only speed.
#pragma once

#include <cstdint>

#include "base/bytes.h"

namespace keel {

// Continues a CRC: crc32c_extend(crc32c(a), b) == crc32c(a ++ b). Start from 0.
uint32_t crc32c_extend(uint32_t crc, const uint8_t* data, size_t n);

inline uint32_t crc32c_extend(uint32_t crc, ByteView data) {
  return crc32c_extend(crc, data.data(), data.size());
}
inline uint32_t crc32c(ByteView data) { return crc32c_extend(0, data); }

// The portable implementation alone (for tests that compare both paths).
uint32_t crc32c_extend_portable(uint32_t crc, const uint8_t* data, size_t n);
// True if crc32c_extend uses the hardware instruction on this machine.
bool crc32c_hardware();

}  // namespace keel
