#pragma once

#include <cstdint>
#include <string>
#include <vector>

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

// Where the arrays of a checkpoint file are, for readers that fetch them piece by piece.
struct CheckpointArrays {
  struct Tensor {
    uint64_t data_offset = 0;  // byte offset of a dense tensor's floats, or of a row-sparse
                               // tensor's row values (num_rows * dim floats, in id order)
    uint64_t num_rows = 0;     // row-sparse only: the stored rows
    uint64_t ids_offset = 0;   // row-sparse only: their ids, num_rows little-endian i64
  };
  std::vector<Tensor> tensors;  // in tensor-table order
  uint64_t file_bytes = 0;
  uint32_t file_crc32c = 0;  // CRC32C of the whole file, trailer included: its identity
};

// Judges `path` exactly as ReadCheckpointFile does (the same checks in the same order, the same
// errors) but skips its arrays, noting in `arrays` where they are: the result holds everything
// but state.tensors, state.slots and state.rows, which are empty. Memory does not grow with the
// file: the CRC and the row ids are checked by streaming through it.
Result<Checkpoint> IndexCheckpointFile(const std::string& path, CheckpointArrays* arrays);

}  // namespace mrtrain::runtime
