#pragma once

// The two files of a sharded checkpoint (FORMAT.md): each reducer shard host writes a shard
// file with the blocks it owns, and the master then writes a small manifest naming every
// shard file with its size and CRC, which is what makes the checkpoint exist. So the master
// never handles the parameters. CheckpointDir (checkpoint_dir.h) names these files, commits
// manifests and assembles whole checkpoints from them.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/api/hyperparameters.h"
#include "engine/api/views.h"
#include "engine/base/status.h"
#include "engine/tensor/model_state.h"
#include "engine/tensor/param_key.h"

namespace mrtrain::runtime {

// One reducer shard's part of the checkpoint after epoch `epochs_done`. A plain value;
// thread-compatible.
struct ShardFile {
  int64_t epochs_done = 0;
  int64_t step = 0;  // ModelState::step
  int32_t shard = 0;
  int32_t num_shards = 1;
  std::string fingerprint;     // JobSpec::Fingerprint() of the job
  int32_t num_slots = 0;       // the update rule's state arrays per parameter
  std::vector<ParamKey> keys;  // the blocks the shard owns: strictly ascending
  // Per key, in key order: the block's parameters, then its part of slot 0, ..., of slot
  // num_slots - 1; each as long as the block (ModelLayout::Range(key).length: block_size, or
  // less for the last block of a tensor).
  std::vector<float> values;
};

// What a host reports once its shard file is in place, and the manifest records.
struct ShardFileInfo {
  std::string name;     // in a manifest: relative to the checkpoint directory
  uint64_t bytes = 0;   // the file's size
  uint32_t crc32c = 0;  // the CRC its trailer stores: CRC32C of every byte before it
};

// The blocks `keys` (in any order) of `state`, parameters and every slot, as the shard file of
// reducer shard `shard` of `num_shards` after epoch `epochs_done`; the step and slot count
// are the state's. REQUIRES: state is consistent with its layout (as ModelState::Zeros makes
// it), every key is valid in that layout, and no key is repeated.
ShardFile MakeShardFile(const ModelState& state, std::vector<ParamKey> keys, int64_t epochs_done,
                        int32_t shard, int32_t num_shards, std::string fingerprint);

// Writes `shard` to `path` atomically (temporary file, fsync, rename, directory fsync),
// creating missing parent directories, so hosts on several machines can write into a shared
// directory nobody prepared. Returns the file's size and trailer CRC; `name` is `path` as
// given. Fails with kIOError naming the path and the OS's reason (no partial file is left
// under `path`), or with kInternal when `shard` would not read back as itself (negative
// epochs_done or step, a shard index out of range, keys out of order), writing nothing.
// `before_commit`: see WriteFramedFile.
Result<ShardFileInfo> WriteShardFile(
    const std::string& path, const ShardFile& shard,
    const std::function<void(const std::string& tmp)>& before_commit = {});

// Reads a file written by WriteShardFile. Every length is checked against the bytes that
// remain before anything is allocated for it, and the CRC32C before anything is decoded.
// Fails with kNotFound when `path` does not exist, kIOError when it cannot be read,
// kFailedPrecondition when a newer format version wrote it, and kCorruption naming the file
// for a bad magic, truncation, a checksum mismatch or a body the writer would refuse. Whether
// the blocks fit a model is for the reader of the whole checkpoint to judge.
Result<ShardFile> ReadShardFile(const std::string& path);
// The same, and kCorruption when the file's size or trailer CRC differs from `expected` (what
// the manifest records), checked before the body is decoded. `expected.name` is not used.
Result<ShardFile> ReadShardFile(const std::string& path, const ShardFileInfo& expected);

// A shard file judged as ReadShardFile judges it, without its arrays in memory: where they are,
// for a reader that fetches them piece by piece (pread) in a second pass.
struct ShardFileIndex {
  ShardFile header;          // every field but keys and values, which are left empty
  uint64_t num_keys = 0;     // keys, each a little-endian u64 (ParamKey::packed), ascending
  uint64_t keys_offset = 0;  // byte offset of the first key
  uint64_t num_values = 0;   // floats, little-endian
  uint64_t values_offset = 0;
};

// Checks everything ReadShardFile(path, expected) checks, with the same errors, keeping only the
// fields and where the arrays are: memory does not grow with the file (the CRC and the key order
// are checked by streaming through it).
Result<ShardFileIndex> IndexShardFile(const std::string& path, const ShardFileInfo& expected);

// What makes a sharded checkpoint exist: everything of a Checkpoint except the arrays, and the
// shard files that hold those. A plain value; thread-compatible.
struct CheckpointManifest {
  int64_t epochs_done = 0;
  int64_t step = 0;
  std::string fingerprint;
  std::string model_type;
  std::string update_rule;
  api::Hyperparameters model_params;
  api::DataShape data_shape;
  std::vector<api::TensorSpec> tensors;  // with block_size, the ModelLayout
  int64_t block_size = 0;
  int32_t num_slots = 0;
  // Index = shard id. Each name is relative, without "." or ".." components.
  std::vector<ShardFileInfo> shards;
};

// Writes `manifest` to `path` atomically, like WriteShardFile but creating no directories.
// kIOError naming the path; kInternal, writing nothing, when the manifest would not read back
// as itself (a negative number, no tensors or more than 65536, a dimension below 1, no
// shards, a shard name that is absolute or leaves its directory).
Status WriteManifestFile(const std::string& path, const CheckpointManifest& manifest);

// Reads a file written by WriteManifestFile, with the same checks and errors as
// ReadShardFile. The tensors are checked one by one; whether they form a valid layout, and
// whether the shard files hold them, is for the reader of the whole checkpoint to judge.
Result<CheckpointManifest> ReadManifestFile(const std::string& path);

}  // namespace mrtrain::runtime
