// The built-in linear models on wide sparse input: row-sparse per-feature tensors, the rows a
// batch needs, and gradients (as rows) against central differences of a reference loss. Each
// wide batch is a small batch whose m columns are spread to ids over 2^20 features; the same
// model on the small batch is dense, and its parameters stand for the pulled rows.
#include <algorithm>
#include <cmath>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/models/fm_model.h"
#include "engine/models/linear_model.h"
#include "engine/models/logistic_model.h"
#include "engine/models/row_weights.h"
#include "test/engine/models/model_check.h"

namespace mrtrain::models {
namespace {

constexpr int64_t kWidth = kRowSparseMinParams;  // row-sparse for every model
constexpr int64_t kCompact = 12;

// Column c of the small batch is feature WideId(c) of the wide one.
int64_t WideId(int64_t c) { return c * 40009 + 7; }

// The pulled rows of the wide model: row WideId(c) of tensor t is row c of the small model's
// tensor t. Counts lookups.
class CompactRows : public api::RowSource {
 public:
  explicit CompactRows(const TestParams& compact) : compact_(compact) {}
  const float* Find(int tensor_id, int64_t id) const override {
    ++lookups_;
    if (id < 7 || (id - 7) % 40009 != 0 || (id - 7) / 40009 >= kCompact) return nullptr;
    const int64_t dim = compact_.specs[tensor_id].size() / kCompact;
    return compact_.values[tensor_id].data() + (id - 7) / 40009 * dim;
  }
  mutable int64_t lookups_ = 0;

