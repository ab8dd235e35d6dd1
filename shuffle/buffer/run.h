#pragma once

#include <cstdint>
#include <vector>

#include "engine/tensor/param_key.h"

namespace mrtrain::shuffle {

// A run: the output of one map task for one reducer shard. Values of key i are
// values[offsets[i] .. offsets[i+1]), contiguous so a run travels as a few large byte ranges.
// In sort shuffle the keys are ascending; in hash shuffle they are in emission order. Each key
// appears at most once (the combiner has summed duplicates).
struct Run {
  std::vector<ParamKey> keys;
  std::vector<int64_t> offsets{0};  // keys.size() + 1 entries
  std::vector<float> values;

  int64_t num_keys() const { return static_cast<int64_t>(keys.size()); }
  const float* ValuesOf(int64_t i) const { return values.data() + offsets[i]; }
  int64_t LengthOf(int64_t i) const { return offsets[i + 1] - offsets[i]; }
  int64_t bytes() const {
    return static_cast<int64_t>(keys.size() * sizeof(ParamKey) + offsets.size() * 8 +
                                values.size() * sizeof(float));
  }
  void Append(ParamKey key, const float* data, int64_t n) {
    keys.push_back(key);
    values.insert(values.end(), data, data + n);
    offsets.push_back(static_cast<int64_t>(values.size()));
  }
};

}  // namespace mrtrain::shuffle
