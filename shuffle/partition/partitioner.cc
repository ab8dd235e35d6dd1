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
