#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/status.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/checkpoint/shard_file.h"
#include "shuffle/partition/partitioner.h"

namespace mrtrain::runtime {

// The sharded checkpoints of one job in one directory (FORMAT.md). The checkpoint after epoch
// 3 of a job with three reducer shards is
//
//   dir/ckpt-000003/shard-00000-of-00003.mrts   written by each shard host (WriteShard)
//   dir/ckpt-000003/shard-00001-of-00003.mrts
//   dir/ckpt-000003/shard-00002-of-00003.mrts
//   dir/ckpt-000003.manifest                    written last by the master (Commit)
//
// and exists once its manifest does; the newest `keep` are kept. Unrelated files are left
// alone. Holds no open files and no state beyond its constants: shard hosts and the master
// each make their own. Thread-compatible; shard hosts may write their shard files
// concurrently, one process (the master) commits, and readers anywhere see only complete
// files because each is renamed into place.
class CheckpointDir {
 public:
  // REQUIRES: keep >= 1.
  CheckpointDir(std::string dir, int keep);

  // Where shard `shard` of `num_shards` of the checkpoint after `epochs_done` goes, e.g.
  // "dir/ckpt-000003/shard-00001-of-00003.mrts". Creates nothing.
  // REQUIRES: epochs_done >= 0, 0 <= shard < num_shards.
  std::string ShardPath(int64_t epochs_done, int shard, int num_shards) const;
  // "dir/ckpt-000003.manifest". REQUIRES: epochs_done >= 0.
  std::string ManifestPath(int64_t epochs_done) const;

  // Writes `shard` to ShardPath(...) with WriteShardFile, creating the directories, and
  // returns what the master's manifest needs: the name relative to dir(), size and CRC.
  // Errors as WriteShardFile's.
  Result<ShardFileInfo> WriteShard(const ShardFile& shard) const;

  // Writes ManifestPath(manifest.epochs_done) atomically: the commit point of the checkpoint.
  // Then deletes, logging failures without failing the commit:
  //  - of the checkpoints up to the committed epoch, all but the newest `keep` by epoch number
  //    (each manifest before its shard directory, so a crash in between leaves no half
  //    checkpoint that looks whole);
  //  - what interrupted checkpoints up to the committed epoch left: shard directories without
  //    a manifest, and temporary files of manifests and in committed shard directories.
  // Later epochs are never touched: shard hosts may be writing them.
  // kInternal, writing nothing, when a shard file is not named as WriteShard names it (every
  // file of a checkpoint must be in the directory that pruning deletes) or the manifest would
  // not read back (WriteManifestFile); kIOError when the directory cannot be created or the
  // manifest cannot be written.
  Status Commit(const CheckpointManifest& manifest);

  // The checkpoint after `epochs_done`, assembled from its manifest and shard files. Each shard
  // file must have the size and CRC the manifest records, be of the manifest's epoch, step,
  // fingerprint, slot count and shard index, and the blocks of all of them must cover every
  // block of the layout exactly once. Fails with
  //   kNotFound            when there is no such manifest;
  //   kCorruption          when the manifest or a shard file is damaged, missing or
  //                        inconsistent, naming the file;
  //   kIOError, kFailedPrecondition (a newer format) as the readers report them.
  // Memory: the whole state plus the largest shard file, allocated only once the shard files
  // on disk are known to be large enough to hold it.
  Result<Checkpoint> Load(int64_t epochs_done) const;

  // Shard `shard`'s part of the checkpoint after `epochs_done`, reading its manifest and that
  // one shard file only: what a reducer shard host restores (ReducerShard::Restore), so no
  // process needs the whole model. The manifest must describe `layout` cut into
  // partitioner.num_shards() shards; the file must have the size and CRC the manifest records
  // and be of its epoch, step, fingerprint, slot count and shard index (as Load checks), and
  // hold exactly the blocks of `layout` that `partitioner` gives the shard, and rows of
  // row-sparse tensors that it gives the shard, each with its parameters and slots.
  // Fails with
  //   kNotFound            when there is no such manifest;
  //   kFailedPrecondition  when the manifest's model or shard count is not `layout`'s or
  //                        `partitioner`'s (a checkpoint of another job), or a newer format
  //                        wrote a file;
  //   kCorruption          when the manifest or the shard file is damaged, missing or
  //                        inconsistent, naming the file;
  //   kIOError             as the readers report it;
  //   kInvalidArgument     when `shard` is not one of the partitioner's.
  // Memory: the shard file's values and the shard's block keys.
  // REQUIRES: `partitioner` was made for `layout`.
  Result<ShardFile> LoadShard(int64_t epochs_done, int shard, const ModelLayout& layout,
                              const shuffle::Partitioner& partitioner) const;

  // The manifest of the newest checkpoint that would load: judged by ShardSetReader with every
  // check of Load (each shard file's size, CRC, header and keys), streamed, so what resumes a
  // job (the master) never holds its parameters. One that is corrupt (kCorruption, in its
  // manifest or any shard file) is logged as a warning naming the file and the error, and the
  // one before it is tried. Fails with
  //   kNotFound when none is valid, listing every checkpoint tried and why;
  //   any other error of Load (kIOError, kFailedPrecondition for a newer format) as it is:
  //   falling back then would quietly resume from an older epoch.
  Result<CheckpointManifest> LatestCommitted() const;

  // The epochs that have a manifest, ascending. Empty when the directory does not exist or
  // cannot be read.
  std::vector<int64_t> ListEpochs() const;

  const std::string& dir() const { return dir_; }

 private:
  // The deletions after committing epoch `committed` (see Commit).
  void Prune(int64_t committed) const;
  void RemoveLeftovers(int64_t committed) const;

  // Constant after construction.
  std::string dir_;
  int keep_;
};

}  // namespace mrtrain::runtime
