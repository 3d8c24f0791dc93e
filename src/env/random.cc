#include "env/random.h"

#include "base/bytes.h"
#include "base/check.h"

namespace keel::env {
namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Random::Random(uint64_t seed) : seed_(seed) {
  uint64_t x = seed;
  for (auto& word : s_) word = splitmix64(x);
}

uint64_t Random::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

uint64_t Random::uniform(uint64_t bound) {
  KEEL_CHECK(bound > 0);
  // Lemire, "Fast Random Integer Generation in an Interval" (2019): multiply-shift with
  // rejection of the biased low range.
  unsigned __int128 m = (unsigned __int128)next_u64() * bound;
  uint64_t low = uint64_t(m);
  if (low < bound) {
    const uint64_t threshold = (0 - bound) % bound;
    while (low < threshold) {
      m = (unsigned __int128)next_u64() * bound;
      low = uint64_t(m);
    }
  }
  return uint64_t(m >> 64);
}

int64_t Random::range(int64_t lo, int64_t hi) {
  KEEL_CHECK(lo <= hi);
  const uint64_t span = uint64_t(hi) - uint64_t(lo);
  if (span == UINT64_MAX) return int64_t(next_u64());
  return int64_t(uint64_t(lo) + uniform(span + 1));
}

bool Random::chance(uint64_t numerator, uint64_t denominator) {
  KEEL_CHECK(denominator > 0 && numerator <= denominator);
  if (numerator == 0) return false;
  return uniform(denominator) < numerator;
}

Random Random::derive(std::string_view name) const {
  uint64_t x = seed_ ^ fnv1a64(name);
  return Random(splitmix64(x));
}

}  // namespace keel::env