 private:
  const TestParams& compact_;
};

// The small batch with its columns renamed to wide ids.
struct WideBatch {
  explicit WideBatch(const TestBatch& small) : batch(small) {
    for (uint32_t& c : batch.cols) c = static_cast<uint32_t>(WideId(c));
    batch.num_cols = kWidth;
  }
  TestBatch batch;
};

class Needed : public api::RowRequest {
 public:
  void Need(int tensor_id, int64_t row) override { rows.insert({tensor_id, row}); }
  std::set<std::pair<int, int64_t>> rows;
};

// Runs Gradient of `wide_model` (described for the wide batch) at the small model's parameters
// and CHECKs: which tensors are row-sparse, the rows it needs, its rows' gradients against
// `expected` (the small model's reference gradient), emitted as rows in ascending order.
void CheckWideGradient(api::Mapper& wide_model, const TestBatch& small, const TestParams& compact,
                       const std::vector<int>& row_tensors,
                       const std::vector<std::vector<double>>& expected, double expected_loss) {
  const WideBatch wide(small);
  const std::vector<api::TensorSpec> specs = wide_model.DescribeModel(wide.batch.Shape(2, true));
  for (size_t t = 0; t < specs.size(); ++t) {
    const bool row = std::count(row_tensors.begin(), row_tensors.end(), t) > 0;
    CHECK(specs[t].row_sparse == row);
    if (row) CHECK(specs[t].shape[0] == kWidth);
  }
  Needed needed;
  wide_model.NeededRows(wide.batch.View(true), needed);
  std::set<std::pair<int, int64_t>> want;
  for (uint32_t c : small.cols) {
    for (int t : row_tensors) want.insert({t, WideId(c)});
  }
  CHECK(needed.rows == want);

  CompactRows rows(compact);
  api::ParamsView view;
  view.specs = &specs;
  for (size_t t = 0; t < specs.size(); ++t) {
    view.tensors.push_back(specs[t].row_sparse ? nullptr : compact.values[t].data());
  }
  view.rows = &rows;
  CollectingSink sink(specs, /*block_size=*/4);
  api::MapStats stats;
  api::MapContext ctx;
  wide_model.Gradient(ctx, wide.batch.View(true), view, sink, stats);
  CHECK(sink.bad_blocks() == 0);
  CHECK(sink.block_calls() == 0);
  CHECK(stats.loss_sum == Approx(expected_loss).epsilon(1e-5));
  CHECK(rows.lookups_ > 0);
  // Rows ascending per tensor, and each row's sum matching the small model's gradient.
  std::vector<std::vector<float>> got(specs.size());
  for (size_t t = 0; t < specs.size(); ++t) {
    if (!specs[t].row_sparse) {
      got[t] = sink.gradient(static_cast<int>(t));
      continue;
    }
    const int64_t dim = specs[t].row_dim();
    got[t].assign(kCompact * dim, 0.0f);
    for (const auto& [id, values] : sink.rows(static_cast<int>(t))) {
      REQUIRE((id - 7) % 40009 == 0);
      std::copy(values.begin(), values.end(), got[t].begin() + (id - 7) / 40009 * dim);
    }
  }
  for (size_t i = 1; i < sink.row_order().size(); ++i) {
    if (sink.row_order()[i - 1].first == sink.row_order()[i].first) {
      CHECK(sink.row_order()[i - 1].second < sink.row_order()[i].second);
    }
  }
  CheckClose(got, expected, 1e-4, 1e-3);
}

TEST_CASE("logistic on wide sparse input: w is row-sparse, rows match central differences",
          "[engine][models]") {
  const TestBatch small = RandomBatch(/*seed=*/41, /*num_rows=*/10, kCompact, 2, 0.4f);
  LogisticModel dense_model;
  const TestParams compact = RandomParams(dense_model.DescribeModel(small.Shape(2, true)), 42);
  REQUIRE_FALSE(compact.specs[0].row_sparse);
  const auto expected = ReferenceGradient(LossKind::kLogistic, compact, small);
  std::vector<std::vector<double>> p;
  for (const auto& v : compact.values) p.emplace_back(v.begin(), v.end());
  LogisticModel wide_model;
  CheckWideGradient(wide_model, small, compact, {0}, expected,
                    ReferenceLoss(LossKind::kLogistic, p, small));
}

TEST_CASE("linear on wide sparse input: w is row-sparse, rows match central differences",
          "[engine][models]") {
  const TestBatch small = RandomBatch(/*seed=*/43, /*num_rows=*/10, kCompact, 0, 0.4f);
  LinearModel dense_model;
  const TestParams compact = RandomParams(dense_model.DescribeModel(small.Shape(0, true)), 44);
  const auto expected = ReferenceGradient(LossKind::kSquared, compact, small);
  std::vector<std::vector<double>> p;
  for (const auto& v : compact.values) p.emplace_back(v.begin(), v.end());
  LinearModel wide_model;
  CheckWideGradient(wide_model, small, compact, {0}, expected,
                    ReferenceLoss(LossKind::kSquared, p, small));
}

TEST_CASE("fm on wide sparse input: w and v are row-sparse, rows match the dense fm",
          "[engine][models]") {
  constexpr int64_t kFactors = 3;
  const TestBatch small = RandomBatch(/*seed=*/45, /*num_rows=*/9, kCompact, 2, 0.3f);
  FmModel dense_model(kFactors);
  const TestParams compact = RandomParams(dense_model.DescribeModel(small.Shape(2, true)), 46);
  // The dense fm's own gradient is checked against central differences in fm_model_test; the
  // row-sparse one must compute the same sums.
  const GradientRun dense = RunGradient(dense_model, small, true, compact);
  std::vector<std::vector<double>> expected;
  for (const auto& g : dense.gradients) expected.emplace_back(g.begin(), g.end());
  FmModel wide_model(kFactors);
  CheckWideGradient(wide_model, small, compact, {0, 2}, expected, dense.stats.loss_sum);
}

TEST_CASE("ParamsView::Row refuses a row not pulled and a dense tensor, naming them",
          "[engine][models]") {
  const TestBatch small = RandomBatch(/*seed=*/47, /*num_rows=*/4, kCompact, 2, 0.5f);
  LogisticModel dense_model;
  const TestParams compact = RandomParams(dense_model.DescribeModel(small.Shape(2, true)), 48);
  const WideBatch wide(small);
  LogisticModel model;
  const std::vector<api::TensorSpec> specs = model.DescribeModel(wide.batch.Shape(2, true));
  CompactRows rows(compact);
  api::ParamsView view;
  view.specs = &specs;
  view.tensors = {nullptr, compact.values[1].data()};
  view.rows = &rows;
  CHECK(view.Row(0, WideId(3)) == compact.values[0].data() + 3);
  try {
    view.Row(0, 8);
    FAIL("no throw");
  } catch (const std::out_of_range& e) {
    CHECK(std::string(e.what()) ==
          "ParamsView::Row: row 8 of tensor \"w\" was not pulled for this task: NeededRows did "
          "not name it");
  }
  try {
    view.Row(1, 0);
    FAIL("no throw");
  } catch (const std::out_of_range& e) {
    CHECK(std::string(e.what()) ==
          "ParamsView::Row: tensor id 1 is not a row-sparse tensor of the model");
  }
}

TEST_CASE(
    "below kRowSparseMinParams per-feature parameters, and on dense input, the models stay "
    "dense",
    "[engine][models]") {
  api::DataShape shape;
  shape.num_features = kRowSparseMinParams - 1;
  shape.num_classes = 2;
  shape.is_sparse = true;
  LogisticModel logistic;
  CHECK_FALSE(logistic.DescribeModel(shape)[0].row_sparse);
  shape.num_features = kRowSparseMinParams;
  CHECK(logistic.DescribeModel(shape)[0].row_sparse);
  // An fm holds 1 + factors floats per feature, so it turns row-sparse (1 + factors) times
  // narrower: with 3 factors from kRowSparseMinParams / 4 features.
  FmModel fm(3);
  shape.num_features = kRowSparseMinParams / 4 - 1;
  CHECK_FALSE(fm.DescribeModel(shape)[2].row_sparse);
  shape.num_features = kRowSparseMinParams / 4;
  CHECK(fm.DescribeModel(shape)[2].row_sparse);
  shape.is_sparse = false;
  CHECK_FALSE(fm.DescribeModel(shape)[2].row_sparse);
}

}  // namespace
}  // namespace mrtrain::models
