// Map tasks of a model with a row-sparse tensor: the rows the mapper names are checked and
// pulled once per task, the mapper reads them through ParamsView::Row and emits rows; bad
// requests and emissions fail the task naming the tensor and row.
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/api/mapper.h"
#include "engine/tensor/model_state.h"
#include "runtime/worker/map_task.h"

namespace mrtrain::runtime {
namespace {

using api::TensorSpec;

constexpr int64_t kRows = int64_t{1} << 30;

// y = sum of w[c] over a row's features; emits d/dw[c] = 1 per feature (and 1 per row to b).
// `ask` and `emit` pick a mistake to make.
class RowMapper : public api::Mapper {
 public:
  enum class Mistake { kNone, kDenseRows, kRowOutOfRange, kBlockIntoRows, kShortRow, kUnpulled };
  Mistake mistake = Mistake::kNone;

  std::vector<TensorSpec> DescribeModel(const api::DataShape& /*shape*/) override {
    return {{"w", {kRows, 1}, TensorSpec::Role::kWeight, true},
            {"b", {1}, TensorSpec::Role::kBias}};
  }
  void NeededRows(const api::Rows& rows, api::RowRequest& request) override {
    for (int64_t p = rows.row_offsets[0]; p < rows.row_offsets[rows.num_rows]; ++p) {
      request.Need(mistake == Mistake::kDenseRows ? 1 : 0, rows.cols[p]);
    }
    if (mistake == Mistake::kRowOutOfRange) request.Need(0, kRows);
  }
  void Gradient(const api::MapContext& /*ctx*/, const api::Rows& rows,
                const api::ParamsView& params, api::GradientSink& sink,
                api::MapStats& stats) override {
    for (int64_t i = 0; i < rows.num_rows; ++i) {
      for (int64_t p = rows.row_offsets[i]; p < rows.row_offsets[i + 1]; ++p) {
        const float one[2] = {1, 1};
        stats.loss_sum += params.Row(0, rows.cols[p])[0];
        if (mistake == Mistake::kBlockIntoRows) sink.AddBlock(0, rows.cols[p], one, 1);
        sink.AddRow(0, rows.cols[p], one, mistake == Mistake::kShortRow ? 2 : 1);
      }
      if (mistake == Mistake::kUnpulled) params.Row(0, 12345);
      const float one = 1;
      sink.AddTensor(1, &one, 1);
      ++stats.examples;
    }
  }
  void Evaluate(const api::Rows&, const api::ParamsView&, api::MapStats&) override {}
  int NumOutputs() const override { return 1; }
  void Predict(const api::Rows&, const api::ParamsView&, float*, float*) override {}
};

// 4 sparse rows over wide ids: {7, 900000000}, {7}, {}, {3}.
data::PartitionData FourRows() {
  data::PartitionData p;
  p.num_rows = 4;
  p.num_cols = kRows;
  p.is_sparse = true;
  p.row_offsets = {0, 2, 3, 3, 4};
  p.cols = {7, 900000000, 7, 3};
  p.values = {1, 1, 1, 1};
  p.labels = {0, 1, 0, 1};
  return p;
}

struct Fixture {
  RowMapper mapper;
  std::shared_ptr<ModelLayout> layout;
  ModelState state;
  MapTaskConfig config;
  shuffle::HashPartitioner partitioner{2};
  RowOrderCache orders{7};
  std::vector<std::vector<ParamKey>> fetched;
  RowFetcher fetch = [this](const std::vector<ParamKey>& keys, PulledRows* out) {
    fetched.push_back(keys);
    for (ParamKey key : keys) {
      const float value = 0.5f * static_cast<float>(key.block());
      out->Add(key, &value, 1);
    }
    return Status::Ok();
  };

  Fixture() {
    layout = std::make_shared<ModelLayout>(
        ModelLayout::Create(mapper.DescribeModel(api::DataShape{}), 16).value());
    state = ModelState::Zeros(layout, 0);
    config.layout = layout.get();
    config.num_features = kRows;
    config.rounds_per_epoch = 1;
    config.chunk_rows = 2;
  }

  Result<MapTaskOutput> Run() {
    return RunMapTask(config, TaskId{0, 0, 0, 0}, FourRows(), state.View(), mapper, partitioner,
                      orders, nullptr, &fetch);
  }
};

TEST_CASE("a map task pulls the rows its mapper names once and emits rows as keys", "[runtime]") {
  Fixture f;
  Result<MapTaskOutput> out = f.Run();
  REQUIRE(out.ok());
  REQUIRE(f.fetched.size() == 1);  // once per task, not per chunk
  CHECK(f.fetched[0] ==
        std::vector<ParamKey>{ParamKey(0, 3), ParamKey(0, 7), ParamKey(0, 900000000)});
  // The mapper read the pulled values: 0.5 * (7 + 900000000 + 7 + 3).
  CHECK(out->stats.loss_sum == Approx(0.5 * (900000017.0)));
  int64_t keys = 0;
  float row7 = 0;
  for (const shuffle::Run& run : out->runs) {
    for (int64_t i = 0; i < run.num_keys(); ++i) {
      ++keys;
      if (run.keys[i] == ParamKey(0, 7)) row7 = run.ValuesOf(i)[0];
    }
  }
  CHECK(keys == 4);     // three rows and the bias
  CHECK(row7 == 2.0f);  // summed over the task
}

TEST_CASE("bad row requests and emissions fail the task naming the tensor and row", "[runtime]") {
  using M = RowMapper::Mistake;
  const std::pair<M, std::string> cases[] = {
      {M::kDenseRows,
       "NeededRows asked for row 7 of tensor \"b\" (id 1), which is dense (ParamsView::tensors "
       "holds it)"},
      {M::kRowOutOfRange,
       "NeededRows asked for row 1073741824 of tensor \"w\" (id 0), which has rows 0 to "
       "1073741823"},
      {M::kBlockIntoRows,
       "AddBlock into tensor \"w\" (id 0), which is row-sparse: emit its rows with AddRow"},
      {M::kShortRow,
       "emitted a buffer of 2 floats for row 7 of tensor \"w\" (id 0), which holds 1"},
      {M::kUnpulled,
       "ParamsView::Row: row 12345 of tensor \"w\" was not pulled for this task: NeededRows did "
       "not name it"},
  };
  for (const auto& [mistake, message] : cases) {
    Fixture f;
    f.mapper.mistake = mistake;
    Result<MapTaskOutput> out = f.Run();
    INFO(out.status().ToString());
    REQUIRE_FALSE(out.ok());
    CHECK(out.status().code() == StatusCode::kPluginError);
    CHECK(out.status().message().find(message) != std::string::npos);
  }
  // No row source for a model with row-sparse tensors: refused, not a crash.
  Fixture f;
  Result<MapTaskOutput> out = RunMapTask(f.config, TaskId{0, 0, 0, 0}, FourRows(), f.state.View(),
                                         f.mapper, f.partitioner, f.orders);
  CHECK(out.status().code() == StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace mrtrain::runtime
