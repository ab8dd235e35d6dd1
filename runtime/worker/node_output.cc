#include "runtime/worker/node_output.h"

#include <utility>

#include "shuffle/merge/key_grouper.h"
#include "shuffle/merge/tree_sum.h"

namespace mrtrain::runtime {

MapTaskOutput CombineNodeOutputs(std::vector<MapTaskOutput> outputs, int64_t first_partition,
                                 bool sorted_runs) {
  if (outputs.size() == 1) return std::move(outputs[0]);
  std::vector<shuffle::TreeNode> leaves;
  for (size_t i = 0; i < outputs.size(); ++i) {
    leaves.push_back(shuffle::TreeNode{first_partition + static_cast<int64_t>(i), 1});
  }
  MapTaskOutput combined;
  std::vector<api::MapStats> stats;
  for (const MapTaskOutput& o : outputs) {
    stats.push_back(o.stats);
    combined.spilled_runs += o.spilled_runs;
    combined.spilled_bytes += o.spilled_bytes;
  }
  combined.stats =
      shuffle::TreeFold(leaves, stats, [](api::MapStats left, const api::MapStats& right) {
        left.loss_sum += right.loss_sum;
        left.examples += right.examples;
        left.correct += right.correct;
        return left;
      }).value_or(api::MapStats{});
  const size_t num_shards = outputs.empty() ? 0 : outputs[0].runs.size();
  shuffle::TreeSummer summer;
  std::vector<float> scratch;
  for (size_t s = 0; s < num_shards; ++s) {
    std::vector<const shuffle::Run*> runs;
    size_t values = 0;
    for (const MapTaskOutput& o : outputs) {
      runs.push_back(&o.runs[s]);
      values += o.runs[s].values.size();
    }
    shuffle::Run run;
    run.values.reserve(values);  // at most: keys shared by partitions take less
    auto add = [&](const shuffle::KeyGroup& group) {
      if (static_cast<int64_t>(scratch.size()) < group.length) scratch.resize(group.length);
      run.Append(group.key, shuffle::SumInTreeOrder(group, leaves, &summer, scratch.data()),
                 group.length);
    };
    if (sorted_runs) {
      shuffle::GroupSortedRuns(runs, add);
    } else {
      shuffle::GroupHashedRuns(runs, add);
    }
    combined.runs.push_back(std::move(run));
    for (MapTaskOutput& o : outputs) o.runs[s] = shuffle::Run();  // free as we go
  }
  return combined;
}

}  // namespace mrtrain::runtime
