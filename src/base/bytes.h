// Byte buffers and big-endian helpers shared by codecs (Kafka, Raft frames, log segments).
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace keel {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

inline ByteView as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_chars(ByteView b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
inline Bytes to_bytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

// Big-endian loads and stores: a memcpy and a byte swap (one instruction each way).
template <typename T>
inline T to_big_endian(T v) {
  if constexpr (std::endian::native == std::endian::little) {
    if constexpr (sizeof(T) == 2) return T(__builtin_bswap16(v));
    if constexpr (sizeof(T) == 4) return T(__builtin_bswap32(v));
    if constexpr (sizeof(T) == 8) return T(__builtin_bswap64(v));
  }
  return v;
}
template <typename T>
inline void put_be(uint8_t* p, T v) {
  v = to_big_endian(v);
  std::memcpy(p, &v, sizeof(T));
}
template <typename T>
inline T get_be(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return to_big_endian(v);
}
inline void put_be16(uint8_t* p, uint16_t v) { put_be(p, v); }
inline void put_be32(uint8_t* p, uint32_t v) { put_be(p, v); }
inline void put_be64(uint8_t* p, uint64_t v) { put_be(p, v); }
inline uint16_t get_be16(const uint8_t* p) { return get_be<uint16_t>(p); }
inline uint32_t get_be32(const uint8_t* p) { return get_be<uint32_t>(p); }
inline uint64_t get_be64(const uint8_t* p) { return get_be<uint64_t>(p); }

// FNV-1a 64: a stable digest for trace hashing and stream derivation (not for integrity;
// on-disk and on-wire integrity use CRC-32C).
inline uint64_t fnv1a64(ByteView data, uint64_t h = 0xcbf29ce484222325ULL) {
  for (uint8_t b : data) {
    h ^= b;
    h *= 0x100000001b3ULL;
  }
  return h;
}
inline uint64_t fnv1a64(std::string_view s, uint64_t h = 0xcbf29ce484222325ULL) {
  return fnv1a64(as_bytes(s), h);
}

}  // namespace keel
