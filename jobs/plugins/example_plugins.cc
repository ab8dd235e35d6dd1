// Example plugins: a Huber-loss linear regression (a Mapper) and SGD with element-wise gradient
// clipping (a Reducer). Written against engine/api only, as any plugin outside this repository
// would be; see docs/plugins.md.

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/api/plugin.h"

namespace mrtrain_example {

using mrtrain::api::Hyperparameters;

// Throws std::invalid_argument for a key not in `allowed`, so a typo is not silently ignored.
void CheckKeys(const Hyperparameters& params, const std::vector<std::string>& allowed,
               const std::string& what) {
  for (const auto& entry : params.values()) {
    if (std::find(allowed.begin(), allowed.end(), entry.first) == allowed.end()) {
      throw std::invalid_argument(entry.first + " is not a parameter of " + what);
    }
  }
}

// Linear regression y ~ x.w + b under the Huber loss: quadratic for residuals within `delta`,
// linear beyond, so outliers pull the fit less than under least squares. Params: delta (> 0,
// default 1).
class HuberMapper : public mrtrain::api::Mapper {
 public:
  explicit HuberMapper(const Hyperparameters& params) {
    CheckKeys(params, {"delta"}, "mapper huber");
    delta_ = params.GetDouble("delta", 1.0);
    if (!(delta_ > 0)) throw std::invalid_argument("delta must be > 0");
  }

  std::vector<mrtrain::api::TensorSpec> DescribeModel(
      const mrtrain::api::DataShape& shape) override {
    num_features_ = shape.num_features;
    return {{"w", {shape.num_features}, mrtrain::api::TensorSpec::Role::kWeight},
            {"b", {1}, mrtrain::api::TensorSpec::Role::kBias}};
  }

  void Gradient(const mrtrain::api::MapContext& /*ctx*/, const mrtrain::api::Rows& rows,
                const mrtrain::api::ParamsView& params, mrtrain::api::GradientSink& sink,
                mrtrain::api::MapStats& stats) override {
    const float* w = params.tensors.at(0);
    const float b = params.tensors.at(1)[0];
    grad_w_.assign(num_features_, 0.0f);
    float grad_b = 0;
    for (int64_t i = 0; i < rows.num_rows; ++i) {
      const float r = Score(rows, i, w, b) - rows.labels[i];
      stats.loss_sum += Loss(r);
      const float d = std::abs(r) <= delta_ ? r : static_cast<float>(delta_) * (r > 0 ? 1 : -1);
      ForEachFeature(rows, i, [&](int64_t col, float x) { grad_w_[col] += d * x; });
      grad_b += d;
    }
    stats.examples += rows.num_rows;
    sink.AddTensor(0, grad_w_);  // size-checked: a buffer of another size fails the task
    sink.AddTensor(1, &grad_b, 1);
  }

  void Evaluate(const mrtrain::api::Rows& rows, const mrtrain::api::ParamsView& params,
                mrtrain::api::MapStats& stats) override {
    const float* w = params.tensors.at(0);
    const float b = params.tensors.at(1)[0];
    for (int64_t i = 0; i < rows.num_rows; ++i) {
      stats.loss_sum += Loss(Score(rows, i, w, b) - rows.labels[i]);
    }
    stats.examples += rows.num_rows;
  }

  int NumOutputs() const override { return 1; }

  void Predict(const mrtrain::api::Rows& rows, const mrtrain::api::ParamsView& params,
               float* predicted, float* scores) override {
    const float* w = params.tensors.at(0);
    const float b = params.tensors.at(1)[0];
    for (int64_t i = 0; i < rows.num_rows; ++i) {
      predicted[i] = scores[i] = Score(rows, i, w, b);
    }
  }

 private:
  template <typename Fn>
  static void ForEachFeature(const mrtrain::api::Rows& rows, int64_t i, Fn fn) {
    if (rows.is_sparse) {
      for (int64_t k = rows.row_offsets[i]; k < rows.row_offsets[i + 1]; ++k) {
        fn(rows.cols[k], rows.values[k]);
      }
    } else {
      const float* x = rows.dense + i * rows.num_cols;
      for (int64_t j = 0; j < rows.num_cols; ++j) fn(j, x[j]);
    }
  }

  float Score(const mrtrain::api::Rows& rows, int64_t i, const float* w, float b) const {
    float z = b;
    ForEachFeature(rows, i, [&](int64_t col, float x) {
      if (col < num_features_) z += w[col] * x;
    });
    return z;
  }

  double Loss(float r) const {
    const double a = std::abs(static_cast<double>(r));
    return a <= delta_ ? 0.5 * a * a : delta_ * (a - 0.5 * delta_);
  }

  double delta_ = 1.0;
  int64_t num_features_ = 0;
  std::vector<float> grad_w_;  // scratch, one task at a time
};

// Plain SGD whose gradient is first clipped element-wise to [-clip, clip], which bounds the
// step any one noisy round can take. Params: clip (> 0, default 1). No per-parameter state.
class ClippedSgdReducer : public mrtrain::api::Reducer {
 public:
  explicit ClippedSgdReducer(const Hyperparameters& params) {
    CheckKeys(params, {"clip"}, "reducer clipped_sgd");
    clip_ = static_cast<float>(params.GetDouble("clip", 1.0));
    if (!(clip_ > 0)) throw std::invalid_argument("clip must be > 0");
  }

  int NumSlots() const override { return 0; }

  void Update(const mrtrain::api::UpdateContext& ctx, const float* grad, float* params,
              float* const* /*slots*/, int64_t n) override {
    const float lr = static_cast<float>(ctx.learning_rate);
    for (int64_t i = 0; i < n; ++i) params[i] -= lr * std::clamp(grad[i], -clip_, clip_);
  }

 private:
  float clip_ = 1.0f;
};

// A map-side combiner that bounds what one partition can contribute to a round: each block of
// a task's summed gradient is scaled down so that its L2 norm is at most max_norm times the
// task's example count (per-example norm clipping at the block level, as in DP-SGD or robust
// training). Blocks within the bound travel unchanged. Params: max_norm (> 0, default 1).
class BlockClipCombiner : public mrtrain::api::Combiner {
 public:
  explicit BlockClipCombiner(const Hyperparameters& params) {
    CheckKeys(params, {"max_norm"}, "combiner block_clip");
    max_norm_ = params.GetDouble("max_norm", 1.0);
    if (!(max_norm_ > 0)) throw std::invalid_argument("max_norm must be > 0");
  }

  void Combine(const mrtrain::api::CombineContext& ctx, float* values, int64_t n) override {
    double norm2 = 0;
    for (int64_t i = 0; i < n; ++i) norm2 += static_cast<double>(values[i]) * values[i];
    const double bound = max_norm_ * static_cast<double>(ctx.examples);
    if (norm2 <= bound * bound) return;
    const float scale = static_cast<float>(bound / std::sqrt(norm2));
    for (int64_t i = 0; i < n; ++i) values[i] *= scale;
  }

 private:
  double max_norm_ = 1.0;
};

}  // namespace mrtrain_example

MRTRAIN_PLUGIN(MRTRAIN_MAPPER("huber", mrtrain_example::HuberMapper),
               MRTRAIN_REDUCER("clipped_sgd", mrtrain_example::ClippedSgdReducer),
               MRTRAIN_COMBINER("block_clip", mrtrain_example::BlockClipCombiner))
