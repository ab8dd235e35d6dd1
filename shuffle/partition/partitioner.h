#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/tensor/model_layout.h"
#include "engine/tensor/param_key.h"

namespace mrtrain::shuffle {

enum class ShuffleMode {
  kHash,  // shard = hash(key) mod R; runs stay in emission order, reducers group by hashing
  kSort,  // R contiguous key ranges; runs are sorted, reducers k-way merge them
};

// Routes every ParamKey to one reducer shard. Immutable; thread-safe.
class Partitioner {
 public:
  virtual ~Partitioner() = default;
  virtual int num_shards() const = 0;
  // REQUIRES: the key belongs to the model the partitioner was built for.
  virtual int ShardOf(ParamKey key) const = 0;
  // Whether map outputs for this partitioner are sorted by key (sort shuffle).
  virtual bool sorted() const = 0;
};

// hash(key) mod R, with a 64-bit mixing hash so neighbouring blocks spread over shards.
class HashPartitioner : public Partitioner {
 public:
  explicit HashPartitioner(int num_shards);
  int num_shards() const override { return num_shards_; }
  int ShardOf(ParamKey key) const override;
  bool sorted() const override { return false; }

 private:
  int num_shards_;
};

// R contiguous ranges of the model's sorted keys, balanced by parameter count (not key count,
// since a tensor's last block may be short and tensors differ in size). Rows of a row-sparse
// tensor are not among those keys: its rows are cut into R equal ranges of the row id instead
// (row * R / rows), which hashed ids fill evenly.
class RangePartitioner : public Partitioner {
 public:
  RangePartitioner(const ModelLayout& layout, int num_shards);
  int num_shards() const override { return num_shards_; }
  int ShardOf(ParamKey key) const override;
  bool sorted() const override { return true; }

  // The first key of each shard after shard 0 (num_shards - 1 entries, ascending).
  const std::vector<ParamKey>& boundaries() const { return boundaries_; }

 private:
  int num_shards_;
  std::vector<ParamKey> boundaries_;
  std::vector<int64_t> sparse_rows_;  // per tensor: its rows when row-sparse, else 0
};

std::unique_ptr<Partitioner> MakePartitioner(ShuffleMode mode, const ModelLayout& layout,
                                             int num_shards);

// The keys of `layout` owned by `shard`, ascending.
std::vector<ParamKey> KeysOfShard(const Partitioner& partitioner, const ModelLayout& layout,
                                  int shard);

}  // namespace mrtrain::shuffle
