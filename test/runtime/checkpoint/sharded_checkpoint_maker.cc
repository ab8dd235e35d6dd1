#include "test/runtime/checkpoint/sharded_checkpoint_maker.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>

#include "engine/tensor/model_layout.h"

namespace mrtrain::testing {

using api::TensorSpec;
using runtime::Checkpoint;
using runtime::CheckpointManifest;
using runtime::ShardFile;
using runtime::ShardFileInfo;

namespace {

float Pattern(uint32_t seed, uint64_t i) {
  return static_cast<float>((seed * 2654435761u + i * 40503u) % 10007) / 97.0f - 50.0f;
}

void FillRows(StoredRows* rows, std::vector<int64_t> ids, int64_t dim, int num_slots,
              uint32_t seed) {
  rows->ids = std::move(ids);
  const size_t n = rows->ids.size() * static_cast<size_t>(dim);
  for (size_t i = 0; i < n; ++i) rows->values.push_back(Pattern(seed, i));
  rows->slots.assign(num_slots, {});
  for (int k = 0; k < num_slots; ++k) {
    for (size_t i = 0; i < n; ++i) rows->slots[k].push_back(Pattern(seed + 7 * (k + 1), i));
  }
}

}  // namespace

Checkpoint RowSparseCheckpoint(int64_t epochs_done, int num_slots, uint32_t seed, bool empty_lin) {
  constexpr int64_t kRows = int64_t{1} << 40;
  auto layout = std::make_shared<const ModelLayout>(
      ModelLayout::Create({TensorSpec{"W", {10, 7}, TensorSpec::Role::kWeight},
                           TensorSpec{"emb", {kRows, 3}, TensorSpec::Role::kWeight, true},
                           TensorSpec{"b", {7}, TensorSpec::Role::kBias},
                           TensorSpec{"lin", {1000, 1}, TensorSpec::Role::kWeight, true}},
                          16)
          .value());
  Checkpoint c;
  c.epochs_done = epochs_done;
  c.fingerprint = "fp-rows";
  c.model_type = "fm";
  c.update_rule = num_slots == 2 ? "adam" : "adagrad";
  c.model_params.Set("k", "3");
  c.data_shape = {kRows, 2, true};
  c.state = ModelState::Zeros(layout, num_slots);
  c.state.step = 11 * epochs_done;
  for (int t : {0, 2}) {
    for (size_t i = 0; i < c.state.tensors[t].size(); ++i) {
      c.state.tensors[t][i] = Pattern(seed + t, i);
      for (int k = 0; k < num_slots; ++k) c.state.slots[k][t][i] = Pattern(seed + 13 * k + t, i);
    }
  }
  std::vector<int64_t> emb;
  for (int64_t i = 0; i < 200; ++i) emb.push_back(i * i * 977 + (i % 3) * (kRows / 7));
  std::sort(emb.begin(), emb.end());
  emb.erase(std::unique(emb.begin(), emb.end()), emb.end());
  emb.back() = kRows - 1;
  FillRows(&c.state.rows[1], emb, 3, num_slots, seed + 1);
  std::vector<int64_t> lin;
  if (!empty_lin) {
    for (int64_t i = 0; i < 1000; i += 3) lin.push_back(i);
  }
  FillRows(&c.state.rows[3], lin, 1, num_slots, seed + 3);
  return c;
}

ShardFile ShardOf(const Checkpoint& c, int shard, int num_shards) {
  const ModelLayout& layout = *c.state.layout;
  const int num_slots = static_cast<int>(c.state.slots.size());
  std::vector<ParamKey> dense;
  for (size_t i = shard; i < layout.keys().size(); i += num_shards) {
    dense.push_back(layout.keys()[i]);
  }
  ShardFile s;
  s.epochs_done = c.epochs_done;
  s.step = c.state.step;
  s.shard = shard;
  s.num_shards = num_shards;
  s.fingerprint = c.fingerprint;
  s.num_slots = num_slots;
  // Keys ascend by tensor, then block or row: merge the dense keys and the rows tensor by tensor.
  for (int t = 0; t < layout.num_tensors(); ++t) {
    if (!layout.is_row_sparse(t)) {
      for (ParamKey key : dense) {
        if (key.tensor() != static_cast<uint32_t>(t)) continue;
        const BlockRange r = layout.Range(key);
        s.keys.push_back(key);
        const float* p = c.state.tensors[t].data() + r.offset;
        s.values.insert(s.values.end(), p, p + r.length);
        for (int k = 0; k < num_slots; ++k) {
          const float* q = c.state.slots[k][t].data() + r.offset;
          s.values.insert(s.values.end(), q, q + r.length);
        }
      }
      continue;
    }
    const StoredRows& rows = c.state.rows[t];
    const size_t dim = static_cast<size_t>(layout.specs()[t].row_dim());
    for (size_t i = 0; i < rows.ids.size(); ++i) {
      if (rows.ids[i] % num_shards != shard) continue;
      s.keys.emplace_back(static_cast<uint32_t>(t), static_cast<uint64_t>(rows.ids[i]));
      const float* p = rows.values.data() + i * dim;
      s.values.insert(s.values.end(), p, p + dim);
      for (int k = 0; k < num_slots; ++k) {
        const float* q = rows.slots[k].data() + i * dim;
        s.values.insert(s.values.end(), q, q + dim);
      }
    }
  }
  return s;
}

CheckpointManifest ManifestOf(const Checkpoint& c, std::vector<ShardFileInfo> shards) {
  CheckpointManifest m;
  m.epochs_done = c.epochs_done;
  m.step = c.state.step;
  m.fingerprint = c.fingerprint;
  m.model_type = c.model_type;
  m.update_rule = c.update_rule;
  m.model_params = c.model_params;
  m.data_shape = c.data_shape;
  m.tensors = c.state.layout->specs();
  m.block_size = c.state.layout->block_size();
  m.num_slots = static_cast<int32_t>(c.state.slots.size());
  m.shards = std::move(shards);
  return m;
}

Status SaveSharded(runtime::CheckpointDir* dir, const Checkpoint& c, int num_shards) {
  std::vector<ShardFileInfo> infos;
  for (int shard = 0; shard < num_shards; ++shard) {
    Result<ShardFileInfo> info = dir->WriteShard(ShardOf(c, shard, num_shards));
    if (!info.ok()) return info.status();
    infos.push_back(*info);
  }
  return dir->Commit(ManifestOf(c, std::move(infos)));
}

}  // namespace mrtrain::testing
