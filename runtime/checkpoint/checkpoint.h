#pragma once

#include <cstdint>
#include <string>

#include "engine/api/hyperparameters.h"
#include "engine/api/views.h"
#include "engine/base/status.h"
#include "engine/tensor/model_state.h"

namespace mrtrain::runtime {

// Everything needed to resume a job after epoch `epochs_done`, or to check that a checkpoint
// belongs to the job that wants to resume from it (`fingerprint`). The on-disk form is
// described in runtime/checkpoint/FORMAT.md. A plain value; thread-compatible.
struct Checkpoint {
  int64_t epochs_done = 0;  // epochs completed when written
  std::string fingerprint;  // JobSpec::Fingerprint() of the job
  std::string model_type;   // e.g. "mlp"
  api::Hyperparameters model_params;
  api::DataShape data_shape;
  std::string update_rule;
  ModelState state;  // layout (specs + block_size), tensors, slots, step
};

// Writes `ckpt` to `path` atomically: the bytes go to "<path>.tmp.<pid>", which is flushed,
// fsynced and renamed over `path`, and then the directory is fsynced. Either the complete new
// file or the previous content of `path` is there afterwards, never a part of the new one.
// Fails with kIOError naming the path and the OS's reason (the temporary file is removed), or
// with kInternal when `ckpt` is inconsistent (a layout missing, a tensor or slot of the wrong
// size, negative epochs or step), in which case nothing is written.
Status WriteCheckpointFile(const std::string& path, const Checkpoint& ckpt);

// Reads a file written by WriteCheckpointFile. Every length is checked against the bytes that
// remain before anything is allocated for it, and the CRC32C before anything is decoded, so a
// damaged file costs at most its own size in memory. Fails with
//   kNotFound            when `path` does not exist;
//   kIOError             when it cannot be read;
//   kFailedPrecondition  when it was written by a newer format version (both numbers named);
//   kCorruption          for a bad magic, truncation, a checksum mismatch or an invalid
//                        layout, naming the file and, for truncation, the byte and the field.
Result<Checkpoint> ReadCheckpointFile(const std::string& path);

}  // namespace mrtrain::runtime
