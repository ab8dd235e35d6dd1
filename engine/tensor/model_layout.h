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

// The tensors of a model and how they are cut into blocks of `block_size` floats (the last
// block of a tensor may be shorter). Immutable after Create; thread-safe.
class ModelLayout {
 public:
  // Fails with kInvalidArgument for an empty model, duplicate names, non-positive dimensions,
  // more than kMaxModelParams parameters, too many tensors or blocks, or block_size < 1.
  static Result<ModelLayout> Create(std::vector<api::TensorSpec> specs, int64_t block_size);

  const std::vector<api::TensorSpec>& specs() const { return specs_; }
  int num_tensors() const { return static_cast<int>(specs_.size()); }
  int64_t block_size() const { return block_size_; }
  int64_t num_blocks(int tensor) const;
  int64_t num_parameters() const { return num_parameters_; }

  // Every key of the model in ascending order.
  const std::vector<ParamKey>& keys() const { return keys_; }

  // REQUIRES: IsValid(key).
  BlockRange Range(ParamKey key) const;
  bool IsValid(ParamKey key) const;

  // Index of the tensor named `name`, or -1.
  int FindTensor(const std::string& name) const;

 private:
  std::vector<api::TensorSpec> specs_;
  int64_t block_size_ = 0;
  int64_t num_parameters_ = 0;
  std::vector<ParamKey> keys_;
};

}  // namespace mrtrain
