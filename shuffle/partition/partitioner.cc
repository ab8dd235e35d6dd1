#include "shuffle/partition/partitioner.h"

#include <algorithm>

#include "engine/api/random.h"

namespace mrtrain::shuffle {

HashPartitioner::HashPartitioner(int num_shards) : num_shards_(std::max(1, num_shards)) {}

int HashPartitioner::ShardOf(ParamKey key) const {
  return static_cast<int>(api::RandomStream::Mix(key.packed()) % num_shards_);
}

RangePartitioner::RangePartitioner(const ModelLayout& layout, int num_shards)
    : num_shards_(std::max(1, num_shards)) {
  for (int t = 0; t < layout.num_tensors(); ++t) {
    sparse_rows_.push_back(layout.is_row_sparse(t) ? layout.num_blocks(t) : 0);
  }
  // Cut where the running parameter count passes s/R of the total. Shards may end up empty
  // when there are fewer keys than shards; they then own nothing, which is valid.
  const double total = static_cast<double>(layout.num_parameters());
  int64_t running = 0;
  int next_shard = 1;
  for (ParamKey key : layout.keys()) {
    while (next_shard < num_shards_ && running >= total * next_shard / num_shards_) {
      boundaries_.push_back(key);
      ++next_shard;
    }
    running += layout.Range(key).length;
  }
  // Shards past the last key own nothing: give them a boundary above every key.
  while (next_shard++ < num_shards_) boundaries_.push_back(ParamKey::FromPacked(UINT64_MAX));
}

int RangePartitioner::ShardOf(ParamKey key) const {
  if (key.tensor() < sparse_rows_.size() && sparse_rows_[key.tensor()] > 0) {
    // row < rows <= 2^48 and R < 2^31: the product fits 128 bits, the quotient is < R.
    return static_cast<int>(static_cast<unsigned __int128>(key.block()) * num_shards_ /
                            static_cast<uint64_t>(sparse_rows_[key.tensor()]));
  }
  return static_cast<int>(std::upper_bound(boundaries_.begin(), boundaries_.end(), key) -
                          boundaries_.begin());
}

std::unique_ptr<Partitioner> MakePartitioner(ShuffleMode mode, const ModelLayout& layout,
                                             int num_shards) {
  if (mode == ShuffleMode::kSort) return std::make_unique<RangePartitioner>(layout, num_shards);
  return std::make_unique<HashPartitioner>(num_shards);
}

std::vector<ParamKey> KeysOfShard(const Partitioner& partitioner, const ModelLayout& layout,
                                  int shard) {
  std::vector<ParamKey> keys;
  for (ParamKey key : layout.keys()) {
    if (partitioner.ShardOf(key) == shard) keys.push_back(key);
  }
  return keys;
}

}  // namespace mrtrain::shuffle
