#pragma once

#include <cstdint>

namespace mrtrain::api {

// A small, fast, portable random stream (xoshiro256** seeded through splitmix64). Unlike the
// standard distributions, every method here gives the same numbers on every platform and
// compiler, which the engine's determinism rests on. Not thread-safe: one stream per task.
class RandomStream {
 public:
  // Streams for different (seed, a, b, c) tuples are independent for practical purposes.
  explicit RandomStream(uint64_t seed, uint64_t a = 0, uint64_t b = 0, uint64_t c = 0) {
    uint64_t x =
        Mix(seed ^ Mix(a + 0x9E3779B97F4A7C15ULL) ^ Mix(Mix(b) + c * 0xD1B54A32D192ED03ULL));
    for (auto& s : s_) s = x = Mix(x);
  }

  // Uniform 64-bit value.
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 24 random bits.
  float Uniform() { return static_cast<float>(Next() >> 40) * (1.0f / 16777216.0f); }

  // Uniform in [lo, hi).
  float Uniform(float lo, float hi) { return lo + (hi - lo) * Uniform(); }

  // Uniform integer in [0, n), without modulo bias. REQUIRES: n > 0.
  uint64_t Below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do {
      v = Next();
    } while (v >= limit);
    return v % n;
  }

  // The splitmix64 finaliser: a good 64-bit mixing function, also used to hash keys.
  static uint64_t Mix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace mrtrain::api
