#pragma once

#include <algorithm>
#include <cstdint>
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
    for (const api::TensorSpec& spec : specs) gradients_.emplace_back(spec.size(), 0.0f);
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
  int tensor_calls_ = 0;
  int block_calls_ = 0;
  int bad_blocks_ = 0;
};

}  // namespace mrtrain::models
