#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/api/views.h"
#include "engine/base/status.h"
#include "engine/tensor/param_key.h"

namespace mrtrain {

// Where one block lives: floats [offset, offset + length) of tensor `tensor`.
struct BlockRange {
  int tensor = 0;
  int64_t offset = 0;
  int64_t length = 0;
};

// The most parameters a model may have: 2^28 float32 values, 1 GiB, which every worker holding
// the model, its gradients and its optimizer state must afford several times over. Checked
// before anything of that size is allocated (and by the job spec for what it alone decides).
inline constexpr int64_t kMaxModelParams = int64_t{1} << 28;

// Row-sparse tensors (api::TensorSpec::row_sparse) are not counted against kMaxModelParams:
// only the rows a round touches ever exist. A row is one ParamKey (tensor, row id), so rows are
// limited by the key's 48 bits, and a row's floats travel as one block.
inline constexpr int64_t kMaxTensorRows = int64_t{1} << 48;
inline constexpr int64_t kMaxRowDim = int64_t{1} << 14;

// The tensors of a model and how they are cut into blocks of `block_size` floats (the last
// block of a tensor may be shorter). Immutable after Create; thread-safe.
class ModelLayout {
 public:
  // Fails with kInvalidArgument for an empty model, duplicate names, non-positive dimensions,
  // more than kMaxModelParams parameters, too many tensors or blocks, or block_size < 1; for a
  // row-sparse tensor whose shape is not [rows, dim] with rows <= kMaxTensorRows and
  // dim <= kMaxRowDim.
  static Result<ModelLayout> Create(std::vector<api::TensorSpec> specs, int64_t block_size);

  const std::vector<api::TensorSpec>& specs() const { return specs_; }
  int num_tensors() const { return static_cast<int>(specs_.size()); }
  int64_t block_size() const { return block_size_; }
  // Blocks of a dense tensor; rows of a row-sparse one.
  int64_t num_blocks(int tensor) const;
  // Floats of the dense tensors.
  int64_t num_parameters() const { return num_parameters_; }

  bool is_row_sparse(int tensor) const { return specs_[tensor].row_sparse; }
  bool has_row_sparse() const { return has_row_sparse_; }
  // The most floats one key holds: block_size, or a longer row of a row-sparse tensor.
  int64_t max_key_length() const { return max_key_length_; }

  // Every key of the dense tensors in ascending order (rows of row-sparse tensors are never
  // enumerated).
  const std::vector<ParamKey>& keys() const { return keys_; }

  // For a row key (tensor, row): offset row * dim, length dim. REQUIRES: IsValid(key).
  BlockRange Range(ParamKey key) const;
  // A block of a dense tensor, or a row within the rows of a row-sparse one.
  bool IsValid(ParamKey key) const;
  // How messages name a key: `tensor "w" (id 0) row 17` or `... block 3`.
  std::string DescribeKey(ParamKey key) const;

  // Index of the tensor named `name`, or -1.
  int FindTensor(const std::string& name) const;

 private:
  std::vector<api::TensorSpec> specs_;
  int64_t block_size_ = 0;
  int64_t num_parameters_ = 0;
  int64_t max_key_length_ = 0;
  bool has_row_sparse_ = false;
  std::vector<ParamKey> keys_;
};

}  // namespace mrtrain
