#pragma once

#include <cstdint>
#include <string>

#include "engine/base/status.h"
#include "runtime/checkpoint/checkpoint_dir.h"

namespace mrtrain::runtime {

// Writes a job's final model from its committed sharded checkpoint after `epochs_done`, shard
// file by shard file, so that no process holds the whole model:
//
//   `mrt_path`  the checkpoint file: byte for byte what WriteCheckpointFile writes of the
//               checkpoint CheckpointDir::Load assembles (FORMAT.md), streamed from the shard
//               files by a k-way merge of their sorted keys, tensor by tensor, and its trailer's
//               length and CRC computed on the way;
//   `npz_path`  the NumPy export: byte for byte what WriteNpz writes of that state, each member
//               read back from the new checkpoint file by offset.
//
// The checkpoint is judged as CheckpointDir::Load judges it, with the same errors (kNotFound
// without the manifest; kCorruption naming the damaged, missing or inconsistent file;
// kIOError; kFailedPrecondition for a newer format), before or while the files are written.
// Both files are written to temporary files and fsynced, and renamed into place only once both
// are complete, the .npz first: a failure leaves no partial or temporary file, and until the
// renames whatever the two paths held before. Memory: the layout, one entry per dense block and
// bounded buffers per shard file, never the parameters. Not thread-safe for the same paths.
Status WriteFinalModel(const CheckpointDir& checkpoints, int64_t epochs_done,
                       const std::string& mrt_path, const std::string& npz_path);

}  // namespace mrtrain::runtime
