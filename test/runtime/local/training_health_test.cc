// What a job reports about its own health: divergence stops it, and a regression reports no
// accuracy.

#include <cmath>
#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

#include "jobs/spec/job_spec.h"
#include "runtime/local/local_job.h"
#include "runtime/local/predict_job.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::runtime {
namespace {

using testing::TempDir;

Result<TrainingResult> Train(const std::string& yaml) {
  auto spec = jobs::ParseJobSpec(yaml, "job.yaml");
  INFO(spec.status().ToString());
  REQUIRE(spec.ok());
  return RunLocalJob(*spec, LocalRunOptions(), nullptr);
}

std::string LinearSpec(const std::string& train, const std::string& out,
                       const std::string& learning_rate) {
  return "data: {train: {path: " + train + ", format: csv, partitions: 2}, test: {path: " + train +
         ", format: csv}}\n"
         "model: {type: linear, init: zeros}\n"
         "update: {rule: sgd, learning_rate: " +
         learning_rate +
         "}\n"
         "training: {epochs: 3, rounds_per_epoch: 2, threads: 1}\n"
         "output: {dir: " +
         out + "}\n";
}

TEST_CASE("a diverging job fails naming epoch, round and tensor and writes no model", "[runtime]") {
  TempDir dir;
  // Labels sum to 0, so at zeros the bias gradient is 0 and only "w" moves: the mean gradient of
  // w[0] is -125, which times 1e38 is past the largest float.
  const std::string train =
      dir.Write("train.csv", "10,10,0\n-10,0,10\n20,20,0\n-20,0,20\n10,10,0\n-10,0,10\n");
  auto result = Train(LinearSpec(train, dir.File("out"), "1e38"));
  REQUIRE_FALSE(result.ok());
  const std::string message = result.status().message();
  INFO(message);
  CHECK(result.status().code() == StatusCode::kFailedPrecondition);
  CHECK(message.rfind("epoch 1 round 1: reduce: ", 0) == 0);
  CHECK(message.find(": shard 0: update step 1 made tensor \"w\" (id 0) element 0 inf (learning "
                     "rate 1e+38); training diverged: lower update.learning_rate") !=
        std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.File("out/model.mrt")));
  CHECK_FALSE(std::filesystem::exists(dir.File("out/model.npz")));
  // No epoch finished, so no metrics line carries a NaN either.
  CHECK(TempDir::Read(dir.File("out/metrics.jsonl")).empty());
}

TEST_CASE("a learning rate that is infinite as a float is refused when the spec is read",
          "[runtime]") {
  auto spec = jobs::ParseJobSpec(
      "data: {train: {path: t.csv, format: csv, partitions: 1}}\n"
      "model: {type: linear}\n"
      "update: {learning_rate: 1e39}\noutput: {dir: o}\n",
      "job.yaml");
  REQUIRE_FALSE(spec.ok());
  CHECK(spec.status().message() ==
        "job.yaml:3: update.learning_rate: got 1e+39, which is infinite as a float (the largest "
        "float is 3.4028235e+38)");
}

TEST_CASE("a regression on whole-number labels reports its loss and RMSE, not accuracy",
          "[runtime]") {
  TempDir dir;
  // y = x0 + x1: whole numbers >= 0, which look like class indices to the data.
  std::string text;
  for (int i = 0; i < 40; ++i) {
    const int a = i % 4, b = (i / 4) % 3;
    text += std::to_string(a + b) + "," + std::to_string(a) + "," + std::to_string(b) + "\n";
  }
  const std::string train = dir.Write("train.csv", text);
  auto result = Train(LinearSpec(train, dir.File("out"), "0.05"));
  INFO(result.status().ToString());
  REQUIRE(result.ok());
  REQUIRE(result->last);
  CHECK_FALSE(result->last->train_accuracy);
  CHECK_FALSE(result->last->test_accuracy);
  CHECK(result->last->test_loss);
  const std::string line = result->last->ToLine();
  CHECK(line.find("accuracy") == std::string::npos);
  CHECK(line.find(" test_loss=") != std::string::npos);
  const std::string metrics = TempDir::Read(dir.File("out/metrics.jsonl"));
  CHECK(metrics.find("accuracy") == std::string::npos);
  CHECK(metrics.find("\"train_loss\"") != std::string::npos);

  PredictOptions predict;
  predict.model_path = result->model_path;
  predict.data.path = train;
  predict.data.format = data::DataFormat::kCsv;
  predict.out_path = dir.File("predictions.csv");
  predict.threads = 1;
  auto summary = RunPredictJob(predict);
  INFO(summary.status().ToString());
  REQUIRE(summary.ok());
  CHECK(summary->rows == 40);
  CHECK_FALSE(summary->classifier);
  // The square root of twice the mean squared loss (the loss is half the squared error).
  CHECK(summary->rmse == Approx(std::sqrt(2 * *result->last->test_loss)).epsilon(1e-3));
}

}  // namespace
}  // namespace mrtrain::runtime
