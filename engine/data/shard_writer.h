#pragma once

#include <cstdint>
#include <string>

#include "engine/base/status.h"
#include "engine/data/partition_data.h"
#include "engine/data/shard_format.h"

namespace mrtrain::data {

// Which partition of which conversion a shard holds.
struct ShardIdentity {
  int64_t partition = 0;
  int64_t num_partitions = 1;
  SpecFields spec;  // the source's dataset spec (SourceSpecFields)
};

// Writes `data` as the shard file `path` (FORMAT.md, "shards"): to a hidden temporary file in
// the same folder, fsynced, renamed over `path`, and the folder fsynced. After a failure or a
// crash at any point `path` holds its old content or the complete shard, never a part; the
// temporary file is removed on failure. kIOError names the file and the OS's reason.
// REQUIRES: data is well formed (as LoadPartition returns it).
Status WriteShard(const std::string& path, const ShardIdentity& identity,
                  const PartitionData& data);

// The temporary file WriteShard writes before its rename: ".<name>.tmp.<pid>" beside `path`.
// Its leading '.' keeps a folder listing of the set from reading it as a shard.
std::string ShardTempPath(const std::string& path);

}  // namespace mrtrain::data
