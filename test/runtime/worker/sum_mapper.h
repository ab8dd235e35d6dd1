#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "engine/api/mapper.h"

namespace mrtrain::runtime {

// A transparent test mapper: tensor "w" (one weight per feature) gets the sum of the rows'
// features, "b" gets the row count. Can be told to throw or to emit a bad tensor id.
class SumMapper : public api::Mapper {
 public:
  bool throw_in_gradient = false;
  bool emit_bad_tensor = false;
  int gradient_calls = 0;

  std::vector<api::TensorSpec> DescribeModel(const api::DataShape& shape) override {
    cols_ = shape.num_features;
    return {api::TensorSpec{"w", {cols_}, api::TensorSpec::Role::kWeight},
            api::TensorSpec{"b", {1}, api::TensorSpec::Role::kBias}};
  }

  void Gradient(const api::MapContext& ctx, const api::Rows& rows, const api::ParamsView& params,
                api::GradientSink& sink, api::MapStats& stats) override {
    ++gradient_calls;
    if (throw_in_gradient) throw std::runtime_error("bad record near row 7");
    std::vector<float> w(cols_, 0.0f);
    for (int64_t i = 0; i < rows.num_rows; ++i) {
      for (int64_t j = 0; j < cols_; ++j) w[j] += rows.dense[i * cols_ + j];
    }
    float b = static_cast<float>(rows.num_rows);
    sink.AddTensor(emit_bad_tensor ? 5 : 0, w);
    sink.AddTensor(1, &b, 1);
    stats.examples += rows.num_rows;
    stats.loss_sum += rows.num_rows * 0.5;
  }

  void Evaluate(const api::Rows& rows, const api::ParamsView&, api::MapStats& stats) override {
    stats.examples += rows.num_rows;
  }
  int NumOutputs() const override { return 1; }
  void Predict(const api::Rows& rows, const api::ParamsView&, float* predicted,
               float* scores) override {
    for (int64_t i = 0; i < rows.num_rows; ++i) predicted[i] = scores[i] = 0;
  }

 private:
  int64_t cols_ = 0;
};

}  // namespace mrtrain::runtime
