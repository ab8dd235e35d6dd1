// Training and predicting on converted shards give the bytes of the same job on the text.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/data/shard_converter.h"
#include "jobs/spec/job_spec.h"
#include "runtime/local/local_job.h"
#include "runtime/local/predict_job.h"
#include "test/testing/temp_dir.h"
#include "tools/data/synthetic.h"

namespace mrtrain::runtime {
namespace {

using testing::TempDir;

jobs::JobSpec Parse(const std::string& yaml, const std::vector<std::string>& overrides) {
  auto spec = jobs::ParseJobSpec(yaml, "job.yaml", overrides);
  INFO((spec.ok() ? "" : spec.status().message()));
  REQUIRE(spec.ok());
  return *spec;
}

void Train(const jobs::JobSpec& spec) {
  auto result = RunLocalJob(spec, LocalRunOptions{}, nullptr);
  INFO((result.ok() ? "" : result.status().message()));
  REQUIRE(result.ok());
}

void Convert(const data::DatasetSpec& source, const std::string& out) {
  data::ConvertOptions options;
  options.threads = 2;
  auto summary = data::ConvertToShards(source, out, options);
  INFO((summary.ok() ? "" : summary.status().message()));
  REQUIRE(summary.ok());
}

// A job on `train` (and `test`), then the same job with both converted to shards: the two
// model.mrt files must be equal byte for byte, and a different seed must change them.
void RequireSameModel(const TempDir& dir, const std::string& yaml) {
  const jobs::JobSpec text = Parse(yaml, {"output.dir=" + dir.File("text")});
  Train(text);
  Convert(text.train, dir.File("train-shards"));
  Convert(*text.test, dir.File("test-shards"));
  const jobs::JobSpec shards =
      Parse(yaml, {"output.dir=" + dir.File("shards"), "data.train.format=shards",
                   "data.train.path=" + dir.File("train-shards"), "data.test.format=shards",
                   "data.test.path=" + dir.File("test-shards")});
  CHECK(shards.Fingerprint() == text.Fingerprint());
  Train(shards);
  const std::string reference = TempDir::Read(dir.File("text/model.mrt"));
  REQUIRE(reference.size() > 200);
  CHECK(TempDir::Read(dir.File("shards/model.mrt")) == reference);
  Train(Parse(yaml, {"output.dir=" + dir.File("seed9"), "training.seed=9"}));
  CHECK(TempDir::Read(dir.File("seed9/model.mrt")) != reference);
}

TEST_CASE("a softmax job on csv shards writes the model bytes of the job on the csv", "[runtime]") {
  TempDir dir;
  tools::SyntheticSpec s;
  s.task = tools::SyntheticSpec::Task::kMulticlass;
  s.classes = 3;
  s.features = 10;
  s.rows = 1500;
  s.seed = 5;
  REQUIRE(tools::WriteSyntheticCsv(dir.File("train.csv"), s).ok());
  RequireSameModel(dir,
                   "data:\n"
                   "  train: {path: " +
                       dir.File("train.csv") +
                       ", format: csv, partitions: 5}\n"
                       "  test: {path: " +
                       dir.File("train.csv") +
                       ", format: csv, partitions: 2}\n"
                       "model: {type: softmax, block_size: 16}\n"
                       "update: {rule: adam, learning_rate: 0.1}\n"
                       "training: {epochs: 2, rounds_per_epoch: 5, seed: 3, threads: 2}\n");
}

TEST_CASE(
    "a logistic job on sparse libsvm shards writes the model bytes of the job on the text, "
    "and predicts the same rows",
    "[runtime]") {
  TempDir dir;
  tools::SyntheticSpec s;
  s.task = tools::SyntheticSpec::Task::kBinary;
  s.features = 30;
  s.rows = 1200;
  s.seed = 8;
  REQUIRE(tools::WriteSyntheticLibsvm(dir.File("train.svm"), s).ok());
  RequireSameModel(dir,
                   "data:\n"
                   "  train: {path: " +
                       dir.File("train.svm") +
                       ", format: libsvm, partitions: 3}\n"
                       "  test: {path: " +
                       dir.File("train.svm") +
                       ", format: libsvm, partitions: 2}\n"
                       "model: {type: logistic}\n"
                       "update: {rule: sgd, learning_rate: 0.5}\n"
                       "training: {epochs: 2, rounds_per_epoch: 6, seed: 3, threads: 2}\n");
  PredictOptions on_text;
  on_text.model_path = dir.File("text/model.mrt");
  on_text.data.path = dir.File("train.svm");
  on_text.data.format = data::DataFormat::kLibsvm;
  on_text.data.num_partitions = 3;
  on_text.out_path = dir.File("text.csv");
  on_text.threads = 2;
  REQUIRE(RunPredictJob(on_text).ok());
  PredictOptions on_shards = on_text;
  on_shards.data.path = dir.File("train-shards");
  on_shards.data.format = data::DataFormat::kShards;
  on_shards.out_path = dir.File("shards.csv");
  auto summary = RunPredictJob(on_shards);
  INFO((summary.ok() ? "" : summary.status().message()));
  REQUIRE(summary.ok());
  CHECK(summary->rows == 1200);
  CHECK(TempDir::Read(dir.File("shards.csv")) == TempDir::Read(dir.File("text.csv")));
}

}  // namespace
}  // namespace mrtrain::runtime
