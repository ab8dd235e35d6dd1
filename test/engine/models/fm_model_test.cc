#include "engine/models/fm_model.h"

#include <cmath>
#include <stdexcept>
#include <vector>

#include <catch2/catch.hpp>

#include "test/engine/models/model_check.h"

namespace mrtrain::models {
namespace {

// The fm's summed log loss in double straight from its definition, the pairwise term as the
// O(d^2) double sum over i < j (not the identity the model uses).
double FmReferenceLoss(const std::vector<std::vector<double>>& p, const TestBatch& batch,
                       int64_t k) {
  const std::vector<double>& w = p[0];
  const std::vector<double>& v = p[2];
  double total = 0;
  for (int64_t r = 0; r < batch.num_rows; ++r) {
    const float* x = batch.dense.data() + r * batch.num_cols;
    double y = p[1][0];
    for (int64_t i = 0; i < batch.num_cols; ++i) {
      y += w[i] * x[i];
      for (int64_t j = i + 1; j < batch.num_cols; ++j) {
        double dot = 0;
        for (int64_t f = 0; f < k; ++f) dot += v[i * k + f] * v[j * k + f];
        y += dot * x[i] * x[j];
      }
    }
    const double label = batch.labels[r] == 1 ? 1.0 : 0.0;
    total += std::max(y, 0.0) + std::log1p(std::exp(-std::abs(y))) - label * y;
  }
  return total;
}

std::vector<std::vector<double>> AsDouble(const TestParams& params) {
  std::vector<std::vector<double>> p;
  for (const auto& v : params.values) p.emplace_back(v.begin(), v.end());
  return p;
}

std::vector<std::vector<double>> FmReferenceGradient(const TestParams& params,
                                                     const TestBatch& batch, int64_t k) {
  return CentralDifferences(params, [&](const std::vector<std::vector<double>>& p) {
    return FmReferenceLoss(p, batch, k);
  });
}

TEST_CASE("fm gradient matches central differences, dense and sparse, tensor and blocks",
          "[engine][models]") {
  constexpr int64_t kFactors = 3;
  FmModel model(kFactors);
  const TestBatch batch = RandomBatch(/*seed=*/31, /*num_rows=*/9, /*num_cols=*/12, 2,
                                      /*density=*/0.3f);
  const std::vector<api::TensorSpec> specs = model.DescribeModel(batch.Shape(2, false));
  REQUIRE(specs.size() == 3);
  CHECK(specs[2].shape == std::vector<int64_t>{12, kFactors});
  // Weights in [-1, 1) make pairwise terms of order 1, so the check sees them.
  const TestParams params = RandomParams(specs, /*seed=*/32);
  const double loss = FmReferenceLoss(AsDouble(params), batch, kFactors);
  const auto expected = FmReferenceGradient(params, batch, kFactors);

  for (bool sparse : {false, true}) {
    // 4096 sends whole tensors; 5 does not divide the factor width, so rows straddle blocks.
    for (int64_t block_size : {4096, 5}) {
      INFO((sparse ? "sparse" : "dense") << ", block_size " << block_size);
      const GradientRun run = RunGradient(model, batch, sparse, params, block_size);
      CHECK(run.stats.loss_sum == Approx(loss).epsilon(1e-5));
      CHECK(run.stats.examples == batch.num_rows);
      CheckClose(run.gradients, expected, 1e-4, 1e-3);
      const api::MapStats eval = RunEvaluate(model, batch, sparse, params);
      CHECK(eval.loss_sum == run.stats.loss_sum);
      CHECK(eval.correct == run.stats.correct);
    }
  }
}

TEST_CASE("fm sends only the blocks of the features a sparse batch touches", "[engine][models]") {
  FmModel model(4);
  // 1000 features, two rows touching features 3 and 7, 900 and 901.
  TestBatch batch;
  batch.num_rows = 2;
  batch.num_cols = 1000;
  batch.row_offsets = {0, 2, 4};
  batch.cols = {3, 7, 900, 901};
  batch.values = {1, 2, 1, -1};
  batch.labels = {1, 0};
  const auto specs = model.DescribeModel(batch.Shape(2, true));
  const TestParams params = RandomParams(specs, 5);
  const GradientRun run = RunGradient(model, batch, true, params, /*block_size=*/16);
  // w: features 3 and 7 in block 0, 900 and 901 in block 56; v: row 3 (floats 12-15) in block 0,
  // row 7 (28-31) in block 1, 900 and 901 (3600-3607) in block 225. b goes whole.
  CHECK(run.block_calls == 5);
  CHECK(run.tensor_calls == 1);
  for (size_t t : {size_t{0}, size_t{2}}) {
    const int64_t width = t == 0 ? 1 : 4;
    for (int64_t c = 0; c < 1000; ++c) {
      const bool touched = c == 3 || c == 7 || c == 900 || c == 901;
      for (int64_t f = 0; f < width; ++f) {
        INFO("tensor " << t << " feature " << c);
        CHECK((run.gradients[t][c * width + f] != 0) == touched);
      }
    }
  }
}

TEST_CASE("fm with zero factors' values is the logistic model, by hand", "[engine][models]") {
  FmModel model(2);
  // Row 0: x = (1, 2), row 1: x = (0, 3). w = (0.5, -1), b = 0.25, v = 0: y = (-1.25, -2.75).
  const TestBatch batch = MakeBatch(2, {1, 2, 0, 3}, {1, 0});
  const auto specs = model.DescribeModel(batch.Shape(2, false));
  TestParams params{specs, {{0.5f, -1.0f}, {0.25f}, {0, 0, 0, 0}}};
  const GradientRun run = RunGradient(model, batch, false, params);
  const double loss = std::log1p(std::exp(1.25)) + std::log1p(std::exp(-2.75));
  CHECK(run.stats.loss_sum == Approx(loss));
  CHECK(run.stats.correct == 1);
  // With v = 0 the factors get no gradient: they must not start at 0.
  for (float g : run.gradients[2]) CHECK(g == 0.0f);

  // v = ((1, 0), (0.5, 2)): <v_0, v_1> = 0.5, row 0 gains 0.5 * 1 * 2 = 1; row 1 has one
  // feature and gains nothing.
  params.values[2] = {1, 0, 0.5f, 2};
  float predicted[2];
  float scores[2];
  model.Predict(batch.View(true), params.View(), predicted, scores);
  CHECK(scores[0] == Approx(1 / (1 + std::exp(0.25))));  // y = -0.25
  CHECK(scores[1] == Approx(1 / (1 + std::exp(2.75))));
  CHECK(predicted[0] == 0);
  CHECK(predicted[1] == 0);
}

TEST_CASE("fm rejects labels other than 0, 1 and -1 and features beyond the model",
          "[engine][models]") {
  FmModel model(2);
  const TestBatch batch = MakeBatch(2, {1, 2}, {2});
  const auto specs = model.DescribeModel(batch.Shape(2, false));
  const TestParams params = RandomParams(specs, 1);
  CHECK_THROWS_WITH(RunGradient(model, batch, false, params),
                    Catch::Contains("fm: row 0 has label 2"));
  TestBatch wide = MakeBatch(3, {0, 0, 1}, {1});
  CHECK_THROWS_WITH(RunGradient(model, wide, true, params),
                    Catch::Contains("fm: row 0 has feature index 2, the model has 2 features"));
}

}  // namespace
}  // namespace mrtrain::models
