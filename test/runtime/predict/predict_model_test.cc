// Predicting with a row-sparse model reads the dense tensors and, per chunk of rows, only the
// rows those rows need, yet scores every row exactly as scoring from the whole model does.
#include "runtime/predict/predict_model.h"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/api/random.h"
#include "engine/data/dataset.h"
#include "engine/plugin/plugin_library.h"
#include "jobs/spec/job_spec.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/local/local_job.h"
#include "runtime/predict/prediction_csv.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::runtime {
namespace {

using testing::TempDir;

// `rows` rows of 10 to 25 binary features with ids below 2^40 (hashed by the job): half from a
// small vocabulary, so rows share them, half anywhere, so test rows bring features training
// never saw. The label is a fixed function of the vocabulary's features.
std::string SparseRows(int rows, uint64_t seed) {
  api::RandomStream random(seed, 5);
  std::string text;
  for (int r = 0; r < rows; ++r) {
    const int nnz = 10 + static_cast<int>(random.Below(16));
    std::set<uint64_t> ids;
    for (int i = 0; i < nnz; ++i) {
      ids.insert(i % 2 == 0 ? 1 + random.Below(400) : 1 + random.Below(uint64_t{1} << 40));
    }
    std::string features;
    int score = 0;
    for (uint64_t id : ids) {
      if (id <= 400) score += id % 3 == 0 ? 1 : -1;
      features += " " + std::to_string(id) + ":1";
    }
    text += (score > 0 ? "1" : "0") + features + "\n";
  }
  return text;
}

// The whole model's stored rows, as predict read them before: a row not stored reads as zeros.
class WholeRows : public api::RowSource {
 public:
  explicit WholeRows(const ModelState& state) : state_(state), zeros_(1 << 14, 0.0f) {}

  const float* Find(int tensor, int64_t id) const override {
    const StoredRows& rows = state_.rows[tensor];
    auto it = std::lower_bound(rows.ids.begin(), rows.ids.end(), id);
    if (it == rows.ids.end() || *it != id) return zeros_.data();
    return rows.values.data() + (it - rows.ids.begin()) * state_.layout->specs()[tensor].row_dim();
  }

 private:
  const ModelState& state_;
  std::vector<float> zeros_;
};

TEST_CASE(
    "a row-sparse model predicts from the rows each chunk needs exactly as from the "
    "whole model",
    "[runtime]") {
  TempDir dir;
  dir.Write("train.svm", SparseRows(900, 1));
  dir.Write("test.svm", SparseRows(2500, 2));  // several 1024-row chunks per partition
  struct Model {
    const char* name;
    const char* spec;
    int hash_bits;
  };
  for (const Model& m : {Model{"lr", "{type: logistic, init: zeros}", 30},
                         Model{"fm", "{type: fm, factors: 3}", 25}}) {
    const std::string data =
        ", format: libsvm, hash_bits: " + std::to_string(m.hash_bits) + ", max_decoded_mb: 16384";
    auto spec =
        jobs::ParseJobSpec("data:\n  train: {path: " + dir.File("train.svm") + data +
                               ", partitions: 3}\n" + "  test: {path: " + dir.File("test.svm") +
                               data + ", partitions: 2}\n" + "model: " + m.spec +
                               "\nupdate: {rule: adagrad, learning_rate: 0.1}\n"
                               "training: {epochs: 1, rounds_per_epoch: 3, seed: 7}\n",
                           "job.yaml", {"output.dir=" + dir.File(m.name)});
    INFO(m.spec);
    INFO((spec.ok() ? "" : spec.status().message()));
    REQUIRE(spec.ok());
    auto trained = RunLocalJob(*spec, LocalRunOptions{}, nullptr);
    INFO((trained.ok() ? "" : trained.status().message()));
    REQUIRE(trained.ok());

    // Before: the whole model read, every stored row at hand.
    Result<Checkpoint> whole = ReadCheckpointFile(trained->model_path);
    REQUIRE(whole.ok());
    REQUIRE(whole->state.layout->has_row_sparse());
    size_t stored = 0;
    for (const StoredRows& rows : whole->state.rows) stored += rows.ids.size();
    CHECK(stored > 100);
    const WholeRows whole_rows(whole->state);
    api::ParamsView whole_params = whole->state.View();
    whole_params.rows = &whole_rows;

    // Now: the dense tensors and the file.
    Result<std::unique_ptr<PredictModel>> model =
        LoadPredictModel(trained->model_path, plugin::PluginSet(), 2);
    REQUIRE(model.ok());
    for (const StoredRows& rows : (*model)->checkpoint.state.rows) CHECK(rows.ids.empty());
    CHECK((*model)->checkpoint.state.slots.empty());

    auto dataset = data::Dataset::Open(*spec->test);
    REQUIRE(dataset.ok());
    for (int64_t p = 0; p < (*dataset)->num_partitions(); ++p) {
      auto part = (*dataset)->LoadPartition(p);
      REQUIRE(part.ok());
      PartPredictions before, after;
      {
        auto mapper = (*model)->mappers->Borrow();  // the second of its two
        REQUIRE(PredictPart(*part, whole->data_shape.num_features, whole_params, *mapper,
                            (*model)->who, (*model)->outputs, &before)
                    .ok());
      }
      REQUIRE(ScorePartition(**model, p, *part, &after).ok());
      CHECK(after.rows > 1024);
      CHECK(after.csv == before.csv);
      CHECK(after.correct == before.correct);
    }
  }
}

TEST_CASE("predict refuses a damaged model file as reading it whole does", "[runtime]") {
  TempDir dir;
  const std::string bytes = "MRTCKPT";
  dir.Write("bad.mrt", bytes + std::string(40, 'x'));
  Result<std::unique_ptr<PredictModel>> model =
      LoadPredictModel(dir.File("bad.mrt"), plugin::PluginSet(), 1);
  Result<Checkpoint> whole = ReadCheckpointFile(dir.File("bad.mrt"));
  REQUIRE_FALSE(model.ok());
  CHECK(model.status().code() == whole.status().code());
  CHECK(model.status().message() == whole.status().message());
}

}  // namespace
}  // namespace mrtrain::runtime
