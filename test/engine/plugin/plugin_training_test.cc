// Training in local mode with mappers and reducers from plugin libraries.

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/base/status.h"
#include "jobs/spec/job_spec.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/job/job_setup.h"
#include "runtime/local/local_job.h"
#include "runtime/local/predict_job.h"
#include "test/testing/temp_dir.h"
#include "tools/data/synthetic.h"

namespace mrtrain::runtime {
namespace {

using testing::TempDir;

const char kExample[] = "jobs/plugins/libmrtrain_example_plugins.so";
const char kTestPlugins[] = "test/engine/plugin/libtest_plugins.so";

jobs::JobSpec ParseSpec(const std::string& yaml) {
  auto spec = jobs::ParseJobSpec(yaml, "job.yaml");
  INFO(spec.status().ToString());
  REQUIRE(spec.ok());
  return *spec;
}

// A regression job on `train` using the example plugins.
std::string HuberSpec(const std::string& train, const std::string& out) {
  return std::string("plugins: [") + kExample +
         "]\n"
         "data:\n"
         "  train: {path: " +
         train +
         ", format: csv, partitions: 4}\n"
         "model: {plugin: huber, params: {delta: 1.0}, init: zeros, block_size: 4}\n"
         "update: {plugin: clipped_sgd, params: {clip: 5}, learning_rate: 0.2}\n"
         "training: {epochs: 8, rounds_per_epoch: 10, seed: 5, threads: 2}\n"
         "shuffle: {reducers: 2}\n"
         "output: {dir: " +
         out + ", checkpoint: {every_epochs: 0}}\n";
}

TEST_CASE("local mode learns known weights with a plugin mapper and reducer", "[runtime]") {
  TempDir dir;
  tools::SyntheticSpec s;
  s.task = tools::SyntheticSpec::Task::kRegression;
  s.rows = 2000;
  s.features = 6;
  s.noise = 0.01;
  s.seed = 9;
  const std::string train = dir.File("train.csv");
  auto truth = tools::WriteSyntheticCsv(train, s);
  REQUIRE(truth.ok());

  const jobs::JobSpec spec = ParseSpec(HuberSpec(train, dir.File("out")));
  auto result = RunLocalJob(spec, LocalRunOptions(), nullptr);
  INFO(result.status().ToString());
  REQUIRE(result.ok());
  REQUIRE(result->last);
  CHECK(result->last->examples == 2000);
  CHECK(result->last->train_loss < 1e-3);

  auto model = ReadCheckpointFile(result->model_path);
  REQUIRE(model.ok());
  CHECK(model->model_type == "plugin:huber");
  CHECK(model->update_rule == "plugin:clipped_sgd");
  const std::vector<float>& w = model->state.tensors.at(0);
  REQUIRE(w.size() == truth->weights.size());
  for (size_t j = 0; j < w.size(); ++j) {
    INFO("feature " << j);
    CHECK(std::abs(w[j] - truth->weights[j]) < 0.02);
  }
  CHECK(std::abs(model->state.tensors.at(1)[0] - truth->bias[0]) < 0.02);

  // Predicting needs the library again: the checkpoint names the mapper, not the file.
  PredictOptions predict;
  predict.model_path = result->model_path;
  predict.data = spec.train;
  predict.out_path = dir.File("predictions.csv");
  predict.threads = 1;
  auto without = RunPredictJob(predict);
  REQUIRE_FALSE(without.ok());
  CHECK(without.status().message() ==
        result->model_path +
            ": the model was trained with plugin mapper 'huber'; pass the library with --plugin "
            "PATH");
  predict.plugins = {kExample};
  auto with = RunPredictJob(predict);
  INFO(with.status().ToString());
  REQUIRE(with.ok());
  CHECK(with->rows == 2000);
  const std::string csv = TempDir::Read(predict.out_path);
  CHECK(std::count(csv.begin(), csv.end(), '\n') >= 2000);
}

TEST_CASE("a plugin mapper that throws fails the job with its message and task", "[runtime]") {
  TempDir dir;
  tools::SyntheticSpec s;
  s.rows = 200;
  s.features = 3;
  const std::string train = dir.File("train.csv");
  REQUIRE(tools::WriteSyntheticCsv(train, s).ok());
  const std::string yaml = std::string("plugins: [") + kTestPlugins +
                           "]\n"
                           "data: {train: {path: " +
                           train +
                           ", format: csv, partitions: 2}}\n"
                           "model: {plugin: thrower, params: {fail_epoch: 1}}\n"
                           "training: {epochs: 3, threads: 1}\n"
                           "output: {dir: " +
                           dir.File("out") + "}\n";
  auto result = RunLocalJob(ParseSpec(yaml), LocalRunOptions(), nullptr);
  REQUIRE_FALSE(result.ok());
  CHECK(result.status().code() == StatusCode::kPluginError);
  const std::string message = result.status().message();
  INFO(message);
  CHECK(message.find("thrower gave up on purpose") != std::string::npos);
  // The guard names the plugin's name, class and library file.
  CHECK(message.find("mapper \"thrower\" (ThrowingMapper in /") != std::string::npos);
  CHECK(message.find("/libtest_plugins.so) threw on record at " + train + " line ") !=
        std::string::npos);
  CHECK(message.find("epoch 1") != std::string::npos);
}

TEST_CASE("a mapper throwing on one record ends the job after max_attempts, naming the record",
          "[runtime]") {
  TempDir dir;
  // Row i has first feature i and sits on line i + 2, under the header.
  std::string text = "y,x0,x1\n";
  for (int i = 0; i < 60; ++i) text += std::to_string(i % 3) + "," + std::to_string(i) + ",1\n";
  const std::string train = dir.Write("train.csv", text);
  auto run = [&](const std::string& name, const std::string& attempts) {
    const std::string yaml = std::string("plugins: [") + kTestPlugins +
                             "]\n"
                             "data: {train: {path: " +
                             train +
                             ", format: csv, header: true, partitions: 3}}\n"
                             "model: {plugin: bad_record, params: {feature0: 37, trace: " +
                             dir.File(name) +
                             "}}\n"
                             "training: {epochs: 2, threads: 1, chunk_rows: 1000" +
                             attempts +
                             "}\n"
                             "output: {dir: " +
                             dir.File(name + "_out") + "}\n";
    return RunLocalJob(ParseSpec(yaml), LocalRunOptions(), nullptr);
  };
  // The trace has one line per throwing call: its row count. A call over the whole round (one
  // chunk) fails each attempt; one single-row call per attempt finds the record.
  auto calls = [&](const std::string& name, bool single) {
    std::istringstream trace(TempDir::Read(dir.File(name)));
    int n = 0;
    for (std::string rows; std::getline(trace, rows);) n += (rows == "1") == single ? 1 : 0;
    return n;
  };
  auto result = run("three", ", max_attempts: 3");
  REQUIRE_FALSE(result.ok());
  CHECK(result.status().code() == StatusCode::kPluginError);
  std::string message = result.status().message();
  INFO(message);
  CHECK(message.find("failed 3 times") != std::string::npos);
  CHECK(message.find("(epoch 0, round 0, partition 1, attempt 2): mapper \"bad_record\" "
                     "(BadRecordMapper in /") != std::string::npos);
  CHECK(message.find("libtest_plugins.so) threw on record at " + train + " line 39 (row ") !=
        std::string::npos);
  CHECK(message.find("of the partition): feature 0 is 37, which this model cannot take") !=
        std::string::npos);
  CHECK(calls("three", false) == 3);
  CHECK(calls("three", true) == 3);

  result = run("default", "");  // training.max_attempts defaults to 4
  REQUIRE_FALSE(result.ok());
  message = result.status().message();
  CHECK(message.find("failed 4 times") != std::string::npos);
  CHECK(message.find(train + " line 39 (row ") != std::string::npos);
  CHECK(calls("default", false) == 4);
  CHECK(calls("default", true) == 4);
}

TEST_CASE("a transient plugin error is retried and the job ends as one without errors",
          "[runtime]") {
  TempDir dir;
  tools::SyntheticSpec s;
  s.task = tools::SyntheticSpec::Task::kRegression;
  s.rows = 400;
  s.features = 4;
  const std::string train = dir.File("train.csv");
  REQUIRE(tools::WriteSyntheticCsv(train, s).ok());
  auto yaml = [&](int failures, const std::string& out) {
    return std::string("plugins: [") + kTestPlugins +
           "]\n"
           "data: {train: {path: " +
           train +
           ", format: csv, partitions: 2}}\n"
           "model: {plugin: flaky, params: {failures: " +
           std::to_string(failures) +
           "}, init: zeros}\n"
           "update: {rule: sgd, learning_rate: 0.1}\n"
           "training: {epochs: 2, rounds_per_epoch: 4, threads: 1, max_attempts: 4}\n"
           "output: {dir: " +
           dir.File(out) + "}\n";
  };
  // Attempts compute the same bytes, so failed attempts change nothing but time (the spec's
  // params differ, so model.mrt headers do; the tensors in model.npz must not). The three
  // faults fail fewer attempts: the single-row calls looking for a bad record use some up.
  auto healthy = RunLocalJob(ParseSpec(yaml(0, "healthy")), LocalRunOptions(), nullptr);
  INFO(healthy.status().ToString());
  REQUIRE(healthy.ok());
  auto flaky = RunLocalJob(ParseSpec(yaml(3, "flaky")), LocalRunOptions(), nullptr);
  INFO(flaky.status().ToString());
  REQUIRE(flaky.ok());
  CHECK(TempDir::Read(dir.File("healthy/model.npz")) == TempDir::Read(dir.File("flaky/model.npz")));
}

TEST_CASE("a combiner that throws fails the task with its message, after max_attempts",
          "[runtime]") {
  TempDir dir;
  tools::SyntheticSpec s;
  s.task = tools::SyntheticSpec::Task::kRegression;
  s.rows = 100;
  s.features = 3;
  const std::string train = dir.File("train.csv");
  REQUIRE(tools::WriteSyntheticCsv(train, s).ok());
  const std::string yaml = std::string("plugins: [") + kTestPlugins +
                           "]\n"
                           "data: {train: {path: " +
                           train +
                           ", format: csv, partitions: 2}}\n"
                           "model: {type: linear}\n"
                           "combiner: {plugin: throwing_combiner}\n"
                           "training: {epochs: 1, threads: 1, max_attempts: 2}\n"
                           "output: {dir: " +
                           dir.File("out") + "}\n";
  auto result = RunLocalJob(ParseSpec(yaml), LocalRunOptions(), nullptr);
  REQUIRE_FALSE(result.ok());
  CHECK(result.status().code() == StatusCode::kPluginError);
  const std::string message = result.status().message();
  INFO(message);
  CHECK(message.find("combiner \"throwing_combiner\" (ThrowingCombiner in /") != std::string::npos);
  CHECK(message.find("libtest_plugins.so): Combine failed: combiner gave up on tensor 0") !=
        std::string::npos);
  CHECK(message.find("failed 2 times") != std::string::npos);
}

TEST_CASE("validation reports plugin problems before running", "[runtime]") {
  TempDir dir;
  const std::string train = dir.Write("train.csv", "1,2\n3,4\n");
  auto validate = [&](const std::string& plugins, const std::string& model) {
    return ValidateJob(ParseSpec("plugins: [" + plugins + "]\ndata: {train: {path: " + train +
                                 ", format: csv, partitions: 1}}\nmodel: " + model +
                                 "\noutput: {dir: " + dir.File("out") + "}\n"));
  };
  CHECK(validate(kExample, "{plugin: huber}").ok());
  Status unknown = validate(kExample, "{plugin: hubber}");
  CHECK(unknown.code() == StatusCode::kNotFound);
  CHECK(unknown.message() ==
        std::string("job.yaml:3: model.plugin: no plugin exports mapper "
                    "'hubber' (") +
            kExample + " exports mappers: huber; reducers: clipped_sgd; combiners: block_clip)");
  Status bad_param = validate(kExample, "{plugin: huber, params: {delta: -1}}");
  CHECK(bad_param.code() == StatusCode::kPluginError);
  CHECK(bad_param.message() == std::string("job.yaml:3: model.params.delta: mapper \"huber\" "
                                           "(mrtrain_example::HuberMapper in ") +
                                   kExample + "): constructor failed: delta must be > 0");
  Status wrong_version = validate("test/engine/plugin/libwrong_version.so", "{plugin: huber}");
  CHECK(wrong_version.message() ==
        "job.yaml:1: plugins: test/engine/plugin/libwrong_version.so: built for plugin API 5, "
        "this mrtrain speaks 4; rebuild the plugin against this mrtrain's engine/api headers");
  Status no_entry = validate("test/engine/plugin/libno_entry_point.so", "{plugin: huber}");
  CHECK(no_entry.code() == StatusCode::kPluginError);
  CHECK(no_entry.message().find("no entry point mrtrain_plugin_v1: not an mrtrain plugin") !=
        std::string::npos);
}

TEST_CASE("validation reports every problem at once, plugin params at their line", "[runtime]") {
  TempDir dir;
  const std::string train = dir.Write("train.csv", "1,2\n3,4\n");
  const std::string missing = dir.File("missing.csv");
  const Status status = ValidateJob(ParseSpec(std::string("plugins: [") + kExample + "]\n" +
                                              "data:\n"
                                              "  train: {path: " +
                                              train + ", format: csv, partitions: 1}\n" +
                                              "  test: {path: " + missing + ", format: csv}\n" +
                                              "model:\n"
                                              "  plugin: huber\n"
                                              "  params:\n"
                                              "    delta: -1\n"
                                              "update:\n"
                                              "  plugin: clipped_sgd\n"
                                              "  params: {clip: 1, speed: 2}\n"
                                              "output: {dir: " +
                                              dir.File("out") + "}\n"));
  REQUIRE_FALSE(status.ok());
  const std::string message = status.message();
  INFO(message);
  const std::string library = std::string(" in ") + kExample + "): constructor failed: ";
  CHECK(message.rfind("job.yaml:4: data.test.path: ", 0) == 0);
  CHECK(message.find(missing) != std::string::npos);
  CHECK(message.find("\njob.yaml:8: model.params.delta: mapper \"huber\" "
                     "(mrtrain_example::HuberMapper" +
                     library + "delta must be > 0\n") != std::string::npos);
  CHECK(message.find("\njob.yaml:11: update.params.speed: reducer \"clipped_sgd\" "
                     "(mrtrain_example::ClippedSgdReducer" +
                     library + "speed is not a parameter of reducer clipped_sgd") !=
        std::string::npos);
  CHECK(std::count(message.begin(), message.end(), '\n') == 2);
}

// A one-epoch job on a 3-feature CSV with `model` and `update` (flow maps), one attempt per task.
Result<TrainingResult> RunTestPluginJob(const TempDir& dir, const std::string& model,
                                        const std::string& update) {
  const std::string train = dir.Write("train.csv", "1,1,2,3\n0,4,5,6\n1,7,8,9\n0,1,1,1\n");
  const std::string yaml = std::string("plugins: [") + kTestPlugins + "]\n" +
                           "data: {train: {path: " + train + ", format: csv, partitions: 2}}\n" +
                           "model: " + model + "\nupdate: " + update + "\n" +
                           "training: {epochs: 1, threads: 1, max_attempts: 1}\n" +
                           "output: {dir: " + dir.File("out") + "}\n";
  return RunLocalJob(ParseSpec(yaml), LocalRunOptions(), nullptr);
}

TEST_CASE("an update rule throwing what is not a std::exception fails the job, naming it",
          "[runtime]") {
  TempDir dir;
  auto result = RunTestPluginJob(dir, "{type: linear}", "{plugin: int_thrower}");
  REQUIRE_FALSE(result.ok());
  CHECK(result.status().code() == StatusCode::kPluginError);
  const std::string message = result.status().message();
  INFO(message);
  CHECK(message.find("shard 0: reducer \"int_thrower\" (IntThrowingReducer in /") !=
        std::string::npos);
  CHECK(message.find("/libtest_plugins.so): update of tensor \"") != std::string::npos);
  CHECK(message.find("\" (id ") != std::string::npos);
  CHECK(message.find(") failed: unknown exception") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.File("out/model.mrt")));
}

TEST_CASE("a mapper emitting a buffer of another size than its tensor fails the task",
          "[runtime]") {
  TempDir dir;
  std::string params, place, sizes;
  SECTION("longer") {
    params = "{extra: 1}";
    place = "tensor \"w\" (id 0)";
    sizes = "4 floats";
  }
  SECTION("shorter") {
    params = "{extra: -1}";
    place = "tensor \"w\" (id 0)";
    sizes = "2 floats";
  }
  SECTION("a short block") {
    params = "{extra: -1, block: true}";
    place = "block 0 of tensor \"w\" (id 0)";
    sizes = "2 floats";
  }
  auto result = RunTestPluginJob(dir, "{plugin: wrong_size, params: " + params + "}", "{}");
  REQUIRE_FALSE(result.ok());
  CHECK(result.status().code() == StatusCode::kPluginError);
  const std::string message = result.status().message();
  INFO(message);
  CHECK(message.find("mapper \"wrong_size\" (WrongSizeMapper in /") != std::string::npos);
  CHECK(message.find("/libtest_plugins.so): emitted a buffer of " + sizes + " for " + place +
                     ", which holds 3") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.File("out/model.mrt")));
}

TEST_CASE("an infinite training loss stops the job naming epoch and round", "[runtime]") {
  TempDir dir;
  auto result = RunTestPluginJob(dir, "{plugin: infinite_loss}", "{}");
  REQUIRE_FALSE(result.ok());
  CHECK(result.status().code() == StatusCode::kFailedPrecondition);
  CHECK(result.status().message().find(
            "epoch 1 round 1: the training loss is infinite; training diverged") !=
        std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.File("out/model.mrt")));
}

}  // namespace
}  // namespace mrtrain::runtime
