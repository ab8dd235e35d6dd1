#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/api/mapper.h"

namespace mrtrain::models {

// A multilayer perceptron classifier (model type "mlp"): hidden layers with ReLU, then a
// softmax output layer with cross-entropy loss. For hidden widths h1..hL and K classes the
// tensors are W1[d x h1], b1[h1], W2[h1 x h2], b2[h2], ..., W{L+1}[hL x K], b{L+1}[K], in
// that order. Labels must be integers in [0, K), as for the softmax model.
//
// Rows are processed in chunks with OpenBLAS level 3 (Gemm) for every layer, forward and
// back. Dense rows are used in place, a whole batch at a time up to kMaxDenseChunkRows rows.
// Sparse rows are first scattered into a dense scratch chunk of at most 256 rows (fewer for
// wide data, to bound the scratch memory), so sparse data may have at most
// kMaxSparseFeatures features; DescribeModel and the other calls throw std::invalid_argument
// beyond that.
//
// Scratch buffers grow to the largest chunk and are reused, so steady-state calls allocate
// nothing. One instance per thread.
class MlpModel final : public api::Mapper {
 public:
  static constexpr int64_t kMaxSparseFeatures = 1000000;
  static constexpr int64_t kMaxDenseChunkRows = 4096;

  // hidden: the hidden layer widths; classes: K, or 0 to take it from the data.
  // REQUIRES: hidden is non-empty with every width >= 1; classes == 0 or classes >= 2.
  MlpModel(std::vector<int64_t> hidden, int64_t classes);

  std::vector<api::TensorSpec> DescribeModel(const api::DataShape& shape) override;
  void Gradient(const api::MapContext& ctx, const api::Rows& rows, const api::ParamsView& params,
                api::GradientSink& sink, api::MapStats& stats) override;
  void Evaluate(const api::Rows& rows, const api::ParamsView& params,
                api::MapStats& stats) override;
  // K once DescribeModel has run.
  int NumOutputs() const override;
  // Writes the most probable class as the prediction and the K class probabilities as scores.
  void Predict(const api::Rows& rows, const api::ParamsView& params, float* predicted,
               float* scores) override;

 private:
  // Weight layers (hidden and output); layer l's tensors are W at 2l and b at 2l + 1.
  size_t num_layers() const { return hidden_.size() + 1; }
  static size_t WeightId(size_t layer) { return 2 * layer; }
  static size_t BiasId(size_t layer) { return 2 * layer + 1; }
  int64_t num_features() const { return widths_.empty() ? 0 : widths_.front(); }
  int64_t num_classes() const { return widths_.empty() ? 0 : widths_.back(); }

  void CheckCall(const api::Rows& rows, const api::ParamsView& params, bool needs_labels) const;
  int64_t ChunkRows(const api::Rows& rows) const;
  void ReserveScratch(int64_t chunk_rows, bool sparse);
  // Calls fn(begin, m, x) for consecutive chunks of rows [begin, begin + m), with x the
  // chunk's dense m x d features.
  template <typename Fn>
  void ForEachChunk(const api::Rows& rows, Fn&& fn);
  // Writes the values of sparse rows [begin, begin + m) into densified_, or zeros them again.
  void Scatter(const api::Rows& rows, int64_t begin, int64_t m, bool clear);
  // Runs x[m x d] through every layer and returns the m x K logits (in outputs_.back()).
  float* Forward(const float* x, int64_t m, const api::ParamsView& params);
  // Given dLoss/dlogits in outputs_.back(), writes (or, with `accumulate`, adds) the weight
  // and bias gradients of the chunk to grads_.
  void Backward(const float* x, int64_t m, const api::ParamsView& params, bool accumulate);

  // Constant after construction.
  const std::vector<int64_t> hidden_;
  const int64_t classes_;  // as configured; 0 means from the data

  // Set by DescribeModel.
  std::vector<int64_t> widths_;  // d, h1, ..., hL, K

  // Scratch.
  std::vector<std::vector<float>> outputs_;  // layer l: chunk x widths_[l + 1], after ReLU
  std::vector<std::vector<float>> deltas_;   // hidden layer l: dLoss/d(its pre-activation)
  std::vector<std::vector<float>> grads_;    // one per tensor, in DescribeModel order
  std::vector<float> densified_;             // chunk x d; all zero between chunks
};

}  // namespace mrtrain::models
