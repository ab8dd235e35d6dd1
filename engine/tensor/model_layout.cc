#include "engine/tensor/model_layout.h"

#include <algorithm>
#include <set>

namespace mrtrain {
namespace {

Status TooLarge(const api::TensorSpec& spec) {
  std::string shape;
  for (int64_t d : spec.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
  return InvalidArgumentError("tensor '" + spec.name + "' of shape [" + shape +
                              "] takes the model past " + std::to_string(kMaxModelParams) +
                              " parameters (1 GiB of float32), the limit");
}

Status CheckRowSparse(const api::TensorSpec& spec) {
  if (spec.shape.size() != 2 || spec.shape[0] < 1 || spec.shape[1] < 1) {
    return InvalidArgumentError("row-sparse tensor '" + spec.name +
                                "' must have shape [rows, dim] with both positive");
  }
  if (spec.shape[0] > kMaxTensorRows) {
    return InvalidArgumentError("row-sparse tensor '" + spec.name + "' has " +
                                std::to_string(spec.shape[0]) + " rows, over the limit of 2^48");
  }
  if (spec.shape[1] > kMaxRowDim) {
    return InvalidArgumentError("row-sparse tensor '" + spec.name + "' has rows of " +
                                std::to_string(spec.shape[1]) + " floats, over the limit of " +
                                std::to_string(kMaxRowDim));
  }
  return Status::Ok();
}

}  // namespace

Result<ModelLayout> ModelLayout::Create(std::vector<api::TensorSpec> specs, int64_t block_size) {
  if (block_size < 1) {
    return InvalidArgumentError("model.block_size must be at least 1, got " +
                                std::to_string(block_size));
  }
  if (specs.empty()) return InvalidArgumentError("the model has no tensors");
  if (specs.size() > ParamKey::kMaxTensors) {
    return InvalidArgumentError("the model has " + std::to_string(specs.size()) +
                                " tensors; at most 65536 are allowed");
  }
  ModelLayout layout;
  std::set<std::string> names;
  for (size_t t = 0; t < specs.size(); ++t) {
    const auto& spec = specs[t];
    if (!names.insert(spec.name).second) {
      return InvalidArgumentError("the model names tensor '" + spec.name + "' twice");
    }
    if (spec.shape.empty()) {
      return InvalidArgumentError("tensor '" + spec.name + "' has no dimensions");
    }
    if (spec.row_sparse) {
      MRTRAIN_RETURN_IF_ERROR(CheckRowSparse(spec));
      layout.has_row_sparse_ = true;
      layout.max_key_length_ = std::max(layout.max_key_length_, spec.shape[1]);
      continue;
    }
    // Each product stays within the limit, so neither size() nor the sum can overflow.
    int64_t size = 1;
    for (int64_t d : spec.shape) {
      if (d < 1) {
        return InvalidArgumentError("tensor '" + spec.name + "' has dimension " +
                                    std::to_string(d) + "; dimensions must be positive");
      }
      if (d > (kMaxModelParams - layout.num_parameters_) / size) return TooLarge(spec);
      size *= d;
    }
    // (size - 1) / b + 1 rather than (size + b - 1) / b: no overflow for block sizes near
    // INT64_MAX.
    int64_t blocks = (spec.size() - 1) / block_size + 1;
    if (static_cast<uint64_t>(blocks) >= ParamKey::kMaxBlocks) {
      return InvalidArgumentError("tensor '" + spec.name + "' needs too many blocks");
    }
    for (int64_t b = 0; b < blocks; ++b) layout.keys_.emplace_back(t, b);
    layout.num_parameters_ += spec.size();
    layout.max_key_length_ = std::max(layout.max_key_length_, std::min(block_size, spec.size()));
  }
  layout.specs_ = std::move(specs);
  layout.block_size_ = block_size;
  return layout;
}

int64_t ModelLayout::num_blocks(int tensor) const {
  if (specs_[tensor].row_sparse) return specs_[tensor].shape[0];
  return (specs_[tensor].size() - 1) / block_size_ + 1;
}

bool ModelLayout::IsValid(ParamKey key) const {
  return key.tensor() < specs_.size() &&
         key.block() < static_cast<uint64_t>(num_blocks(static_cast<int>(key.tensor())));
}

BlockRange ModelLayout::Range(ParamKey key) const {
  BlockRange r;
  r.tensor = static_cast<int>(key.tensor());
  if (specs_[r.tensor].row_sparse) {
    const int64_t dim = specs_[r.tensor].shape[1];
    r.offset = static_cast<int64_t>(key.block()) * dim;  // < 2^48 * 2^14: no overflow
    r.length = dim;
    return r;
  }
  r.offset = static_cast<int64_t>(key.block()) * block_size_;
  int64_t size = specs_[r.tensor].size();
  r.length = std::min(block_size_, size - r.offset);
  return r;
}

std::string ModelLayout::DescribeKey(ParamKey key) const {
  const uint32_t t = key.tensor();
  if (t >= specs_.size()) {
    return "tensor id " + std::to_string(t) + " (the model has " + std::to_string(specs_.size()) +
           " tensors) block " + std::to_string(key.block());
  }
  return "tensor \"" + specs_[t].name + "\" (id " + std::to_string(t) + ") " +
         (specs_[t].row_sparse ? "row " : "block ") + std::to_string(key.block());
}

int ModelLayout::FindTensor(const std::string& name) const {
  for (size_t t = 0; t < specs_.size(); ++t) {
    if (specs_[t].name == name) return static_cast<int>(t);
  }
  return -1;
}

}  // namespace mrtrain
