#include "engine/models/mlp_model.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

#include "engine/models/batch_checks.h"
#include "engine/models/softmax_cross_entropy.h"
#include "engine/tensor/blas.h"

namespace mrtrain::models {
namespace {

constexpr char kName[] = "mlp";

// Sparse chunks hold at most this many rows, and at most kDensifyFloats floats in all: 64 MB
// per mapper, so two threads on wide data do not need gigabytes of scratch.
constexpr int64_t kMaxSparseChunkRows = 256;
constexpr int64_t kDensifyFloats = int64_t{1} << 24;

void CheckSparseWidth(int64_t num_features) {
  if (num_features > MlpModel::kMaxSparseFeatures) {
    throw std::invalid_argument(
        std::string(kName) + ": sparse data has " + std::to_string(num_features) +
        " features, but the MLP densifies its input and needs a dense feature count up to "
        "1e6 (1,000,000); hash or select features first");
  }
}

// out[m x w] += the bias row b[w], then ReLU when `relu`.
void AddBias(float* out, int64_t m, int64_t w, const float* b, bool relu) {
  for (int64_t i = 0; i < m; ++i) {
    float* row = out + i * w;
    if (relu) {
      for (int64_t j = 0; j < w; ++j) row[j] = std::max(row[j] + b[j], 0.0f);
    } else {
      for (int64_t j = 0; j < w; ++j) row[j] += b[j];
    }
  }
}

// sums[w] (+)= the column sums of x[m x w].
void ColumnSums(const float* x, int64_t m, int64_t w, bool accumulate, float* sums) {
  if (!accumulate) std::fill_n(sums, w, 0.0f);
  for (int64_t i = 0; i < m; ++i) {
    const float* row = x + i * w;
    for (int64_t j = 0; j < w; ++j) sums[j] += row[j];
  }
}

// ReLU's derivative: zero the gradient where the unit was off (output 0). Loading delta[i]
// before the test lets the compiler select without a branch, which would be mispredicted
// for about half the units.
void ReluBackward(const float* output, int64_t count, float* delta) {
  for (int64_t i = 0; i < count; ++i) {
    const float d = delta[i];
    delta[i] = output[i] > 0.0f ? d : 0.0f;
  }
}

}  // namespace

MlpModel::MlpModel(std::vector<int64_t> hidden, int64_t classes)
    : hidden_(std::move(hidden)), classes_(classes) {}

int MlpModel::NumOutputs() const { return static_cast<int>(num_classes()); }

std::vector<api::TensorSpec> MlpModel::DescribeModel(const api::DataShape& shape) {
  CheckShape(kName, shape);
  if (shape.is_sparse) CheckSparseWidth(shape.num_features);
  const int64_t k = ResolveClasses(kName, classes_, shape);
  widths_.assign(1, shape.num_features);
  widths_.insert(widths_.end(), hidden_.begin(), hidden_.end());
  widths_.push_back(k);

  std::vector<api::TensorSpec> specs;
  grads_.clear();
  for (size_t l = 0; l < num_layers(); ++l) {
    const std::string layer = std::to_string(l + 1);
    specs.push_back({"W" + layer, {widths_[l], widths_[l + 1]}, api::TensorSpec::Role::kWeight});
    specs.push_back({"b" + layer, {widths_[l + 1]}, api::TensorSpec::Role::kBias});
  }
  for (const api::TensorSpec& spec : specs) grads_.emplace_back(spec.size());
  outputs_.assign(num_layers(), {});
  deltas_.assign(num_layers() - 1, {});
  densified_.clear();
  return specs;
}

void MlpModel::CheckCall(const api::Rows& rows, const api::ParamsView& params,
                         bool needs_labels) const {
  CheckRows(kName, rows, num_features(), needs_labels);
  CheckParams(kName, params, 2 * num_layers());
  if (rows.is_sparse) CheckSparseWidth(num_features());
  if (needs_labels) CheckClassLabels(kName, rows.labels, rows.num_rows, num_classes());
}

int64_t MlpModel::ChunkRows(const api::Rows& rows) const {
  if (!rows.is_sparse) return std::min(rows.num_rows, kMaxDenseChunkRows);
  const int64_t fits = std::max<int64_t>(1, kDensifyFloats / num_features());
  return std::min({rows.num_rows, kMaxSparseChunkRows, fits});
}

void MlpModel::ReserveScratch(int64_t chunk_rows, bool sparse) {
  auto grow = [](std::vector<float>& v, int64_t size) {
    if (static_cast<int64_t>(v.size()) < size) v.resize(size, 0.0f);
  };
  for (size_t l = 0; l < num_layers(); ++l) grow(outputs_[l], chunk_rows * widths_[l + 1]);
  for (size_t l = 0; l + 1 < num_layers(); ++l) grow(deltas_[l], chunk_rows * widths_[l + 1]);
  if (sparse) grow(densified_, chunk_rows * num_features());
}

template <typename Fn>
void MlpModel::ForEachChunk(const api::Rows& rows, Fn&& fn) {
  const int64_t chunk = ChunkRows(rows);
  ReserveScratch(chunk, rows.is_sparse);
  for (int64_t begin = 0; begin < rows.num_rows; begin += chunk) {
    const int64_t m = std::min(chunk, rows.num_rows - begin);
    if (!rows.is_sparse) {
      fn(begin, m, rows.dense + begin * num_features());
      continue;
    }
    Scatter(rows, begin, m, /*clear=*/false);
    fn(begin, m, static_cast<const float*>(densified_.data()));
    Scatter(rows, begin, m, /*clear=*/true);
  }
}

void MlpModel::Scatter(const api::Rows& rows, int64_t begin, int64_t m, bool clear) {
  const int64_t d = num_features();
  for (int64_t i = 0; i < m; ++i) {
    float* row = densified_.data() + i * d;
    for (int64_t p = rows.row_offsets[begin + i]; p < rows.row_offsets[begin + i + 1]; ++p) {
      row[rows.cols[p]] = clear ? 0.0f : rows.values[p];
    }
  }
}

float* MlpModel::Forward(const float* x, int64_t m, const api::ParamsView& params) {
  const float* in = x;
  for (size_t l = 0; l < num_layers(); ++l) {
    const int64_t fan_in = widths_[l];
    const int64_t fan_out = widths_[l + 1];
    float* out = outputs_[l].data();
    blas::Gemm(false, false, m, fan_out, fan_in, 1.0f, in, fan_in, params.tensors[WeightId(l)],
               fan_out, 0.0f, out, fan_out);
    AddBias(out, m, fan_out, params.tensors[BiasId(l)], /*relu=*/l + 1 < num_layers());
    in = out;
  }
  return outputs_.back().data();
}

void MlpModel::Backward(const float* x, int64_t m, const api::ParamsView& params, bool accumulate) {
  const float beta = accumulate ? 1.0f : 0.0f;
  float* delta = outputs_.back().data();  // dLoss/dlogits, left there by SoftmaxCrossEntropy
  for (size_t l = num_layers(); l-- > 0;) {
    const int64_t fan_in = widths_[l];
    const int64_t fan_out = widths_[l + 1];
    const float* in = l == 0 ? x : outputs_[l - 1].data();
    // dW = in^T * delta, db = column sums of delta.
    blas::Gemm(true, false, fan_in, fan_out, m, 1.0f, in, fan_in, delta, fan_out, beta,
               grads_[WeightId(l)].data(), fan_out);
    ColumnSums(delta, m, fan_out, accumulate, grads_[BiasId(l)].data());
    if (l == 0) break;  // nobody needs dLoss/dx
    // d(in) = delta * W^T, through the ReLU that produced `in`.
    float* in_delta = deltas_[l - 1].data();
    blas::Gemm(false, true, m, fan_in, fan_out, 1.0f, delta, fan_out, params.tensors[WeightId(l)],
               fan_out, 0.0f, in_delta, fan_in);
    ReluBackward(in, m * fan_in, in_delta);
    delta = in_delta;
  }
}

void MlpModel::Gradient(const api::MapContext& /*ctx*/, const api::Rows& rows,
                        const api::ParamsView& params, api::GradientSink& sink,
                        api::MapStats& stats) {
  CheckCall(rows, params, /*needs_labels=*/true);
  if (rows.num_rows == 0) return;
  ForEachChunk(rows, [&](int64_t begin, int64_t m, const float* x) {
    float* logits = Forward(x, m, params);
    SoftmaxCrossEntropy(m, num_classes(), rows.labels + begin, /*gradient=*/true, logits, stats);
    Backward(x, m, params, /*accumulate=*/begin > 0);
  });
  for (size_t t = 0; t < grads_.size(); ++t) sink.AddTensor(static_cast<int>(t), grads_[t]);
}

void MlpModel::Evaluate(const api::Rows& rows, const api::ParamsView& params,
                        api::MapStats& stats) {
  CheckCall(rows, params, /*needs_labels=*/true);
  if (rows.num_rows == 0) return;
  ForEachChunk(rows, [&](int64_t begin, int64_t m, const float* x) {
    float* logits = Forward(x, m, params);
    SoftmaxCrossEntropy(m, num_classes(), rows.labels + begin, /*gradient=*/false, logits, stats);
  });
}

void MlpModel::Predict(const api::Rows& rows, const api::ParamsView& params, float* predicted,
                       float* scores) {
  CheckCall(rows, params, /*needs_labels=*/false);
  if (rows.num_rows == 0) return;
  const int64_t k = num_classes();
  ForEachChunk(rows, [&](int64_t begin, int64_t m, const float* x) {
    float* probabilities = Forward(x, m, params);
    SoftmaxInPlace(m, k, probabilities, predicted + begin);
    std::copy(probabilities, probabilities + m * k, scores + begin * k);
  });
}

}  // namespace mrtrain::models
