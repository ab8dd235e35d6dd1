// Plugins that misbehave on purpose, for the loader and guard tests.

#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/api/plugin.h"

namespace {

using mrtrain::api::Hyperparameters;

// A one-weight linear model whose Gradient throws from epoch `fail_epoch` (default 0).
class ThrowingMapper : public mrtrain::api::Mapper {
 public:
  explicit ThrowingMapper(const Hyperparameters& params)
      : fail_epoch_(params.GetInt("fail_epoch", 0)) {}
  std::vector<mrtrain::api::TensorSpec> DescribeModel(
      const mrtrain::api::DataShape& shape) override {
    return {{"w", {shape.num_features}, mrtrain::api::TensorSpec::Role::kWeight}};
  }
  void Gradient(const mrtrain::api::MapContext& ctx, const mrtrain::api::Rows& rows,
                const mrtrain::api::ParamsView& /*params*/, mrtrain::api::GradientSink& /*sink*/,
                mrtrain::api::MapStats& stats) override {
    if (ctx.epoch >= fail_epoch_) throw std::runtime_error("thrower gave up on purpose");
    stats.examples += rows.num_rows;
  }
  void Evaluate(const mrtrain::api::Rows& rows, const mrtrain::api::ParamsView& /*params*/,
                mrtrain::api::MapStats& stats) override {
    stats.examples += rows.num_rows;
  }
  int NumOutputs() const override { return 1; }
  void Predict(const mrtrain::api::Rows& rows, const mrtrain::api::ParamsView& /*params*/,
               float* predicted, float* scores) override {
    for (int64_t i = 0; i < rows.num_rows; ++i) predicted[i] = scores[i] = 0;
  }

 private:
  int64_t fail_epoch_;
};

// Least-squares linear regression (dense input) whose first `failures` Gradient calls in the
// process throw: a transient fault, such as a resource that is briefly unavailable. Retried
// attempts compute the same bytes, so the job must end exactly as one without faults.
class FlakyMapper : public mrtrain::api::Mapper {
 public:
  explicit FlakyMapper(const Hyperparameters& params)
      : failures_(params.GetInt("failures", 0)) {}
  std::vector<mrtrain::api::TensorSpec> DescribeModel(
      const mrtrain::api::DataShape& shape) override {
    return {{"w", {shape.num_features}, mrtrain::api::TensorSpec::Role::kWeight}};
  }
  void Gradient(const mrtrain::api::MapContext& /*ctx*/, const mrtrain::api::Rows& rows,
                const mrtrain::api::ParamsView& params, mrtrain::api::GradientSink& sink,
                mrtrain::api::MapStats& stats) override {
    if (failures_ > 0 && faulty_calls_.fetch_add(1) < failures_) {
      throw std::runtime_error("flaky: resource busy");
    }
    std::vector<float> grad(rows.num_cols, 0.0f);
    const float* w = params.tensors[0];
    for (int64_t i = 0; i < rows.num_rows; ++i) {
      const float* x = rows.dense + i * rows.num_cols;
      float residual = -rows.labels[i];
      for (int64_t j = 0; j < rows.num_cols; ++j) residual += w[j] * x[j];
      for (int64_t j = 0; j < rows.num_cols; ++j) grad[j] += residual * x[j];
      stats.loss_sum += 0.5 * residual * residual;
    }
    stats.examples += rows.num_rows;
    sink.AddTensor(0, grad.data());
  }
  void Evaluate(const mrtrain::api::Rows& rows, const mrtrain::api::ParamsView& /*params*/,
                mrtrain::api::MapStats& stats) override {
    stats.examples += rows.num_rows;
  }
  int NumOutputs() const override { return 1; }
  void Predict(const mrtrain::api::Rows& rows, const mrtrain::api::ParamsView& /*params*/,
               float* predicted, float* scores) override {
    for (int64_t i = 0; i < rows.num_rows; ++i) predicted[i] = scores[i] = 0;
  }

 private:
  // Calls of instances asked to fail, across instances: the fault is the process's.
  static inline std::atomic<int64_t> faulty_calls_{0};
  const int64_t failures_;
};

// A combiner that throws on the first block it sees.
class ThrowingCombiner : public mrtrain::api::Combiner {
 public:
  explicit ThrowingCombiner(const Hyperparameters& /*params*/) {}
  void Combine(const mrtrain::api::CombineContext& ctx, float* /*values*/,
               int64_t /*n*/) override {
    throw std::runtime_error("combiner gave up on tensor " + std::to_string(ctx.tensor));
  }
};

// A reducer whose constructor rejects every setting it is given.
class PickyReducer : public mrtrain::api::Reducer {
 public:
  explicit PickyReducer(const Hyperparameters& params) {
    if (!params.values().empty()) {
      throw std::invalid_argument("picky takes no params, got " + params.values().begin()->first);
    }
  }
  int NumSlots() const override { return 0; }
  void Update(const mrtrain::api::UpdateContext& /*ctx*/, const float* /*grad*/, float* /*params*/,
              float* const* /*slots*/, int64_t /*n*/) override {}
};

}  // namespace

MRTRAIN_PLUGIN(MRTRAIN_MAPPER("thrower", ThrowingMapper), MRTRAIN_MAPPER("flaky", FlakyMapper),
               MRTRAIN_REDUCER("picky", PickyReducer),
               MRTRAIN_COMBINER("throwing_combiner", ThrowingCombiner))
