// Predictions as a folder of part files plus a manifest: the parts' rows are the bytes of the
// single-file output, the manifest commits them and catches a damaged part.
#include "runtime/predict/prediction_parts.h"

#include <filesystem>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include "jobs/spec/job_spec.h"
#include "runtime/local/local_job.h"
#include "runtime/local/predict_job.h"
#include "test/testing/temp_dir.h"
#include "tools/data/synthetic.h"

namespace mrtrain::runtime {
namespace {

using testing::TempDir;

// Trains a 3-class softmax model on a synthetic csv; returns the predict options over it.
PredictOptions TrainedModel(const TempDir& dir) {
  tools::SyntheticSpec s;
  s.task = tools::SyntheticSpec::Task::kMulticlass;
  s.classes = 3;
  s.features = 6;
  s.rows = 700;
  s.seed = 4;
  REQUIRE(tools::WriteSyntheticCsv(dir.File("data.csv"), s).ok());
  auto spec = jobs::ParseJobSpec("data:\n  train: {path: " + dir.File("data.csv") +
                                     ", format: csv, partitions: 3}\n"
                                     "model: {type: softmax, block_size: 8}\n"
                                     "update: {rule: adam, learning_rate: 0.1}\n"
                                     "training: {epochs: 1, rounds_per_epoch: 3, seed: 3}\n",
                                 "job.yaml", {"output.dir=" + dir.File("job")});
  INFO((spec.ok() ? "" : spec.status().message()));
  REQUIRE(spec.ok());
  auto trained = RunLocalJob(*spec, LocalRunOptions{}, nullptr);
  INFO((trained.ok() ? "" : trained.status().message()));
  REQUIRE(trained.ok());
  PredictOptions o;
  o.model_path = dir.File("job/model.mrt");
  o.data.path = dir.File("data.csv");
  o.data.format = data::DataFormat::kCsv;
  o.data.num_partitions = 3;
  o.threads = 2;
  return o;
}

// The text after the first line.
std::string Body(const std::string& csv) { return csv.substr(csv.find('\n') + 1); }

TEST_CASE("predictions into a folder: parts in partition order are the single file's rows",
          "[runtime]") {
  TempDir dir;
  PredictOptions single = TrainedModel(dir);
  single.out_path = dir.File("single.csv");
  auto one = RunPredictJob(single);
  REQUIRE(one.ok());
  PredictOptions folder = single;
  folder.out_path.clear();
  folder.out_dir = dir.File("out.d");
  auto parts = RunPredictJob(folder);
  INFO((parts.ok() ? "" : parts.status().message()));
  REQUIRE(parts.ok());
  CHECK(parts->rows == 700);
  CHECK(parts->correct == one->correct);
  CHECK(parts->classifier);

  auto manifest = ReadPredictionManifest(folder.out_dir);
  INFO((manifest.ok() ? "" : manifest.status().message()));
  REQUIRE(manifest.ok());
  REQUIRE(manifest->parts.size() == 3);
  CHECK(manifest->outputs == 3);
  CHECK(manifest->model.bytes == TempDir::Read(single.model_path).size());
  const std::string whole = TempDir::Read(single.out_path);
  std::string joined;
  int64_t rows = 0;
  for (const PredictionPart& p : manifest->parts) {
    CHECK(p.first_row == rows);
    rows += p.rows;
    const std::string part = TempDir::Read(folder.out_dir + "/" + p.file);
    CHECK(part.substr(0, part.find('\n') + 1) == "row,label,prediction,score_0,score_1,score_2\n");
    joined += Body(part);
  }
  CHECK(rows == 700);
  CHECK(manifest->parts[1].file == "part-00001.csv");
  CHECK(joined == Body(whole));

  SECTION("a damaged part fails the manifest's check, naming the file") {
    std::ofstream(folder.out_dir + "/part-00002.csv", std::ios::app) << "9999,1,1,0,0,1\n";
    auto damaged = ReadPredictionManifest(folder.out_dir);
    REQUIRE(damaged.status().code() == StatusCode::kCorruption);
    CHECK_THAT(damaged.status().message(),
               Catch::Contains("part-00002.csv") && Catch::Contains("the manifest says"));
  }
  SECTION("a folder without its manifest is unfinished") {
    REQUIRE(RemovePredictionManifest(folder.out_dir).ok());
    CHECK_FALSE(std::filesystem::exists(folder.out_dir + "/manifest.json"));
    CHECK(ReadPredictionManifest(folder.out_dir).status().code() == StatusCode::kNotFound);
    CHECK(RemovePredictionManifest(folder.out_dir).ok());  // none is fine
    CHECK(RemovePredictionManifest(dir.File("no-such-folder")).ok());
  }
}

TEST_CASE("a part's name has five digits at least", "[runtime]") {
  CHECK(PredictionPartName(0) == "part-00000.csv");
  CHECK(PredictionPartName(123456) == "part-123456.csv");
}

}  // namespace
}  // namespace mrtrain::runtime
