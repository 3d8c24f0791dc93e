// Random: the one source of randomness in src/. A fixed algorithm (xoshiro256**, seeded by
// splitmix64) and our own range mapping, so the same seed yields the same numbers with every
// compiler and standard library. Never use std::*_distribution or std::random_device in src/.
//
// Streams: derive("raft/n1") returns an independent generator whose seed depends only on
// this generator's seed and the name, never on how many numbers were drawn so far. Give each
// node and subsystem its own stream, so adding a draw in one place does not reshuffle the
// rest of a run.
//
// Never draw twice in one expression (f(r.next(), r.next())): evaluation order is unspecified.
#pragma once

#include <cstdint>
#include <string_view>

namespace keel::env {

class Random {
 public:
  explicit Random(uint64_t seed);

  uint64_t seed() const { return seed_; }

  // A uniformly distributed 64-bit value.
  uint64_t next_u64();

  // Uniform in [0, bound). Requires bound > 0. Unbiased (Lemire's method with rejection).
  uint64_t uniform(uint64_t bound);

  // Uniform in [lo, hi], both inclusive. Requires lo <= hi.
  int64_t range(int64_t lo, int64_t hi);

  // True with probability numerator/denominator. Requires 0 <= numerator <= denominator,
  // denominator > 0. Probabilities are integer ratios, never floating point.
  bool chance(uint64_t numerator, uint64_t denominator);

  // An independent stream named `name` (see above).
  Random derive(std::string_view name) const;

 private:
  uint64_t seed_;
  uint64_t s_[4];
};

}  // namespace keel::env
