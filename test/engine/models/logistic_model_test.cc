#include "engine/models/logistic_model.h"

#include <cmath>
#include <stdexcept>

#include <catch2/catch.hpp>

#include "test/engine/models/model_check.h"

namespace mrtrain::models {
namespace {

TEST_CASE("logistic model gradient matches central differences, dense and sparse",
          "[engine][models]") {
  LogisticModel model;
  const TestBatch batch = RandomBatch(/*seed=*/21, /*num_rows=*/7, /*num_cols=*/5, 2);
  CheckGradientAgainstReference(model, LossKind::kLogistic, batch, 2, /*seed=*/22);
}

TEST_CASE("logistic model computes log loss, accuracy and probabilities by hand",
          "[engine][models]") {
  LogisticModel model;
  // z = x.(1, -1) = (2, 0, -3); the second label is -1, read as 0.
  const TestBatch batch = MakeBatch(2, {2, 0, 0, 0, 0, 3}, {1, -1, 1});
  const auto specs = model.DescribeModel(batch.Shape(2, false));
  REQUIRE(specs.size() == 2);
  CHECK(specs[0].name == "w");
  CHECK(specs[0].shape == std::vector<int64_t>{2});
  CHECK(specs[1].name == "b");
  const TestParams params{specs, {{1, -1}, {0}}};

  for (bool sparse : {false, true}) {
    SECTION(sparse ? "sparse" : "dense") {
      const GradientRun run = RunGradient(model, batch, sparse, params);
      const double expected =
          std::log1p(std::exp(-2.0)) + std::log(2.0) + std::log1p(std::exp(3.0));
      CHECK(run.stats.loss_sum == Approx(expected));
      CHECK(run.stats.examples == 3);
      CHECK(run.stats.correct == 1);  // z = 0 predicts class 1, z = -3 predicts 0
      // dz = p - y = (sigmoid(2) - 1, 0.5, sigmoid(-3) - 1).
      const double d0 = 1 / (1 + std::exp(-2.0)) - 1;
      const double d2 = 1 / (1 + std::exp(3.0)) - 1;
      CHECK(run.gradients[0][0] == Approx(2 * d0));
      CHECK(run.gradients[0][1] == Approx(3 * d2));
      CHECK(run.gradients[1][0] == Approx(d0 + 0.5 + d2));

      const api::MapStats eval = RunEvaluate(model, batch, sparse, params);
      CHECK(eval.loss_sum == run.stats.loss_sum);
      CHECK(eval.correct == run.stats.correct);
      CHECK(eval.examples == run.stats.examples);

      float predicted[3];
      float scores[3];
      model.Predict(batch.View(sparse), params.View(), predicted, scores);
      CHECK(predicted[0] == 1);
      CHECK(predicted[1] == 1);
      CHECK(predicted[2] == 0);
      CHECK(scores[0] == Approx(1 / (1 + std::exp(-2.0))));
      CHECK(scores[1] == Approx(0.5));
      CHECK(scores[2] == Approx(1 / (1 + std::exp(3.0))));
    }
  }
}

TEST_CASE("logistic loss stays finite for huge margins", "[engine][models]") {
  LogisticModel model;
  const TestBatch batch = MakeBatch(1, {1, 1, -1, -1}, {0, 1, 1, 0});
  const TestParams params{model.DescribeModel(batch.Shape(2, false)), {{100}, {0}}};
  const GradientRun run = RunGradient(model, batch, false, params);
  // z = 100 with label 0 and z = -100 with label 1 cost 100 each; the others nearly 0.
  CHECK(run.stats.loss_sum == Approx(200).epsilon(1e-6));
  CHECK(run.stats.correct == 2);
  CHECK(std::isfinite(run.gradients[0][0]));
  CHECK(run.gradients[0][0] == Approx(2.0));  // (1 - 0) * 1 + (0 - 1) * -1

  float predicted[4];
  float scores[4];
  model.Predict(batch.View(false), params.View(), predicted, scores);
  CHECK(scores[0] == 1.0f);
  CHECK(scores[2] == Approx(0.0).margin(1e-30));
}

TEST_CASE("logistic model rejects labels other than 0, 1 and -1, naming them", "[engine][models]") {
  LogisticModel model;
  TestBatch batch = MakeBatch(1, {1, 2, 3}, {0, 1, 0.5f});
  const TestParams params{model.DescribeModel(batch.Shape(2, false)), {{1}, {0}}};
  api::MapStats stats;
  CHECK_THROWS_WITH(model.Evaluate(batch.View(false), params.View(), stats),
                    Catch::Contains("row 2") && Catch::Contains("label 0.5"));
  batch.labels[2] = 2;
  CollectingSink sink(params.specs);
  CHECK_THROWS_AS(model.Gradient(api::MapContext{}, batch.View(true), params.View(), sink, stats),
                  std::invalid_argument);
  CHECK(stats.examples == 0);
  CHECK(sink.tensor_calls() == 0);
}

}  // namespace
}  // namespace mrtrain::models
