#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "engine/api/views.h"

namespace mrtrain::models {

// A GradientSink that sums what it is given into one vector per tensor, as the engine's
// combiner would, and counts the calls of each kind. Not thread-safe.
class CollectingSink : public api::GradientSink {
 public:
  // `specs` must outlive the sink. block_size is what block_size() reports.
  explicit CollectingSink(const std::vector<api::TensorSpec>& specs, int64_t block_size = 4096)
      : specs_(specs), block_size_(block_size) {
    for (const api::TensorSpec& spec : specs) {
      gradients_.emplace_back(spec.row_sparse ? 0 : spec.size(), 0.0f);
    }
    rows_.resize(specs.size());
  }

  void AddTensor(int tensor_id, const float* gradient, size_t count) override {
    std::vector<float>& sum = gradients_.at(tensor_id);
    if (count != sum.size()) {
      ++bad_blocks_;
      return;
    }
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += gradient[i];
    ++tensor_calls_;
  }

  void AddBlock(int tensor_id, int64_t block, const float* gradient, size_t count) override {
    std::vector<float>& sum = gradients_.at(tensor_id);
    const int64_t begin = block * block_size_;
    const int64_t end = std::min<int64_t>(begin + block_size_, sum.size());
    if (block < 0 || begin >= end || count != static_cast<size_t>(end - begin)) {
      ++bad_blocks_;
      return;
    }
    for (int64_t i = begin; i < end; ++i) sum[i] += gradient[i - begin];
    ++block_calls_;
  }

  int64_t block_size() const override { return block_size_; }

  void AddRow(int tensor_id, int64_t row, const float* gradient, size_t count) override {
    const api::TensorSpec& spec = specs_.at(tensor_id);
    if (!spec.row_sparse || row < 0 || row >= spec.shape[0] ||
        count != static_cast<size_t>(spec.row_dim())) {
      ++bad_blocks_;
      return;
    }
    std::vector<float>& sum = rows_[tensor_id][row];
    sum.resize(count, 0.0f);
    for (size_t i = 0; i < count; ++i) sum[i] += gradient[i];
    row_order_.push_back({tensor_id, row});
    ++row_calls_;
  }

  // The rows emitted into row-sparse tensor `tensor_id`, by id.
  const std::map<int64_t, std::vector<float>>& rows(int tensor_id) const {
    return rows_.at(tensor_id);
  }
  // (tensor, row) of every AddRow call, in call order.
  const std::vector<std::pair<int, int64_t>>& row_order() const { return row_order_; }
  int row_calls() const { return row_calls_; }

  const std::vector<float>& gradient(int tensor_id) const { return gradients_.at(tensor_id); }
  const std::vector<std::vector<float>>& gradients() const { return gradients_; }
  int tensor_calls() const { return tensor_calls_; }
  int block_calls() const { return block_calls_; }
  // Calls outside a tensor or whose count is not the size of the place.
  int bad_blocks() const { return bad_blocks_; }

 private:
  const std::vector<api::TensorSpec>& specs_;
  const int64_t block_size_;
  std::vector<std::vector<float>> gradients_;
  std::vector<std::map<int64_t, std::vector<float>>> rows_;
  std::vector<std::pair<int, int64_t>> row_order_;
  int row_calls_ = 0;
  int tensor_calls_ = 0;
  int block_calls_ = 0;
  int bad_blocks_ = 0;
};

}  // namespace mrtrain::models
