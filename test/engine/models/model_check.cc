#include "test/engine/models/model_check.h"

#include <algorithm>
#include <cmath>

#include <catch2/catch.hpp>

#include "engine/api/random.h"

namespace mrtrain::models {

api::Rows TestBatch::View(bool sparse) const {
  api::Rows rows;
  rows.num_rows = num_rows;
  rows.num_cols = num_cols;
  rows.is_sparse = sparse;
  if (sparse) {
    rows.row_offsets = row_offsets.data();
    rows.cols = cols.data();
    rows.values = values.data();
  } else {
    rows.dense = dense.data();
  }
  rows.labels = labels.data();
  return rows;
}

api::DataShape TestBatch::Shape(int64_t num_classes, bool sparse) const {
  return api::DataShape{num_cols, num_classes, sparse};
}

TestBatch MakeBatch(int64_t num_cols, std::vector<float> dense, std::vector<float> labels) {
  TestBatch batch;
  batch.num_cols = num_cols;
  batch.num_rows = static_cast<int64_t>(labels.size());
  batch.dense = std::move(dense);
  batch.labels = std::move(labels);
  batch.row_offsets.push_back(0);
  for (int64_t i = 0; i < batch.num_rows; ++i) {
    for (int64_t c = 0; c < num_cols; ++c) {
      const float v = batch.dense[i * num_cols + c];
      if (v == 0) continue;
      batch.cols.push_back(static_cast<uint32_t>(c));
      batch.values.push_back(v);
    }
    batch.row_offsets.push_back(static_cast<int64_t>(batch.cols.size()));
  }
  return batch;
}

TestBatch RandomBatch(uint64_t seed, int64_t num_rows, int64_t num_cols, int64_t num_classes,
                      float density) {
  api::RandomStream random(seed);
  std::vector<float> dense(num_rows * num_cols, 0.0f);
  std::vector<float> labels(num_rows);
  for (int64_t i = 0; i < num_rows; ++i) {
    for (int64_t c = 0; c < num_cols; ++c) {
      const bool nonzero = random.Uniform() < density && i != 1;
      const float v = random.Uniform(-1.0f, 1.0f);
      if (nonzero) dense[i * num_cols + c] = v;
    }
    labels[i] = num_classes > 0 ? static_cast<float>(random.Below(num_classes))
                                : random.Uniform(-2.0f, 2.0f);
  }
  return MakeBatch(num_cols, std::move(dense), std::move(labels));
}

api::ParamsView TestParams::View() const {
  api::ParamsView view;
  view.specs = &specs;
  for (const auto& v : values) view.tensors.push_back(v.data());
  return view;
}

TestParams RandomParams(const std::vector<api::TensorSpec>& specs, uint64_t seed) {
  api::RandomStream random(seed, 1);
  TestParams params;
  params.specs = specs;
  for (const api::TensorSpec& spec : specs) {
    const float scale = spec.role == api::TensorSpec::Role::kWeight ? 1.0f : 0.5f;
    std::vector<float> v(spec.size());
    for (float& x : v) x = random.Uniform(-scale, scale);
    params.values.push_back(std::move(v));
  }
  return params;
}

GradientRun RunGradient(api::Mapper& mapper, const TestBatch& batch, bool sparse,
                        const TestParams& params, int64_t block_size) {
  CollectingSink sink(params.specs, block_size);
  GradientRun run;
  mapper.Gradient(api::MapContext{}, batch.View(sparse), params.View(), sink, run.stats);
  CHECK(sink.bad_blocks() == 0);
  run.gradients = sink.gradients();
  run.tensor_calls = sink.tensor_calls();
  run.block_calls = sink.block_calls();
  return run;
}

api::MapStats RunEvaluate(api::Mapper& mapper, const TestBatch& batch, bool sparse,
                          const TestParams& params) {
  api::MapStats stats;
  mapper.Evaluate(batch.View(sparse), params.View(), stats);
  return stats;
}

namespace {

// The loss of one row given the last layer's outputs.
double RowLoss(LossKind kind, const std::vector<double>& z, float label) {
  switch (kind) {
    case LossKind::kSquared:
      return 0.5 * (z[0] - label) * (z[0] - label);
    case LossKind::kLogistic: {
      const double y = label == 1 ? 1.0 : 0.0;
      return std::max(z[0], 0.0) + std::log1p(std::exp(-std::abs(z[0]))) - y * z[0];
    }
    case LossKind::kSoftmax: {
      const double max = *std::max_element(z.begin(), z.end());
      double sum = 0;
      for (double v : z) sum += std::exp(v - max);
      return max + std::log(sum) - z[static_cast<size_t>(label)];
    }
  }
  return 0;
}

}  // namespace

double ReferenceLoss(LossKind kind, const std::vector<std::vector<double>>& params,
                     const TestBatch& batch) {
  const size_t layers = params.size() / 2;
  double total = 0;
  for (int64_t i = 0; i < batch.num_rows; ++i) {
    std::vector<double> a(batch.dense.begin() + i * batch.num_cols,
                          batch.dense.begin() + (i + 1) * batch.num_cols);
    for (size_t l = 0; l < layers; ++l) {
      const std::vector<double>& w = params[2 * l];
      std::vector<double> z = params[2 * l + 1];
      const size_t fan_out = z.size();
      for (size_t c = 0; c < a.size(); ++c) {
        for (size_t j = 0; j < fan_out; ++j) z[j] += a[c] * w[c * fan_out + j];
      }
      if (l + 1 < layers) {
        for (double& v : z) v = std::max(v, 0.0);
      }
      a = std::move(z);
    }
    total += RowLoss(kind, a, batch.labels[i]);
  }
  return total;
}

std::vector<std::vector<double>> CentralDifferences(
    const TestParams& params,
    const std::function<double(const std::vector<std::vector<double>>&)>& loss) {
  constexpr double kEps = 1e-5;
  std::vector<std::vector<double>> p;
  for (const auto& v : params.values) p.emplace_back(v.begin(), v.end());
  std::vector<std::vector<double>> gradient;
  for (size_t t = 0; t < p.size(); ++t) {
    gradient.emplace_back(p[t].size());
    for (size_t j = 0; j < p[t].size(); ++j) {
      const double saved = p[t][j];
      p[t][j] = saved + kEps;
      const double up = loss(p);
      p[t][j] = saved - kEps;
      const double down = loss(p);
      p[t][j] = saved;
      gradient[t][j] = (up - down) / (2 * kEps);
    }
  }
  return gradient;
}

std::vector<std::vector<double>> ReferenceGradient(LossKind kind, const TestParams& params,
                                                   const TestBatch& batch) {
  return CentralDifferences(params, [&](const std::vector<std::vector<double>>& p) {
    return ReferenceLoss(kind, p, batch);
  });
}

void CheckClose(const std::vector<std::vector<float>>& actual,
                const std::vector<std::vector<double>>& expected, double abs_tol, double rel_tol) {
  REQUIRE(actual.size() == expected.size());
  for (size_t t = 0; t < actual.size(); ++t) {
    REQUIRE(actual[t].size() == expected[t].size());
    for (size_t j = 0; j < actual[t].size(); ++j) {
      INFO("tensor " << t << " element " << j << ": " << actual[t][j] << " vs " << expected[t][j]);
      CHECK(std::abs(actual[t][j] - expected[t][j]) <=
            abs_tol + rel_tol * std::abs(expected[t][j]));
    }
  }
}

void CheckClose(const std::vector<std::vector<float>>& actual,
                const std::vector<std::vector<float>>& expected, double abs_tol) {
  std::vector<std::vector<double>> as_double;
  for (const auto& v : expected) as_double.emplace_back(v.begin(), v.end());
  CheckClose(actual, as_double, abs_tol, 0.0);
}

TestParams CheckGradientAgainstReference(api::Mapper& mapper, LossKind kind, const TestBatch& batch,
                                         int64_t num_classes, uint64_t seed) {
  const std::vector<api::TensorSpec> specs = mapper.DescribeModel(batch.Shape(num_classes, false));
  TestParams params = RandomParams(specs, seed);
  std::vector<std::vector<double>> p;
  for (const auto& v : params.values) p.emplace_back(v.begin(), v.end());
  const double loss = ReferenceLoss(kind, p, batch);
  const std::vector<std::vector<double>> expected = ReferenceGradient(kind, params, batch);

  const GradientRun dense = RunGradient(mapper, batch, /*sparse=*/false, params);
  const GradientRun sparse = RunGradient(mapper, batch, /*sparse=*/true, params);
  for (const GradientRun* run : {&dense, &sparse}) {
    CHECK(run->stats.loss_sum == Approx(loss).epsilon(1e-5));
    CHECK(run->stats.examples == batch.num_rows);
    CheckClose(run->gradients, expected, 1e-4, 1e-3);
  }
  CheckClose(sparse.gradients, dense.gradients, 1e-5);
  CHECK(sparse.stats.correct == dense.stats.correct);
  return params;
}

}  // namespace mrtrain::models
