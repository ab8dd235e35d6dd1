#include "engine/models/softmax_model.h"

#include <cmath>
#include <limits>
#include <stdexcept>

#include <catch2/catch.hpp>

#include "test/engine/models/model_check.h"

namespace mrtrain::models {
namespace {

TEST_CASE("softmax model gradient matches central differences, dense and sparse",
          "[engine][models]") {
  SoftmaxModel model(/*classes=*/3);
  const TestBatch batch = RandomBatch(/*seed=*/31, /*num_rows=*/7, /*num_cols=*/5, 3);
  CheckGradientAgainstReference(model, LossKind::kSoftmax, batch, 3, /*seed=*/32);
}

TEST_CASE("softmax model computes cross-entropy and probabilities by hand", "[engine][models]") {
  SoftmaxModel model(/*classes=*/0);
  // Logits (1, 2, 3) for x = 1 and (0, 0, 0) for x = 0.
  const TestBatch batch = MakeBatch(1, {1, 0}, {0, 1});
  const auto specs = model.DescribeModel(batch.Shape(3, false));
  REQUIRE(specs.size() == 2);
  CHECK(specs[0].name == "W");
  CHECK(specs[0].shape == std::vector<int64_t>{1, 3});
  CHECK(specs[1].name == "b");
  CHECK(specs[1].shape == std::vector<int64_t>{3});
  CHECK(specs[1].role == api::TensorSpec::Role::kBias);
  CHECK(model.NumOutputs() == 3);
  const TestParams params{specs, {{1, 2, 3}, {0, 0, 0}}};

  for (bool sparse : {false, true}) {
    SECTION(sparse ? "sparse" : "dense") {
      const GradientRun run = RunGradient(model, batch, sparse, params);
      const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
      CHECK(run.stats.loss_sum == Approx((lse - 1) + std::log(3.0)));
      CHECK(run.stats.examples == 2);
      CHECK(run.stats.correct == 0);  // argmax 2 vs label 0; a tie picks 0 vs label 1
      const double p0 = std::exp(1.0 - lse);
      CHECK(run.gradients[0][0] == Approx(p0 - 1));
      CHECK(run.gradients[1][0] == Approx(p0 - 1 + 1.0 / 3));
      CHECK(run.gradients[1][1] == Approx(std::exp(2.0 - lse) + 1.0 / 3 - 1));

      const api::MapStats eval = RunEvaluate(model, batch, sparse, params);
      CHECK(eval.loss_sum == Approx(run.stats.loss_sum).epsilon(1e-12));
      CHECK(eval.correct == run.stats.correct);
      CHECK(eval.examples == run.stats.examples);

      float predicted[2];
      float scores[6];
      model.Predict(batch.View(sparse), params.View(), predicted, scores);
      CHECK(predicted[0] == 2);
      CHECK(predicted[1] == 0);
      CHECK(scores[0] == Approx(p0));
      CHECK(scores[2] == Approx(std::exp(3.0 - lse)));
      CHECK(scores[0] + scores[1] + scores[2] == Approx(1));
      CHECK(scores[3] == Approx(1.0 / 3));
    }
  }
}

TEST_CASE("softmax model is stable for huge logits", "[engine][models]") {
  SoftmaxModel model(3);
  const TestBatch batch = MakeBatch(1, {1000, 1000}, {2, 0});
  const TestParams params{model.DescribeModel(batch.Shape(3, false)), {{1, 2, 3}, {0, 0, 0}}};
  const GradientRun run = RunGradient(model, batch, false, params);
  CHECK(run.stats.loss_sum == Approx(2000));  // 0 for the right class, 3000 - 1000 for class 0
  CHECK(run.stats.correct == 1);
  for (float g : run.gradients[0]) CHECK(std::isfinite(g));
  float predicted[2];
  float scores[6];
  model.Predict(batch.View(false), params.View(), predicted, scores);
  CHECK(scores[2] == 1.0f);
  CHECK(scores[0] == 0.0f);
}

TEST_CASE("softmax predictions are probabilities whose argmax is the predicted class",
          "[engine][models]") {
  SoftmaxModel model(4);
  const TestBatch batch = RandomBatch(41, 20, 6, 4);
  const TestParams params = RandomParams(model.DescribeModel(batch.Shape(4, false)), 42);
  std::vector<float> predicted(20);
  std::vector<float> scores(80);
  model.Predict(batch.View(true), params.View(), predicted.data(), scores.data());
  int64_t matches = 0;
  for (int64_t i = 0; i < 20; ++i) {
    const float* p = &scores[i * 4];
    CHECK(p[0] + p[1] + p[2] + p[3] == Approx(1).epsilon(1e-6));
    CHECK(predicted[i] == std::max_element(p, p + 4) - p);
    matches += predicted[i] == batch.labels[i];
  }
  CHECK(RunEvaluate(model, batch, true, params).correct == matches);
}

TEST_CASE("softmax model rejects labels outside [0, K) naming the row's label",
          "[engine][models]") {
  SoftmaxModel model(3);
  TestBatch batch = MakeBatch(1, {1, 2, 3}, {0, 2, 3});
  const TestParams params{model.DescribeModel(batch.Shape(3, false)), {{1, 2, 3}, {0, 0, 0}}};
  api::MapStats stats;
  CHECK_THROWS_WITH(model.Evaluate(batch.View(false), params.View(), stats),
                    Catch::Contains("row 2 has label 3") && Catch::Contains("[0, 3)"));
  batch.labels[2] = 1.5f;
  CHECK_THROWS_WITH(model.Evaluate(batch.View(true), params.View(), stats),
                    Catch::Contains("label 1.5"));
  batch.labels[2] = -1;
  CHECK_THROWS_WITH(model.Evaluate(batch.View(false), params.View(), stats),
                    Catch::Contains("label -1"));
  batch.labels[2] = std::numeric_limits<float>::quiet_NaN();
  CollectingSink sink(params.specs);
  CHECK_THROWS_AS(model.Gradient(api::MapContext{}, batch.View(false), params.View(), sink, stats),
                  std::invalid_argument);
  CHECK(stats.examples == 0);
}

TEST_CASE("softmax model takes its class count from the setting or the data", "[engine][models]") {
  SoftmaxModel from_data(0);
  CHECK(from_data.DescribeModel(api::DataShape{4, 5, false})[1].shape == std::vector<int64_t>{5});
  CHECK(from_data.NumOutputs() == 5);
  CHECK_THROWS_WITH(from_data.DescribeModel(api::DataShape{4, 0, false}),
                    Catch::Contains("at least 2 classes"));
  SoftmaxModel configured(7);
  CHECK(configured.DescribeModel(api::DataShape{4, 5, false})[0].shape ==
        std::vector<int64_t>{4, 7});
  SoftmaxModel too_few(3);
  CHECK_THROWS_WITH(too_few.DescribeModel(api::DataShape{4, 5, false}),
                    Catch::Contains("model.classes is 3"));
}

TEST_CASE("sparse gradients of wide models are sent as the touched blocks", "[engine][models]") {
  // 1000 features x 3 classes in blocks of 16: a few nonzeros touch a few blocks, including
  // the short last block (3000 = 187 * 16 + 8).
  const TestBatch batch = MakeBatch(
      1000,
      [] {
        std::vector<float> dense(size_t{3} * 1000, 0.0f);
        dense[0 * 1000 + 7] = 0.5f;
        dense[0 * 1000 + 999] = -1.0f;
        dense[2 * 1000 + 5] = 2.0f;  // shares a block with feature 7 (floats 15..17 and 21..23)
        dense[2 * 1000 + 400] = 1.5f;
        return dense;
      }(),
      {0, 1, 2});
  SoftmaxModel model(3);
  const TestParams params = RandomParams(model.DescribeModel(batch.Shape(3, true)), 51);

  const GradientRun dense = RunGradient(model, batch, false, params, /*block_size=*/16);
  const GradientRun sparse = RunGradient(model, batch, true, params, /*block_size=*/16);
  CHECK(dense.block_calls == 0);
  // Features 5 and 7 span blocks 0 and 1; 400 is block 75; 999 is the last block, 187.
  CHECK(sparse.block_calls == 4);
  CHECK(sparse.tensor_calls == 1);  // the bias
  CheckClose(sparse.gradients, dense.gradients, 1e-6);

  // The mapper keeps no gradient from one call to the next, whichever path ran before.
  const GradientRun again = RunGradient(model, batch, true, params, /*block_size=*/16);
  CheckClose(again.gradients, dense.gradients, 1e-6);
  const GradientRun whole = RunGradient(model, batch, true, params, /*block_size=*/4096);
  CHECK(whole.block_calls == 0);
  CheckClose(whole.gradients, dense.gradients, 1e-6);
}

}  // namespace
}  // namespace mrtrain::models
