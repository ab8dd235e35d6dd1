#include "engine/models/fm_model.h"

#include <algorithm>
#include <cmath>

#include "engine/models/batch_checks.h"

namespace mrtrain::models {
namespace {

constexpr char kName[] = "fm";
constexpr int kW = 0;
constexpr int kB = 1;
constexpr int kV = 2;

// sigmoid(z) from e = exp(-|z|), which never overflows.
float Sigmoid(float z, float e) { return (z >= 0 ? 1.0f : e) / (1.0f + e); }

}  // namespace

FmModel::FmModel(int64_t factors) : factors_(factors), sums_(factors) {}

std::vector<api::TensorSpec> FmModel::DescribeModel(const api::DataShape& shape) {
  CheckShape(kName, shape);
  num_features_ = shape.num_features;
  row_sparse_ = UsesRowSparseWeights(shape, 1 + factors_);
  w_grad_.Resize(num_features_, 1, row_sparse_);
  v_grad_.Resize(num_features_, factors_, row_sparse_);
  if (row_sparse_) {
    return {{"w", {num_features_, 1}, api::TensorSpec::Role::kWeight, /*row_sparse=*/true},
            {"b", {1}, api::TensorSpec::Role::kBias},
            {"v", {num_features_, factors_}, api::TensorSpec::Role::kWeight, /*row_sparse=*/true}};
  }
  return {{"w", {num_features_}, api::TensorSpec::Role::kWeight},
          {"b", {1}, api::TensorSpec::Role::kBias},
          {"v", {num_features_, factors_}, api::TensorSpec::Role::kWeight}};
}

void FmModel::NeededRows(const api::Rows& rows, api::RowRequest& request) {
  if (row_sparse_ && rows.num_rows > 0) {
    CheckRows(kName, rows, num_features_, /*needs_labels=*/false);
    NeedFeatureRows(rows, {kW, kV}, &need_scratch_, request);
  }
}

FmModel::Nonzeros FmModel::RowAt(const api::Rows& rows, int64_t i) {
  if (rows.is_sparse) {
    const int64_t begin = rows.row_offsets[i];
    return {rows.cols + begin, rows.values + begin, rows.row_offsets[i + 1] - begin};
  }
  idx_.clear();
  val_.clear();
  const float* row = rows.dense + i * num_features_;
  for (int64_t c = 0; c < num_features_; ++c) {
    if (row[c] == 0.0f) continue;
    idx_.push_back(static_cast<uint32_t>(c));
    val_.push_back(row[c]);
  }
  return {idx_.data(), val_.data(), static_cast<int64_t>(idx_.size())};
}

float FmModel::Score(const Nonzeros& x, const api::ParamsView& params) {
  const int64_t k = factors_;
  float linear = params.tensors[kB][0];
  std::fill(sums_.begin(), sums_.end(), 0.0f);
  float squares = 0;  // sum_f sum_i v_if^2 x_i^2
  for (int64_t p = 0; p < x.count; ++p) {
    const float xi = x.values[p];
    const float* vi = FactorsOf(params, x.cols[p]);
    linear += *WeightOf(params, x.cols[p]) * xi;
    for (int64_t f = 0; f < k; ++f) {
      const float t = vi[f] * xi;
      sums_[f] += t;
      squares += t * t;
    }
  }
  float pairs = 0;
  for (int64_t f = 0; f < k; ++f) pairs += sums_[f] * sums_[f];
  return linear + 0.5f * (pairs - squares);
}

void FmModel::AddRowGradient(const Nonzeros& x, float dz, const api::ParamsView& params) {
  const int64_t k = factors_;
  for (int64_t p = 0; p < x.count; ++p) {
    const uint32_t c = x.cols[p];
    const float xi = x.values[p];
    w_grad_.Row(c)[0] += dz * xi;
    const float* vi = FactorsOf(params, c);
    float* dvi = v_grad_.Row(c);
    for (int64_t f = 0; f < k; ++f) dvi[f] += dz * xi * (sums_[f] - vi[f] * xi);
  }
}

void FmModel::Run(const api::Rows& rows, const api::ParamsView& params, api::GradientSink* sink,
                  api::MapStats& stats) {
  CheckRows(kName, rows, num_features_, /*needs_labels=*/true);
  CheckParams(kName, params, 3);
  const int64_t n = rows.num_rows;
  CheckBinaryLabels(kName, rows.labels, n);
  double loss = 0;
  int64_t correct = 0;
  float db = 0;
  for (int64_t i = 0; i < n; ++i) {
    const Nonzeros x = RowAt(rows, i);
    const float z = Score(x, params);
    const float y = rows.labels[i] == 1 ? 1.0f : 0.0f;
    const float e = std::exp(-std::abs(z));
    // log(1 + exp(z)) - y z, as in the logistic model.
    loss += static_cast<double>(std::log1p(e)) + std::max(z, 0.0f) - y * z;
    correct += (z >= 0) == (y == 1);
    if (sink == nullptr) continue;
    const float dz = Sigmoid(z, e) - y;
    db += dz;
    AddRowGradient(x, dz, params);
  }
  stats.loss_sum += loss;
  stats.examples += n;
  stats.correct += correct;
  if (sink == nullptr || n == 0) return;
  w_grad_.Emit(kW, *sink);
  sink->AddTensor(kB, &db, 1);
  v_grad_.Emit(kV, *sink);
}

void FmModel::Gradient(const api::MapContext& /*ctx*/, const api::Rows& rows,
                       const api::ParamsView& params, api::GradientSink& sink,
                       api::MapStats& stats) {
  Run(rows, params, &sink, stats);
}

void FmModel::Evaluate(const api::Rows& rows, const api::ParamsView& params, api::MapStats& stats) {
  Run(rows, params, nullptr, stats);
}

void FmModel::Predict(const api::Rows& rows, const api::ParamsView& params, float* predicted,
                      float* scores) {
  CheckRows(kName, rows, num_features_, /*needs_labels=*/false);
  CheckParams(kName, params, 3);
  for (int64_t i = 0; i < rows.num_rows; ++i) {
    const float z = Score(RowAt(rows, i), params);
    predicted[i] = z >= 0 ? 1.0f : 0.0f;
    scores[i] = Sigmoid(z, std::exp(-std::abs(z)));
  }
}

}  // namespace mrtrain::models
