#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/base/status.h"
#include "runtime/checkpoint/checkpoint.h"

namespace mrtrain::runtime {

// A checkpoint file (.mrt, the final model.mrt) read piece by piece instead of whole: Open
// judges it as ReadCheckpointFile does, with the same errors, keeping only its header and where
// each array is (IndexCheckpointFile). Then ReadDense reads one dense tensor, ReadBytes any
// range (pread), and FindRow looks up one stored row of a row-sparse tensor by binary search
// over its sorted ids in a read-only mapping of the file. So `predict` holds the dense tensors
// and the rows a partition needs, and the .npz export a bounded buffer, never the whole model.
// Thread-safe after Open: every read is a pread or a read of the mapping.
class ModelFileReader {
 public:
  // Errors as ReadCheckpointFile's; kIOError when the file cannot be opened or mapped.
  static Result<std::unique_ptr<ModelFileReader>> Open(const std::string& path);
  ~ModelFileReader();
  ModelFileReader(const ModelFileReader&) = delete;
  ModelFileReader& operator=(const ModelFileReader&) = delete;

  const std::string& path() const { return path_; }
  // Everything of the checkpoint but its arrays: state.layout and state.step are set,
  // state.tensors has an empty vector per tensor, state.slots and state.rows are empty.
  const Checkpoint& header() const { return header_; }
  const CheckpointArrays::Tensor& arrays(int tensor) const { return arrays_.tensors[tensor]; }
  uint64_t file_bytes() const { return arrays_.file_bytes; }
  // CRC32C of the whole file, trailer included.
  uint32_t file_crc32c() const { return arrays_.file_crc32c; }

  // Copies bytes [offset, offset + n) of the file to `out`. kIOError naming the file.
  Status ReadBytes(uint64_t offset, void* out, size_t n) const;
  // The floats of dense tensor `tensor`. kIOError naming the file. REQUIRES: not row-sparse.
  Status ReadDense(int tensor, std::vector<float>* out) const;
  // Copies stored row `id` of row-sparse tensor `tensor` (row_dim() floats) to `out` and
  // returns true; false, touching nothing, when the file does not store that row.
  bool FindRow(int tensor, int64_t id, float* out) const;

 private:
  ModelFileReader() = default;

  // Constant after Open.
  std::string path_;
  Checkpoint header_;
  CheckpointArrays arrays_;
  int fd_ = -1;
  // The whole file mapped read-only, when it has row-sparse tensors (FindRow); else null.
  const uint8_t* map_ = nullptr;
  size_t map_size_ = 0;
};

}  // namespace mrtrain::runtime
