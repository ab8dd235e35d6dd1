#include "runtime/worker/reducer_shard.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>

#include "engine/plugin/plugin_call.h"
#include "engine/plugin/plugin_library.h"
#include "engine/updaters/update_step.h"
#include "shuffle/merge/key_grouper.h"

namespace mrtrain::runtime {

ReducerShard::ReducerShard(int shard_id, std::shared_ptr<const ModelLayout> layout,
                           std::vector<ParamKey> keys, std::unique_ptr<api::Reducer> rule, float l1,
                           float l2, RowInit row_init,
                           std::shared_ptr<const shuffle::Partitioner> partitioner)
    : shard_id_(shard_id),
      layout_(std::move(layout)),
      keys_(std::move(keys)),
      rule_(std::move(rule)),
      l1_(l1),
      l2_(l2),
      row_init_(row_init),
      partitioner_(std::move(partitioner)) {
  int64_t size = 0;
  for (ParamKey key : keys_) {
    offset_of_.emplace(key, size);
    size += layout_->Range(key).length;
  }
  params_.assign(size, 0.0f);
  // Each slot made in place: assign(n, prototype) would also hold a prototype of the shard's
  // size, an extra copy of its parameters at the peak (even for a rule without slots).
  slots_.resize(rule_->NumSlots());
  for (std::vector<float>& slot : slots_) slot.assign(size, 0.0f);
  slot_ptrs_.resize(slots_.size());
  sum_scratch_.resize(std::max<int64_t>(1, layout_->max_key_length()));
  for (int t = 0; t < layout_->num_tensors(); ++t)
    update_of_.push_back("update of " + TensorName(t));
}

bool ReducerShard::OwnsRow(ParamKey key) const {
  if (key.tensor() >= static_cast<uint32_t>(layout_->num_tensors()) ||
      !layout_->is_row_sparse(static_cast<int>(key.tensor())) || !layout_->IsValid(key)) {
    return false;
  }
  return partitioner_ == nullptr || partitioner_->ShardOf(key) == shard_id_;
}

int64_t ReducerShard::HoldRow(ParamKey key) {
  const auto [at, created] =
      row_offset_.FindOrInsert(key.packed(), static_cast<int64_t>(params_.size()));
  if (!created) return at;
  const BlockRange r = layout_->Range(key);
  params_.resize(params_.size() + r.length);
  InitialRow(row_init_, r.tensor, layout_->specs()[r.tensor], static_cast<int64_t>(key.block()),
             &params_[at]);
  for (std::vector<float>& slot : slots_) slot.resize(slot.size() + r.length, 0.0f);
  row_keys_.push_back(key);
  return at;
}

int64_t ReducerShard::OffsetOf(ParamKey key) const {
  return layout_->is_row_sparse(static_cast<int>(key.tensor())) ? row_offset_.Find(key.packed())
                                                                  : offset_of_.at(key);
}

std::vector<ParamKey> ReducerShard::StateKeys() const {
  std::vector<ParamKey> keys = keys_;
  keys.insert(keys.end(), row_keys_.begin(), row_keys_.end());
  std::sort(keys.begin(), keys.end());
  return keys;
}

Result<shuffle::Run> ReducerShard::RowsRun(const std::vector<ParamKey>& keys) const {
  shuffle::Run run;
  run.keys.reserve(keys.size());
  run.offsets.reserve(keys.size() + 1);
  // The held rows are a table far larger than the caches: each lookup is started a few keys
  // ahead so that their memory latencies overlap.
  constexpr size_t kAhead = 8;
  for (size_t i = 0; i < keys.size() && i < kAhead; ++i) row_offset_.Prefetch(keys[i].packed());
  for (size_t i = 0; i < keys.size(); ++i) {
    const ParamKey key = keys[i];
    if (i + kAhead < keys.size()) row_offset_.Prefetch(keys[i + kAhead].packed());
    if (!OwnsRow(key)) {
      return InvalidArgumentError("shard " + std::to_string(shard_id_) + " was asked for " +
                                  layout_->DescribeKey(key) +
                                  ", which is not a row of a row-sparse tensor it owns");
    }
    const BlockRange r = layout_->Range(key);
    const size_t at = run.values.size();
    run.values.resize(at + r.length);
    const int64_t held = row_offset_.Find(key.packed());
    if (held != KeyIndex::kAbsent) {
      std::memcpy(&run.values[at], &params_[held], r.length * sizeof(float));
    } else {
      InitialRow(row_init_, r.tensor, layout_->specs()[r.tensor], static_cast<int64_t>(key.block()),
                 &run.values[at]);
    }
    run.keys.push_back(key);
    run.offsets.push_back(static_cast<int64_t>(run.values.size()));
  }
  return run;
}

void ReducerShard::Initialize() {
  // The constructor laid the owned blocks out in params_ one after the other in keys_ order,
  // which is how InitializeBlocks writes them.
  InitializeBlocks(row_init_.scheme, row_init_.uniform_scale, row_init_.seed, *layout_, keys_,
                   params_.data());
}

Status ReducerShard::Restore(const ShardFile& file) {
  const std::string shard = "shard " + std::to_string(shard_id_);
  if (file.num_slots != static_cast<int32_t>(slots_.size())) {
    return FailedPreconditionError(shard + " cannot resume: the checkpoint's update rule keeps " +
                                   std::to_string(file.num_slots) +
                                   " slots per parameter, this job's " +
                                   std::to_string(slots_.size()));
  }
  // Everything is checked before anything is copied, so a refused file changes nothing.
  const uint64_t per_float = 1 + slots_.size();  // parameters, then each slot
  uint64_t floats = 0;
  size_t blocks = 0;
  for (size_t i = 0; i < file.keys.size(); ++i) {
    const ParamKey key = file.keys[i];
    if (i > 0 && !(file.keys[i - 1] < key)) {
      return InvalidArgumentError(shard + " cannot restore a state whose keys are not ascending");
    }
    const bool row = key.tensor() < static_cast<uint32_t>(layout_->num_tensors()) &&
                     layout_->is_row_sparse(static_cast<int>(key.tensor()));
    if (row ? !OwnsRow(key) : offset_of_.count(key) == 0) {
      return InvalidArgumentError(shard + " cannot restore " + layout_->DescribeKey(key) +
                                  ": not a block or row it owns");
    }
    if (!row) ++blocks;
    floats += per_float * static_cast<uint64_t>(layout_->Range(key).length);
  }
  if (blocks != keys_.size()) {
    return InvalidArgumentError(shard + " cannot restore a state holding " +
                                std::to_string(blocks) + " of its " + std::to_string(keys_.size()) +
                                " blocks");
  }
  if (floats != file.values.size()) {
    return InvalidArgumentError(shard + " cannot restore a state of " +
                                std::to_string(file.values.size()) + " values: its keys hold " +
                                std::to_string(floats));
  }
  const float* in = file.values.data();
  for (ParamKey key : file.keys) {
    const int64_t length = layout_->Range(key).length;
    const int64_t at =
        layout_->is_row_sparse(static_cast<int>(key.tensor())) ? HoldRow(key) : offset_of_[key];
    std::memcpy(&params_[at], in, length * sizeof(float));
    in += length;
    for (std::vector<float>& slot : slots_) {
      std::memcpy(&slot[at], in, length * sizeof(float));
      in += length;
    }
  }
  return Status::Ok();
}

void ReducerShard::StoreTo(ModelState* state) const {
  for (ParamKey key : keys_) {
    const BlockRange r = layout_->Range(key);
    const int64_t at = offset_of_.at(key);
    std::memcpy(state->tensors[r.tensor].data() + r.offset, &params_[at], r.length * 4);
    for (size_t k = 0; k < slots_.size(); ++k) {
      std::memcpy(state->slots[k][r.tensor].data() + r.offset, &slots_[k][at], r.length * 4);
    }
  }
  std::vector<ParamKey> rows = row_keys_;
  std::sort(rows.begin(), rows.end());
  for (ParamKey key : rows) {
    StoredRows& stored = state->rows[key.tensor()];
    const int64_t at = row_offset_.Find(key.packed());
    const int64_t dim = layout_->Range(key).length;
    stored.ids.push_back(static_cast<int64_t>(key.block()));
    stored.values.insert(stored.values.end(), &params_[at], &params_[at] + dim);
    stored.slots.resize(slots_.size());
    for (size_t k = 0; k < slots_.size(); ++k) {
      stored.slots[k].insert(stored.slots[k].end(), &slots_[k][at], &slots_[k][at] + dim);
    }
  }
}

void ReducerShard::StoreParamsTo(ModelState* state) const {
  for (ParamKey key : keys_) {
    const BlockRange r = layout_->Range(key);
    std::memcpy(state->tensors[r.tensor].data() + r.offset, &params_[offset_of_.at(key)],
                r.length * 4);
  }
}

std::vector<float> ReducerShard::StateBlocks() const {
  std::vector<float> values;
  values.reserve(params_.size() * (1 + slots_.size()));
  for (ParamKey key : StateKeys()) {
    const int64_t length = layout_->Range(key).length;
    const int64_t offset = OffsetOf(key);
    values.insert(values.end(), &params_[offset], &params_[offset] + length);
    for (const std::vector<float>& slot : slots_) {
      values.insert(values.end(), &slot[offset], &slot[offset] + length);
    }
  }
  return values;
}

shuffle::Run ReducerShard::ParamsRun() const {
  shuffle::Run run;
  run.keys = keys_;
  run.offsets.reserve(keys_.size() + 1);
  run.values.reserve(params_.size());
  for (ParamKey key : keys_) {
    const int64_t length = layout_->Range(key).length;
    const float* block = &params_[offset_of_.at(key)];
    run.values.insert(run.values.end(), block, block + length);
    run.offsets.push_back(static_cast<int64_t>(run.values.size()));
  }
  return run;
}

Status ReducerShard::Reduce(const std::vector<const shuffle::Run*>& runs,
                            const std::vector<shuffle::TreeNode>& nodes,
                            const RoundUpdate& update) {
  // Validate every run before touching state, so a bad input leaves the shard as it was.
  for (size_t p = 0; p < runs.size(); ++p) {
    if (!runs[p]) continue;
    const shuffle::Run& run = *runs[p];
    const std::string from = "run of partitions [" + std::to_string(nodes[p].lo) + ", " +
                             std::to_string(nodes[p].lo + nodes[p].count) + ")";
    if (run.offsets.size() != run.keys.size() + 1 ||
        run.offsets.back() != static_cast<int64_t>(run.values.size())) {
      return CorruptionError("shard " + std::to_string(shard_id_) + ": " + from +
                             " has inconsistent offsets");
    }
    for (int64_t i = 0; i < run.num_keys(); ++i) {
      ParamKey key = run.keys[i];
      // A row needs no lookup here (HoldRow does one): owning it is arithmetic.
      const bool row = key.tensor() < static_cast<uint32_t>(layout_->num_tensors()) &&
                       layout_->is_row_sparse(static_cast<int>(key.tensor()));
      const bool owned = row ? OwnsRow(key) : offset_of_.count(key) != 0;
      // Checking the rest of the runs gives the lookups below time to arrive (as in RowsRun).
      if (row) row_offset_.Prefetch(key.packed());
      if (!owned || run.LengthOf(i) != layout_->Range(key).length) {
        return CorruptionError("shard " + std::to_string(shard_id_) + ": the " + from +
                               " has key (tensor " + std::to_string(key.tensor()) + ", block " +
                               std::to_string(key.block()) +
                               ") that this shard does not own or with a wrong length");
      }
      if (update.sorted_runs && i > 0 && !(run.keys[i - 1] < key)) {
        return CorruptionError("shard " + std::to_string(shard_id_) + ": the " + from +
                               " is not sorted");
      }
    }
  }
  const std::string rule_name =
      "shard " + std::to_string(shard_id_) + ": " + plugin::DescribeReducer(*rule_, "update rule");
  Status status;
  // What the guarded call below reads, set for each key. The call is built once: a lambda
  // capturing this much, made into a std::function per key, would allocate per key, and a
  // round updates tens of thousands of rows.
  api::UpdateContext ctx;
  ctx.step = update.step;
  ctx.learning_rate = update.learning_rate;
  const float* sum = nullptr;
  BlockRange r;
  int64_t at = 0;
  const std::function<void()> update_key = [&] {
    updaters::ApplyUpdate(*rule_, ctx, sum, update.example_count, l1_, l2_, &params_[at],
                          slot_ptrs_.data(), r.length, &update_scratch_);
  };
  auto apply = [&](const shuffle::KeyGroup& group) {
    if (!status.ok()) return;
    sum = shuffle::SumInTreeOrder(group, nodes, &summer_, sum_scratch_.data());
    r = layout_->Range(group.key);
    at = layout_->is_row_sparse(r.tensor) ? HoldRow(group.key) : offset_of_[group.key];
    for (size_t k = 0; k < slots_.size(); ++k) slot_ptrs_[k] = &slots_[k][at];
    ctx.tensor_id = r.tensor;
    ctx.offset = r.offset;
    ctx.spec = &layout_->specs()[r.tensor];
    status = plugin::CallPlugin(rule_name, update_of_[r.tensor], update_key);
    if (status.ok()) status = CheckFinite(r, &params_[at], update);
  };
  if (update.sorted_runs) {
    shuffle::GroupSortedRuns(runs, apply);
  } else {
    shuffle::GroupHashedRuns(runs, apply);
  }
  return status;
}

std::string ReducerShard::TensorName(int tensor) const {
  return "tensor \"" + layout_->specs()[tensor].name + "\" (id " + std::to_string(tensor) + ")";
}

Status ReducerShard::CheckFinite(const BlockRange& r, const float* params,
                                 const RoundUpdate& update) const {
  for (int64_t i = 0; i < r.length; ++i) {
    if (std::isfinite(params[i])) continue;
    char value[32];
    std::snprintf(value, sizeof value, "%g", static_cast<double>(params[i]));
    char lr[32];
    std::snprintf(lr, sizeof lr, "%g", update.learning_rate);
    return FailedPreconditionError(
        "shard " + std::to_string(shard_id_) + ": update step " + std::to_string(update.step) +
        " made " + TensorName(r.tensor) + " element " + std::to_string(r.offset + i) + " " + value +
        " (learning rate " + lr +
        "); training diverged: lower update.learning_rate, or check the data for huge values");
  }
  return Status::Ok();
}

Status ReducerShard::ReadBlock(ParamKey key, float* out) const {
  auto it = offset_of_.find(key);
  const bool row = key.tensor() < static_cast<uint32_t>(layout_->num_tensors()) &&
                   layout_->is_row_sparse(static_cast<int>(key.tensor()));
  const int64_t at = it != offset_of_.end() ? it->second
                     : row                  ? row_offset_.Find(key.packed())
                                            : KeyIndex::kAbsent;
  if (at == KeyIndex::kAbsent) {
    return NotFoundError("shard " + std::to_string(shard_id_) + " does not own tensor " +
                         std::to_string(key.tensor()) + " block " + std::to_string(key.block()));
  }
  std::memcpy(out, &params_[at], layout_->Range(key).length * sizeof(float));
  return Status::Ok();
}

}  // namespace mrtrain::runtime
