#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "engine/tensor/param_key.h"
#include "shuffle/buffer/run.h"
#include "shuffle/merge/tree_sum.h"

namespace mrtrain::shuffle {

// All values one reducer shard received for one key, in run order: values[i] came from
// runs[sources[i]], and sources is strictly increasing. Pointers borrow the runs.
struct KeyGroup {
  ParamKey key;
  int64_t length = 0;
  std::vector<const float*> values;
  std::vector<int> sources;
};

// Calls fn once per key present in any run. `runs[i]` is the i-th run (nullptr or empty when
// there is none), in the order of the tree nodes they cover; every run of a sorted shuffle is
// ascending. Sort mode merges the sorted runs k-way (ties broken by run index) and visits keys
// in ascending order; hash mode groups with a hash table and visits keys in first-seen order.
// Either way each group lists its values in run order, so SumInTreeOrder adds them the same
// way whatever the shuffle mode, shard count or arrival order.
void GroupSortedRuns(const std::vector<const Run*>& runs,
                     const std::function<void(const KeyGroup&)>& fn);
void GroupHashedRuns(const std::vector<const Run*>& runs,
                     const std::function<void(const KeyGroup&)>& fn);

// The group's values summed in tree order (tree_sum.h), where runs[i] covered nodes[i] (disjoint,
// ascending by lo): one of the group's values when it has one, else `out`, which it wrote.
// REQUIRES: the group has a value.
const float* SumInTreeOrder(const KeyGroup& group, const std::vector<TreeNode>& nodes,
                            TreeSummer* summer, float* out);

}  // namespace mrtrain::shuffle
