#pragma once

#include <string>
#include <vector>

#include "engine/base/status.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/checkpoint/checkpoint_dir.h"
#include "runtime/checkpoint/shard_file.h"

namespace mrtrain::testing {

// A model of dense and row-sparse tensors with `num_slots` slots: W [10, 7] and b [7] dense,
// "emb" [2^40, 3] and "lin" [1000, 1] row-sparse with scattered stored rows ("lin" with none
// when `empty_lin`), block_size 16. Floats follow a pattern keyed by `seed`.
runtime::Checkpoint RowSparseCheckpoint(int64_t epochs_done, int num_slots, uint32_t seed,
                                        bool empty_lin = false);

// Shard `shard` of `num_shards` of `c` as a shard host writes it: the dense blocks dealt
// round-robin and the stored rows by id modulo num_shards, each with its parameters and then
// its part of every slot.
runtime::ShardFile ShardOf(const runtime::Checkpoint& c, int shard, int num_shards);

// The manifest of `c` over `shards`.
runtime::CheckpointManifest ManifestOf(const runtime::Checkpoint& c,
                                       std::vector<runtime::ShardFileInfo> shards);

// What shard hosts and the master do for one epoch: every host writes ShardOf(c, i, n), then the
// master commits the manifest.
Status SaveSharded(runtime::CheckpointDir* dir, const runtime::Checkpoint& c, int num_shards);

}  // namespace mrtrain::testing
