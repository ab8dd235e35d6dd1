#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "engine/base/status.h"
#include "engine/tensor/model_layout.h"
#include "shuffle/buffer/run.h"
#include "shuffle/partition/partitioner.h"

namespace mrtrain::shuffle {

// Collects the (key, block) pairs one map task emits and sums values of the same key as they
// arrive (the combiner), within a memory budget. Summation order is emission order, which is
// deterministic for a given task. Not thread-safe: one buffer per task. The layout must
// outlive the buffer.
class MapOutputBuffer {
 public:
  MapOutputBuffer(const ModelLayout* layout, int64_t budget_bytes);

  // Adds (sums into) block `key`; `values` holds layout->Range(key).length floats.
  // kInvalidArgument for a key outside the model; kFailedPrecondition when a new key would
  // take the buffer past its budget (the message gives the budget and the key).
  Status Add(ParamKey key, const float* values);

  int64_t num_keys() const { return static_cast<int64_t>(keys_.size()); }
  int64_t bytes() const { return static_cast<int64_t>(arena_.size() * sizeof(float)); }

  // Cuts the contents into one run per shard (sorted by key when the partitioner is sorted)
  // and leaves the buffer empty.
  std::vector<Run> Finish(const Partitioner& partitioner);

 private:
  // Constant after construction.
  const ModelLayout* layout_;
  const int64_t budget_bytes_;

  std::vector<ParamKey> keys_;                          // emission order
  std::unordered_map<ParamKey, int64_t> offset_of_;  // key -> offset in arena_
  std::vector<float> arena_;
};

}  // namespace mrtrain::shuffle
