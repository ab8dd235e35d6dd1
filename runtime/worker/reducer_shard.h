#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/api/reducer.h"
#include "engine/base/status.h"
#include "engine/tensor/key_index.h"
#include "engine/tensor/model_state.h"
#include "runtime/checkpoint/shard_file.h"
#include "shuffle/buffer/run.h"
#include "shuffle/merge/tree_sum.h"
#include "shuffle/partition/partitioner.h"

namespace mrtrain::runtime {

// How a round's gradients become an update. Set by the master for each round.
struct RoundUpdate {
  int64_t step = 0;          // 1-based update count, this round included
  double learning_rate = 0;  // after the schedule
  double example_count = 0;  // examples behind the round's gradient sums, all partitions
  bool sorted_runs = false;  // sort shuffle: runs are ascending and merged k-way
};

// A reducer shard: owns the parameters and update-rule state of a fixed set of keys, applies
// each round's summed gradients to them and serves their current values. The update of a key
// depends only on that key's inputs, summed in the fixed tree order over partitions
// (shuffle/merge/tree_sum.h), so the result does not depend on how keys are spread over shards
// nor on which workers combined which partitions. Not thread-safe: one thread drives a shard at a
// time.
//
// Rows of row-sparse tensors are held sparsely: a row exists once a round updated it (its slots
// start at zero, its parameters at InitialRow), and only the rows in a round's sums are updated,
// so untouched rows keep their parameters and slots (lazy updates; L1 and L2 apply to the
// touched rows only). A pull of a row not held answers its initial value without storing it.
class ReducerShard {
 public:
  // `keys` are the dense blocks this shard owns (as the partitioner assigns them). Rows of
  // row-sparse tensors are owned as `partitioner` assigns them to `shard_id` (every valid row
  // when it is null) and start as `row_init` gives them; Initialize() starts the dense blocks
  // by the same scheme. Until Initialize() or Restore(), parameters and slots are zero.
  ReducerShard(int shard_id, std::shared_ptr<const ModelLayout> layout, std::vector<ParamKey> keys,
               std::unique_ptr<api::Reducer> rule, float l1, float l2, RowInit row_init = {},
               std::shared_ptr<const shuffle::Partitioner> partitioner = nullptr);

  int shard_id() const { return shard_id_; }
  const std::vector<ParamKey>& keys() const { return keys_; }
  // Rows of row-sparse tensors held (updated at least once).
  int64_t num_rows_held() const { return static_cast<int64_t>(row_keys_.size()); }

  // Sets the owned blocks to their initial parameters, bit for bit those InitializeParameters
  // gives the whole model with `row_init`'s scheme, scale and seed, computing only these
  // blocks (InitializeBlocks): a fresh job's start. Slots stay zero. REQUIRES: no round was
  // reduced and nothing restored.
  void Initialize();

  // Takes the owned blocks' parameters and slots, and the stored rows, from this shard's file
  // of a checkpoint (as CheckpointDir::LoadShard reads and checks it): a resumed job's start.
  // kFailedPrecondition when the file's slot count is not the rule's; kInvalidArgument, leaving
  // the shard unchanged, when its keys are not exactly the owned blocks plus owned rows or its
  // values do not fit them. REQUIRES: no round was reduced and nothing restored.
  Status Restore(const ShardFile& file);

  // Writes the owned blocks' parameters and slots into `state`, and appends the held rows to
  // state->rows (which the caller sorts when several shards write).
  void StoreTo(ModelState* state) const;

  // Every key held, ascending: the dense blocks and the held rows (a checkpoint's keys).
  std::vector<ParamKey> StateKeys() const;

  // The current parameters of row keys `keys` as a run in their order: held rows as they are,
  // others at their initial value. kInvalidArgument naming a key that is not a valid row of a
  // row-sparse tensor owned by this shard.
  Result<shuffle::Run> RowsRun(const std::vector<ParamKey>& keys) const;

  // Writes the owned blocks' parameters only (what map tasks pull each round).
  void StoreParamsTo(ModelState* state) const;

  // Applies one round: runs[i] is the sum over tree node nodes[i] sent to this shard (nullptr
  // when nothing); the nodes are disjoint and ascending by lo (a cover of the partitions, as
  // shuffle::ChooseCover picks it). Fails with kCorruption when a run holds a key this shard does
  // not own or a block of the wrong length (never a crash: runs may come from the network), with
  // kPluginError when the update rule throws (naming the rule, its library and the tensor), and
  // with kFailedPrecondition when an update leaves a parameter NaN or infinite (naming the step,
  // tensor and element; the master adds epoch and round: the model diverged, and a NaN model
  // must never be saved as a result). Keys no partition sent are left unchanged. After a failure
  // the shard's parameters may be partly updated: the job fails.
  Status Reduce(const std::vector<const shuffle::Run*>& runs,
                const std::vector<shuffle::TreeNode>& nodes, const RoundUpdate& update);

  // The keys of StateKeys() in order, each as its parameters followed by its part of every slot:
  // the values of the shard's checkpoint file.
  std::vector<float> StateBlocks() const;
  int num_slots() const { return static_cast<int>(slots_.size()); }

  // The owned blocks' current parameters as a run, in key order: what a parameter pull returns.
  shuffle::Run ParamsRun() const;

  // Copies the current parameters of owned block `key` to out. kNotFound for a key not owned.
  Status ReadBlock(ParamKey key, float* out) const;

 private:
  std::string TensorName(int tensor) const;
  // Whether `key` is a valid row of a row-sparse tensor that this shard owns.
  bool OwnsRow(ParamKey key) const;
  // The offset of held row `key` in params_ and slots_, creating it at its initial value.
  int64_t HoldRow(ParamKey key);
  // The offset of a held key (dense block or held row) in params_ and slots_.
  int64_t OffsetOf(ParamKey key) const;
  // kFailedPrecondition naming the first non-finite element of block `r` (params: its values).
  Status CheckFinite(const BlockRange& r, const float* params, const RoundUpdate& update) const;

  // Constant after construction.
  const int shard_id_;
  const std::shared_ptr<const ModelLayout> layout_;
  const std::vector<ParamKey> keys_;
  const std::unique_ptr<api::Reducer> rule_;
  const float l1_;
  const float l2_;
  const RowInit row_init_;
  const std::shared_ptr<const shuffle::Partitioner> partitioner_;

  std::unordered_map<ParamKey, int64_t> offset_of_;  // dense block -> offset in params_, slots_[k]
  KeyIndex row_offset_;             // held row (packed key) -> offset in params_ and slots_[k]
  std::vector<ParamKey> row_keys_;  // the rows held, in the order created
  std::vector<std::string> update_of_;  // per tensor: "update of tensor ..." (rows: built once)
  std::vector<float> params_;
  std::vector<std::vector<float>> slots_;
  std::vector<float*> slot_ptrs_;  // per update: slots_[k] at the block's offset
  std::vector<float> sum_scratch_;
  shuffle::TreeSummer summer_;
  std::vector<float> update_scratch_;
};

}  // namespace mrtrain::runtime
