// Plugins that misbehave on purpose, for the loader and guard tests.

#include <atomic>
#include <fstream>
#include <limits>
#include <sstream>
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
    sink.AddTensor(0, grad);
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

// Least squares like FlakyMapper, on dense or sparse rows, except that Gradient and Evaluate
// throw on every call that holds a row whose first feature equals `feature0`: one bad record in
// the user's data. With `trace: PATH`, every throwing call appends its row count to PATH, one
// line each, so a test can count attempts (calls over a chunk) and single-row retries.
class BadRecordMapper : public mrtrain::api::Mapper {
 public:
  explicit BadRecordMapper(const Hyperparameters& params)
      : feature0_(static_cast<float>(params.GetDouble("feature0", 0))),
        trace_(params.GetString("trace", "")) {}
  std::vector<mrtrain::api::TensorSpec> DescribeModel(
      const mrtrain::api::DataShape& shape) override {
    return {{"w", {shape.num_features}, mrtrain::api::TensorSpec::Role::kWeight}};
  }
  void Gradient(const mrtrain::api::MapContext& /*ctx*/, const mrtrain::api::Rows& rows,
                const mrtrain::api::ParamsView& params, mrtrain::api::GradientSink& sink,
                mrtrain::api::MapStats& stats) override {
    Check(rows);
    std::vector<float> grad(rows.num_cols, 0.0f);
    for (int64_t i = 0; i < rows.num_rows; ++i) {
      float residual = -rows.labels[i];
      ForEachFeature(rows, i, [&](int64_t j, float x) { residual += params.tensors[0][j] * x; });
      ForEachFeature(rows, i, [&](int64_t j, float x) { grad[j] += residual * x; });
      stats.loss_sum += 0.5 * residual * residual;
    }
    stats.examples += rows.num_rows;
    sink.AddTensor(0, grad);
  }
  void Evaluate(const mrtrain::api::Rows& rows, const mrtrain::api::ParamsView& /*params*/,
                mrtrain::api::MapStats& stats) override {
    Check(rows);
    stats.examples += rows.num_rows;
  }
  int NumOutputs() const override { return 1; }
  void Predict(const mrtrain::api::Rows& rows, const mrtrain::api::ParamsView& /*params*/,
               float* predicted, float* scores) override {
    for (int64_t i = 0; i < rows.num_rows; ++i) predicted[i] = scores[i] = 0;
  }

 private:
  template <typename F>
  static void ForEachFeature(const mrtrain::api::Rows& rows, int64_t i, F f) {
    if (!rows.is_sparse) {
      for (int64_t j = 0; j < rows.num_cols; ++j) f(j, rows.dense[i * rows.num_cols + j]);
      return;
    }
    for (int64_t k = rows.row_offsets[i]; k < rows.row_offsets[i + 1]; ++k) {
      f(rows.cols[k], rows.values[k]);
    }
  }

  static float FirstFeature(const mrtrain::api::Rows& rows, int64_t i) {
    if (!rows.is_sparse) return rows.num_cols > 0 ? rows.dense[i * rows.num_cols] : 0.0f;
    const int64_t k = rows.row_offsets[i];
    return k < rows.row_offsets[i + 1] && rows.cols[k] == 0 ? rows.values[k] : 0.0f;
  }

  void Check(const mrtrain::api::Rows& rows) const {
    for (int64_t i = 0; i < rows.num_rows; ++i) {
      if (FirstFeature(rows, i) != feature0_) continue;
      if (!trace_.empty()) {
        std::ofstream(trace_, std::ios::app) << rows.num_rows << "\n";
      }
      std::ostringstream what;
      what << "feature 0 is " << feature0_ << ", which this model cannot take";
      throw std::invalid_argument(what.str());
    }
  }

  const float feature0_;
  const std::string trace_;
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

// Least squares on dense rows whose weight gradient buffer is `extra` floats longer (or, when
// negative, shorter) than its tensor: the classic slip of sizing a buffer for another shape.
// With `block: true` it emits block 0 through AddBlock instead of the whole tensor.
class WrongSizeMapper : public mrtrain::api::Mapper {
 public:
  explicit WrongSizeMapper(const Hyperparameters& params)
      : extra_(params.GetInt("extra", 0)), block_(params.GetString("block", "false") == "true") {}
  std::vector<mrtrain::api::TensorSpec> DescribeModel(
      const mrtrain::api::DataShape& shape) override {
    return {{"w", {shape.num_features}, mrtrain::api::TensorSpec::Role::kWeight}};
  }
  void Gradient(const mrtrain::api::MapContext& /*ctx*/, const mrtrain::api::Rows& rows,
                const mrtrain::api::ParamsView& /*params*/, mrtrain::api::GradientSink& sink,
                mrtrain::api::MapStats& stats) override {
    std::vector<float> grad(rows.num_cols + extra_, 1.0f);
    if (block_) {
      sink.AddBlock(0, 0, grad.data(), grad.size());
    } else {
      sink.AddTensor(0, grad);
    }
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
  const int64_t extra_;
  const bool block_;
};

// A one-weight model whose loss is infinite from its first call, at finite parameters (an
// overflow inside the plugin's loss).
class InfiniteLossMapper : public mrtrain::api::Mapper {
 public:
  explicit InfiniteLossMapper(const Hyperparameters& /*params*/) {}
  std::vector<mrtrain::api::TensorSpec> DescribeModel(
      const mrtrain::api::DataShape& /*shape*/) override {
    return {{"b", {1}, mrtrain::api::TensorSpec::Role::kBias}};
  }
  void Gradient(const mrtrain::api::MapContext& /*ctx*/, const mrtrain::api::Rows& rows,
                const mrtrain::api::ParamsView& /*params*/, mrtrain::api::GradientSink& sink,
                mrtrain::api::MapStats& stats) override {
    const float g = 0;
    sink.AddTensor(0, &g, 1);
    stats.loss_sum += std::numeric_limits<double>::infinity();
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
};

// An update rule that throws something that is not a std::exception (an int), as careless C++
// can: the guard must catch it too, and the worker live on.
class IntThrowingReducer : public mrtrain::api::Reducer {
 public:
  explicit IntThrowingReducer(const Hyperparameters& /*params*/) {}
  int NumSlots() const override { return 0; }
  void Update(const mrtrain::api::UpdateContext& /*ctx*/, const float* /*grad*/, float* /*params*/,
              float* const* /*slots*/, int64_t /*n*/) override {
    throw 42;
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
               MRTRAIN_MAPPER("bad_record", BadRecordMapper),
               MRTRAIN_MAPPER("wrong_size", WrongSizeMapper),
               MRTRAIN_MAPPER("infinite_loss", InfiniteLossMapper),
               MRTRAIN_REDUCER("picky", PickyReducer),
               MRTRAIN_REDUCER("int_thrower", IntThrowingReducer),
               MRTRAIN_COMBINER("throwing_combiner", ThrowingCombiner))
