#include "engine/models/linear_model.h"

#include <stdexcept>

#include <catch2/catch.hpp>

#include "test/engine/models/model_check.h"

namespace mrtrain::models {
namespace {

TEST_CASE("linear model gradient matches central differences, dense and sparse",
          "[engine][models]") {
  LinearModel model;
  const TestBatch batch = RandomBatch(/*seed=*/11, /*num_rows=*/7, /*num_cols=*/5, 0);
  CheckGradientAgainstReference(model, LossKind::kSquared, batch, 0, /*seed=*/12);
}

TEST_CASE("linear model computes half squared error by hand", "[engine][models]") {
  LinearModel model;
  const TestBatch batch = MakeBatch(2, {1, 1, 0, -1}, {3, 0});
  const auto specs = model.DescribeModel(batch.Shape(0, false));
  REQUIRE(specs.size() == 2);
  CHECK(specs[0].name == "w");
  CHECK(specs[0].shape == std::vector<int64_t>{2});
  CHECK(specs[0].role == api::TensorSpec::Role::kWeight);
  CHECK(specs[1].name == "b");
  CHECK(specs[1].shape == std::vector<int64_t>{1});
  CHECK(specs[1].role == api::TensorSpec::Role::kBias);
  TestParams params{specs, {{1, 2}, {0.5f}}};

  for (bool sparse : {false, true}) {
    SECTION(sparse ? "sparse" : "dense") {
      // z = (3.5, -1.5), residuals (0.5, -1.5): loss 0.125 + 1.125.
      const GradientRun run = RunGradient(model, batch, sparse, params);
      CHECK(run.stats.loss_sum == Approx(1.25));
      CHECK(run.stats.examples == 2);
      CHECK(run.stats.correct == 0);
      CHECK(run.gradients[0] == std::vector<float>{0.5f, 2.0f});
      CHECK(run.gradients[1] == std::vector<float>{-1.0f});

      const api::MapStats eval = RunEvaluate(model, batch, sparse, params);
      CHECK(eval.loss_sum == run.stats.loss_sum);
      CHECK(eval.examples == 2);
      CHECK(eval.correct == 0);

      float predicted[2];
      float scores[2];
      model.Predict(batch.View(sparse), params.View(), predicted, scores);
      CHECK(predicted[0] == Approx(3.5));
      CHECK(predicted[1] == Approx(-1.5));
      CHECK(scores[0] == predicted[0]);
      CHECK(scores[1] == predicted[1]);
    }
  }
  CHECK(model.NumOutputs() == 1);
}

TEST_CASE("linear model rejects rows that do not fit the model", "[engine][models]") {
  LinearModel model;
  TestBatch batch = RandomBatch(3, 4, 5, 0);
  api::Rows rows = batch.View(false);
  const TestParams params = RandomParams({{"w", {5}}, {"b", {1}}}, 1);
  float out[4];
  CHECK_THROWS_AS(model.Predict(rows, params.View(), out, out), std::logic_error);

  model.DescribeModel(batch.Shape(0, false));
  rows.num_cols = 4;
  CHECK_THROWS_WITH(model.Predict(rows, params.View(), out, out),
                    Catch::Contains("4 features") && Catch::Contains("linear"));

  batch.cols.back() = 5;  // past the last feature
  CHECK_THROWS_WITH(model.Predict(batch.View(true), params.View(), out, out),
                    Catch::Contains("feature index 5"));

  api::ParamsView missing = params.View();
  missing.tensors.pop_back();
  CHECK_THROWS_AS(model.Predict(batch.View(false), missing, out, out), std::invalid_argument);
  CHECK_THROWS_AS(model.DescribeModel(api::DataShape{0, 0, false}), std::invalid_argument);
}

}  // namespace
}  // namespace mrtrain::models
