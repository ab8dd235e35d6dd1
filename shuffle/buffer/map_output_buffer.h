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
// arrive (the combiner), within a memory budget. Each key goes straight into the run of its
// reducer shard, so finishing a hash-shuffle task moves the runs out without copying; a sort
// shuffle sorts each run once at the end. Summation order is emission order, which is
// deterministic for a given task. Not thread-safe: one buffer per task. The layout and the
// partitioner must outlive the buffer.
class MapOutputBuffer {
 public:
  MapOutputBuffer(const ModelLayout* layout, const Partitioner* partitioner, int64_t budget_bytes);

  // Adds (sums into) block `key`; `values` holds layout->Range(key).length floats.
  // kInvalidArgument for a key outside the model; kFailedPrecondition when a new key would
  // take the buffer past its budget (the message gives the budget and the key).
  Status Add(ParamKey key, const float* values);

  int64_t num_keys() const { return static_cast<int64_t>(slot_of_.size()); }
  int64_t bytes() const { return bytes_; }

  // Returns one run per shard (sorted by key when the partitioner is sorted) and leaves the
  // buffer empty.
  std::vector<Run> Finish();

 private:
  // Constant after construction.
  const ModelLayout* layout_;
  const Partitioner* partitioner_;
  const int64_t budget_bytes_;

  struct Slot {
    int shard;
    int64_t offset;  // into runs_[shard].values
  };
  std::unordered_map<ParamKey, Slot> slot_of_;
  std::vector<Run> runs_;  // one per shard, keys in emission order
  int64_t bytes_ = 0;
};

}  // namespace mrtrain::shuffle
