#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "engine/tensor/param_key.h"
#include "shuffle/buffer/run.h"

namespace mrtrain::shuffle {

// All values one reducer shard received for one key, in partition order: values[i] came from
// partitions[i], and partitions is strictly increasing. Pointers borrow the runs.
struct KeyGroup {
  ParamKey key;
  int64_t length = 0;
  std::vector<const float*> values;
  std::vector<int> partitions;
};

// Calls fn once per key present in any run. `runs[p]` is the run partition p sent to this
// shard (nullptr or empty when it sent nothing); every run of a sorted shuffle is ascending.
// Sort mode merges the sorted runs k-way (ties broken by partition index) and visits keys in
// ascending order; hash mode groups with a hash table and visits keys in first-seen order.
// Either way each group lists its values in partition order, which is what makes the sums
// bit-identical across shuffle modes, shard counts and arrival orders.
void GroupSortedRuns(const std::vector<const Run*>& runs,
                     const std::function<void(const KeyGroup&)>& fn);
void GroupHashedRuns(const std::vector<const Run*>& runs,
                     const std::function<void(const KeyGroup&)>& fn);

// out[0..length) = values[0] + values[1] + ... summed left to right (partition order).
void SumInPartitionOrder(const KeyGroup& group, float* out);

}  // namespace mrtrain::shuffle
