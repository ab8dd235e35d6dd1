#pragma once

#include <cstdint>
#include <vector>

#include "runtime/worker/map_task.h"

namespace mrtrain::runtime {

// The output of a map task over a node of the reduction tree (shuffle/merge/tree_sum.h): the
// outputs of its partitions, `outputs[i]` being partition first_partition + i's (each computed
// as a one-partition task would), combined into one run per reducer shard whose every key is
// the partitions' values summed in tree order, and statistics summed in the same order. So a
// reducer that gets this run computes the same bits as from the partitions' runs. Sorted runs
// (sort shuffle) stay ascending; hash runs list keys in first-seen order. A node of one
// partition is its output unchanged. REQUIRES: every output has the same number of runs.
MapTaskOutput CombineNodeOutputs(std::vector<MapTaskOutput> outputs, int64_t first_partition,
                                 bool sorted_runs);

}  // namespace mrtrain::runtime
