#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/base/status.h"
#include "engine/tensor/model_layout.h"
#include "engine/tensor/param_key.h"
#include "runtime/checkpoint/shard_file.h"

namespace mrtrain::runtime {

// A committed sharded checkpoint (a manifest and its shard files, FORMAT.md) read piece by
// piece, for writing the final model without holding it. Open judges the checkpoint as
// CheckpointDir::Load does, in the same order and with the same errors, but keeps only the
// manifest, the layout, one owner entry per dense block and a few numbers per shard file. Then
// ForEachKey streams one tensor's keys in ascending order, a k-way merge of the shard files'
// sorted keys, and ReadPart copies a key's floats out through a bounded buffer per shard file.
// Memory: O(layout + shards x buffer), never the parameters. Holds the shard files open.
// Not thread-safe.
class ShardSetReader {
 public:
  // One key of a tensor, where its floats are: `length` floats of parameters at byte
  // `offset` of shard file `shard`, then its part of each slot, each as long.
  struct Entry {
    ParamKey key;
    int shard = 0;
    uint64_t offset = 0;
    int64_t length = 0;
  };

  // The checkpoint after `epochs_done` in checkpoint directory `dir`, whose manifest is
  // `manifest_path` (CheckpointDir::ManifestPath). Fails as CheckpointDir::Load: kNotFound
  // without the manifest, kCorruption naming the damaged, missing or inconsistent file,
  // kIOError and kFailedPrecondition as the readers report them. Two shard files holding the
  // same row of a row-sparse tensor is found later, by ForEachKey, as Load finds it last.
  static Result<std::unique_ptr<ShardSetReader>> Open(const std::string& dir,
                                                      const std::string& manifest_path,
                                                      int64_t epochs_done);
  ~ShardSetReader();
  ShardSetReader(const ShardSetReader&) = delete;
  ShardSetReader& operator=(const ShardSetReader&) = delete;

  const CheckpointManifest& manifest() const { return manifest_; }
  const std::shared_ptr<const ModelLayout>& layout() const { return layout_; }
  // The rows of row-sparse tensor `tensor` the shard files hold, summed over them.
  uint64_t StoredRows(int tensor) const;

  // Calls `visit` with each key of tensor `tensor` the shard files hold, ascending; ties (a
  // damaged checkpoint) in shard order. kCorruption naming the manifest when two shard files
  // hold the same row, kIOError when a file cannot be read, or the first error of `visit`.
  Status ForEachKey(int tensor, const std::function<Status(const Entry&)>& visit);

  // Passes part `part` of `entry`'s floats (0: the parameters; 1 + k: slot k) to `out` in
  // pieces of at most the buffer's size, valid only during the call. kIOError naming the file.
  // REQUIRES: entry came from ForEachKey; 0 <= part <= num_slots.
  Status ReadPart(const Entry& entry, int part,
                  const std::function<void(const void* bytes, size_t n)>& out);

 private:
  struct Shard;
  class KeyCursor;

  ShardSetReader() = default;
  Status ScanKeys(size_t index, std::vector<int32_t>* owners);

  CheckpointManifest manifest_;
  std::string manifest_path_;
  std::shared_ptr<const ModelLayout> layout_;
  std::vector<int64_t> first_block_;  // the position of dense tensor t's block 0 in owners
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace mrtrain::runtime
