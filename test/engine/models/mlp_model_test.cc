#include "engine/models/mlp_model.h"

#include <cmath>
#include <stdexcept>

#include <catch2/catch.hpp>

#include "test/engine/models/model_check.h"

namespace mrtrain::models {
namespace {

TEST_CASE("mlp gradient matches central differences, dense and sparse", "[engine][models]") {
  SECTION("two hidden layers") {
    MlpModel model({4, 3}, /*classes=*/3);
    const TestBatch batch = RandomBatch(/*seed=*/61, /*num_rows=*/7, /*num_cols=*/5, 3);
    CheckGradientAgainstReference(model, LossKind::kSoftmax, batch, 3, /*seed=*/62);
  }
  SECTION("one hidden layer") {
    MlpModel model({6}, /*classes=*/0);
    const TestBatch batch = RandomBatch(/*seed=*/63, /*num_rows=*/9, /*num_cols=*/4, 2);
    CheckGradientAgainstReference(model, LossKind::kSoftmax, batch, 2, /*seed=*/64);
  }
}

TEST_CASE("mlp describes W1, b1 .. W{L+1}, b{L+1}", "[engine][models]") {
  MlpModel model({4, 3}, 0);
  const auto specs = model.DescribeModel(api::DataShape{5, 10, false});
  REQUIRE(specs.size() == 6);
  const char* names[] = {"W1", "b1", "W2", "b2", "W3", "b3"};
  const std::vector<std::vector<int64_t>> shapes = {{5, 4}, {4}, {4, 3}, {3}, {3, 10}, {10}};
  for (size_t t = 0; t < specs.size(); ++t) {
    CHECK(specs[t].name == names[t]);
    CHECK(specs[t].shape == shapes[t]);
    CHECK(specs[t].role ==
          (t % 2 == 0 ? api::TensorSpec::Role::kWeight : api::TensorSpec::Role::kBias));
  }
  CHECK(model.NumOutputs() == 10);
}

TEST_CASE("mlp computes its loss by hand", "[engine][models]") {
  MlpModel model({1}, 2);
  // h = relu(x): x = 2 gives logits (2, -2); x = -1 gives h = 0 and logits (0, 0).
  const TestBatch batch = MakeBatch(1, {2, -1}, {0, 1});
  const TestParams params{model.DescribeModel(batch.Shape(2, false)), {{1}, {0}, {1, -1}, {0, 0}}};
  for (bool sparse : {false, true}) {
    SECTION(sparse ? "sparse" : "dense") {
      const GradientRun run = RunGradient(model, batch, sparse, params);
      CHECK(run.stats.loss_sum == Approx(std::log1p(std::exp(-4.0)) + std::log(2.0)));
      CHECK(run.stats.examples == 2);
      CHECK(run.stats.correct == 1);  // the tie in row 2 picks class 0
      // Row 2's hidden unit is off, so W1 and b1 see only row 1: dh = (p0 - 1) - p1.
      const double p1 = 1 / (1 + std::exp(4.0));
      CHECK(run.gradients[0][0] == Approx(2 * (-p1 - p1)));
      CHECK(run.gradients[1][0] == Approx(-p1 - p1));
      CHECK(run.gradients[2][0] == Approx(2 * -p1));
      CHECK(run.gradients[3][1] == Approx(p1 + 0.5 - 1));

      const api::MapStats eval = RunEvaluate(model, batch, sparse, params);
      CHECK(eval.loss_sum == Approx(run.stats.loss_sum).epsilon(1e-12));
      CHECK(eval.correct == run.stats.correct);
      CHECK(eval.examples == run.stats.examples);

      float predicted[2];
      float scores[4];
      model.Predict(batch.View(sparse), params.View(), predicted, scores);
      CHECK(predicted[0] == 0);
      CHECK(predicted[1] == 0);
      CHECK(scores[0] == Approx(1 - p1));
      CHECK(scores[1] == Approx(p1));
      CHECK(scores[2] == Approx(0.5));
    }
  }
}

TEST_CASE("mlp sums gradients over chunks as over one batch", "[engine][models]") {
  // 5000 rows: two dense chunks (4096 + 904) and twenty sparse ones of 256 or fewer.
  MlpModel model({4, 3}, 3);
  const TestBatch batch = RandomBatch(71, 5000, 5, 3);
  const TestParams params = RandomParams(model.DescribeModel(batch.Shape(3, false)), 72);
  const GradientRun dense = RunGradient(model, batch, false, params);
  const GradientRun sparse = RunGradient(model, batch, true, params);
  std::vector<std::vector<double>> p;
  for (const auto& v : params.values) p.emplace_back(v.begin(), v.end());
  CHECK(dense.stats.loss_sum == Approx(ReferenceLoss(LossKind::kSoftmax, p, batch)));
  CHECK(dense.stats.examples == 5000);
  CHECK(sparse.stats.loss_sum == Approx(dense.stats.loss_sum).epsilon(1e-6));
  CHECK(sparse.stats.correct == dense.stats.correct);
  CHECK(dense.tensor_calls == 6);
  CHECK(sparse.tensor_calls == 6);
  // Sums of 5000 terms in float: compare relative to the gradient's scale.
  for (size_t t = 0; t < dense.gradients.size(); ++t) {
    for (size_t j = 0; j < dense.gradients[t].size(); ++j) {
      CHECK(sparse.gradients[t][j] == Approx(dense.gradients[t][j]).margin(1e-3).epsilon(1e-4));
    }
  }

  std::vector<float> predicted(5000);
  std::vector<float> scores(size_t{5000} * 3);
  model.Predict(batch.View(true), params.View(), predicted.data(), scores.data());
  int64_t matches = 0;
  for (int64_t i = 0; i < 5000; ++i) {
    const float* s = &scores[i * 3];
    CHECK(s[0] + s[1] + s[2] == Approx(1).epsilon(1e-6));
    CHECK(predicted[i] == std::max_element(s, s + 3) - s);
    matches += predicted[i] == batch.labels[i];
  }
  CHECK(matches == dense.stats.correct);
}

TEST_CASE("mlp refuses sparse data wider than a million features", "[engine][models]") {
  MlpModel model({8}, 2);
  CHECK_THROWS_WITH(model.DescribeModel(api::DataShape{2000000, 2, true}),
                    Catch::Contains("1e6") && Catch::Contains("2000000"));
  CHECK_NOTHROW(model.DescribeModel(api::DataShape{1000000, 2, true}));

  // Described for dense data, then handed sparse rows of that width.
  MlpModel wide({1}, 2);
  wide.DescribeModel(api::DataShape{2000000, 2, false});
  TestBatch batch = RandomBatch(81, 2, 3, 2);
  batch.num_cols = 2000000;
  const TestParams params =
      RandomParams({{"W1", {2000000, 1}}, {"b1", {1}}, {"W2", {1, 2}}, {"b2", {2}}}, 82);
  api::MapStats stats;
  CHECK_THROWS_WITH(wide.Evaluate(batch.View(true), params.View(), stats), Catch::Contains("1e6"));
}

TEST_CASE("mlp rejects labels outside [0, K) naming the row's label", "[engine][models]") {
  MlpModel model({2}, 2);
  const TestBatch batch = MakeBatch(1, {1, 2}, {1, 2});
  const TestParams params = RandomParams(model.DescribeModel(batch.Shape(2, false)), 91);
  CollectingSink sink(params.specs);
  api::MapStats stats;
  CHECK_THROWS_WITH(model.Gradient(api::MapContext{}, batch.View(true), params.View(), sink, stats),
                    Catch::Contains("row 1 has label 2"));
  CHECK(sink.tensor_calls() == 0);
}

}  // namespace
}  // namespace mrtrain::models
