#include "runtime/local/local_job.h"

#include <algorithm>
#include <filesystem>
#include <regex>
#include <sstream>

#include <catch2/catch.hpp>

#include "engine/base/log.h"
#include "runtime/checkpoint/checkpoint.h"
#include "test/testing/captured_log.h"
#include "test/testing/temp_dir.h"
#include "tools/data/synthetic.h"

namespace mrtrain::runtime {
namespace {

using testing::CapturedLog;
using testing::TempDir;

// A softmax job over a synthetic 4-class dataset with known weights.
std::string SoftmaxSpec(const std::string& train, const std::string& test, const std::string& out) {
  return "data:\n"
         "  train: {path: " +
         train +
         ", format: csv, partitions: 5}\n"
         "  test: {path: " +
         test +
         ", format: csv, partitions: 2}\n"
         "model: {type: softmax, block_size: 16}\n"
         "update: {rule: adam, learning_rate: 0.1}\n"
         "training: {epochs: 4, rounds_per_epoch: 6, seed: 3, threads: 2}\n"
         "output: {dir: " +
         out + ", checkpoint: {every_epochs: 1, keep: 10}}\n";
}

struct SyntheticFiles {
  TempDir dir;
  std::string train, test;
  SyntheticFiles() {
    tools::SyntheticSpec s;
    s.task = tools::SyntheticSpec::Task::kMulticlass;
    s.classes = 4;
    s.features = 12;
    s.rows = 3600;
    s.seed = 11;
    // One stream of rows from one set of true weights: the first 3000 train, the rest test.
    std::string all = dir.File("all.csv");
    REQUIRE(tools::WriteSyntheticCsv(all, s).ok());
    std::string text = TempDir::Read(all);
    size_t at = 0;
    for (int i = 0; i < 3000; ++i) at = text.find('\n', at) + 1;
    train = dir.Write("train.csv", text.substr(0, at));
    test = dir.Write("test.csv", text.substr(at));
  }
};

Result<TrainingResult> Train(const std::string& yaml, const std::vector<std::string>& overrides,
                             bool resume = false, const std::string& spill_dir = "") {
  auto spec = jobs::ParseJobSpec(yaml, "job.yaml", overrides);
  REQUIRE(spec.ok());
  LocalRunOptions options;
  options.resume = resume;
  options.spill_dir = spill_dir;
  return RunLocalJob(*spec, options, nullptr);
}

TEST_CASE("local mode learns a synthetic softmax problem", "[runtime]") {
  SyntheticFiles files;
  auto result = Train(SoftmaxSpec(files.train, files.test, files.dir.File("out")), {});
  REQUIRE(result.ok());
  REQUIRE(result->last);
  CHECK(result->last->epoch == 4);
  CHECK(result->last->examples == 3000);
  CHECK(*result->last->test_accuracy > 0.9);
  CHECK(std::filesystem::exists(result->npz_path));
  auto model = ReadCheckpointFile(result->model_path);
  REQUIRE(model.ok());
  CHECK(model->epochs_done == 4);
  CHECK(model->state.step == 24);
  CHECK(model->model_type == "softmax");
  // One process: its peak memory is reported once, as the master's, with no worker figures.
  CHECK(result->last->peak_rss.workers_in_process);
  CHECK(result->last->peak_rss.master_bytes > (1 << 20));
  CHECK(result->last->peak_rss.workers.empty());
}

TEST_CASE("final model is byte-identical across shuffle modes, reducers and threads", "[runtime]") {
  SyntheticFiles files;
  const std::string base = SoftmaxSpec(files.train, files.test, files.dir.File("a"));
  REQUIRE(Train(base, {}).ok());
  const std::string reference = TempDir::Read(files.dir.File("a/model.mrt"));
  REQUIRE(reference.size() > 500);
  struct Variant {
    const char* name;
    std::vector<std::string> overrides;
  };
  std::vector<Variant> variants = {
      {"sort, 1 reducer", {"shuffle.mode=sort"}},
      {"hash, 3 reducers", {"shuffle.reducers=3"}},
      {"sort, 3 reducers, 1 thread",
       {"shuffle.mode=sort", "shuffle.reducers=3", "training.threads=1"}},
      {"hash, 7 reducers, 3 threads", {"shuffle.reducers=7", "training.threads=3"}},
  };
  for (const auto& v : variants) {
    INFO(v.name);
    std::vector<std::string> overrides = v.overrides;
    overrides.push_back("output.dir=" + files.dir.File(v.name));
    REQUIRE(Train(base, overrides).ok());
    CHECK(TempDir::Read(files.dir.File(std::string(v.name) + "/model.mrt")) == reference);
  }
  // A different seed must change the bytes, or the comparison above proves nothing.
  REQUIRE(Train(base, {"training.seed=4", "output.dir=" + files.dir.File("seed4")}).ok());
  CHECK(TempDir::Read(files.dir.File("seed4/model.mrt")) != reference);
}

TEST_CASE("map output spilled past shuffle.buffer_bytes trains to the same model bytes",
          "[runtime]") {
  SyntheticFiles files;
  const std::string yaml = SoftmaxSpec(files.train, files.test, files.dir.File("memory"));
  // 100 rows per task in chunks of 10: each task emits every block of W (12x4, 3 blocks of 16
  // floats) and b (4 floats) ten times, summed by the combiner in emission order.
  const std::vector<std::string> chunks = {"training.chunk_rows=10", "training.epochs=2"};
  REQUIRE(Train(yaml, chunks).ok());
  const std::string reference = TempDir::Read(files.dir.File("memory/model.mrt"));
  REQUIRE(reference.size() > 300);
  for (const char* mode : {"hash", "sort"}) {
    INFO(mode);
    const std::string spill_dir = files.dir.File(std::string("spill-") + mode);
    std::vector<std::string> overrides = chunks;
    overrides.push_back(std::string("shuffle.mode=") + mode);
    overrides.push_back("shuffle.reducers=2");
    overrides.push_back("shuffle.buffer_bytes=200");  // just short of the task's 208 bytes
    overrides.push_back("output.dir=" + files.dir.File(mode));
    CapturedLog log("worker");
    REQUIRE(Train(yaml, overrides, false, spill_dir).ok());
    CHECK(TempDir::Read(files.dir.File(std::string(mode) + "/model.mrt")) == reference);
    // The first spilling task (local mode: one task over all 5 partitions) says so, with its
    // run count: at least 4.
    std::smatch m;
    const std::string text = log.text();
    REQUIRE(std::regex_search(text, m,
                              std::regex(R"(map task of epoch \d+ round \d+ over )"
                                         R"(partitions \[0, 5\) spilled (\d+) )"
                                         R"(runs \((\d+) bytes\) past )"
                                         R"(shuffle.buffer_bytes=200)")));
    CHECK(std::stoi(m[1]) >= 4);
    // Every run file, and the job's spill folder, is gone.
    REQUIRE(std::filesystem::exists(spill_dir));
    CHECK(std::filesystem::is_empty(spill_dir));
  }
}

TEST_CASE("resume after a crash ends with the same bytes as an uninterrupted run", "[runtime]") {
  SyntheticFiles files;
  const std::string out = files.dir.File("out");
  const std::string yaml = SoftmaxSpec(files.train, files.test, out);
  REQUIRE(Train(yaml, {}).ok());
  const std::string reference = TempDir::Read(out + "/model.mrt");
  // Simulate a crash after epoch 2 committed: later checkpoints and the model never happened.
  namespace fs = std::filesystem;
  fs::remove(out + "/model.mrt");
  fs::remove(out + "/model.npz");
  fs::remove(out + "/checkpoints/ckpt-000003.manifest");
  fs::remove(out + "/checkpoints/ckpt-000004.manifest");
  auto resumed = Train(yaml, {}, /*resume=*/true);
  REQUIRE(resumed.ok());
  CHECK(TempDir::Read(out + "/model.mrt") == reference);
  // metrics.jsonl holds each epoch once.
  std::string metrics = TempDir::Read(out + "/metrics.jsonl");
  CHECK(std::count(metrics.begin(), metrics.end(), '\n') == 4);

  SECTION("a spec with other hyperparameters refuses to resume") {
    auto other = Train(yaml, {"update.learning_rate=0.01"}, /*resume=*/true);
    REQUIRE_FALSE(other.ok());
    CHECK(other.status().message().find("different job spec") != std::string::npos);
  }
}

TEST_CASE("model averaging trains and stays deterministic across reducers", "[runtime]") {
  SyntheticFiles files;
  const std::string yaml = SoftmaxSpec(files.train, files.test, files.dir.File("avg1"));
  std::vector<std::string> avg = {
      "training.mode=model_averaging", "update.rule=average",
      "update.learning_rate=1",        "training.local_learning_rate=0.5",
      "training.local_batch_size=20",  "training.rounds_per_epoch=2"};
  auto one = Train(yaml, avg);
  REQUIRE(one.ok());
  CHECK(*one->last->test_accuracy > 0.85);
  auto three_overrides = avg;
  three_overrides.push_back("shuffle.reducers=3");
  three_overrides.push_back("output.dir=" + files.dir.File("avg3"));
  REQUIRE(Train(yaml, three_overrides).ok());
  CHECK(TempDir::Read(files.dir.File("avg1/model.mrt")) ==
        TempDir::Read(files.dir.File("avg3/model.mrt")));
}

TEST_CASE("bad records fail the job naming file and line, or are skipped and counted",
          "[runtime]") {
  SyntheticFiles files;
  std::string text = TempDir::Read(files.train);
  size_t at = 0;
  for (int i = 0; i < 9; ++i) at = text.find('\n', at) + 1;
  text.insert(at, "1,2,oops\n");  // becomes line 10
  const std::string bad = files.dir.Write("bad.csv", text);
  const std::string yaml = SoftmaxSpec(bad, files.test, files.dir.File("bad"));
  auto failed = Train(yaml, {});
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.status().message().find("bad.csv:10") != std::string::npos);
  auto skipped = Train(yaml, {"data.train.on_bad_record=skip", "training.epochs=1"});
  REQUIRE(skipped.ok());
  CHECK(skipped->last->skipped_records == 1);
  CHECK(skipped->last->examples == 3000);
}

TEST_CASE("skipping more than max_skipped_fraction fails the job; bad labels are bad records",
          "[runtime]") {
  SyntheticFiles files;
  // A malformed first row, then 40 more bad rows among the 3000: 41 of 3041 is over 1%.
  std::string text = "1,2\n" + TempDir::Read(files.train);
  for (int i = 0; i < 40; ++i) text += "1,2,oops\n";
  const std::string bad = files.dir.Write("bad.csv", text);
  const std::string yaml = SoftmaxSpec(bad, files.test, files.dir.File("bad"));
  auto failed = Train(yaml, {"data.train.on_bad_record=skip", "training.epochs=1"});
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.status().message().find("data.train: 41 of 3041 records were bad and skipped, "
                                       "more than max_skipped_fraction 0.01 allows (the first: " +
                                       bad + ":1: expected 13 columns, got 2)") !=
        std::string::npos);
  auto allowed = Train(yaml, {"data.train.on_bad_record=skip", "training.epochs=1",
                              "data.train.max_skipped_fraction=0.02"});
  REQUIRE(allowed.ok());
  CHECK(allowed->last->skipped_records == 41);
  CHECK(allowed->last->examples == 3000);

  // A label of 4 with model.classes 4: named by file and line, not by the model.
  const std::string labels =
      files.dir.Write("labels.csv", "4" + TempDir::Read(files.train).substr(1));
  auto wrong = Train(SoftmaxSpec(labels, files.test, files.dir.File("labels")),
                     {"model.classes=4", "training.epochs=1"});
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.status().message().find(labels + ":1: label 4: expected a whole number in [0, 4) "
                                               "(model.classes is 4)") != std::string::npos);
}

TEST_CASE("a task failing every attempt fails the job after max_attempts, naming the cause",
          "[runtime]") {
  SyntheticFiles files;
  // Logistic regression on 4-class labels: the reader rejects a label 2 (a bad record) on every
  // attempt to load its partition, naming the file and line.
  const std::string yaml = SoftmaxSpec(files.train, files.test, files.dir.File("retry"));
  auto failed = Train(yaml, {"model.type=logistic", "training.max_attempts=3"});
  REQUIRE_FALSE(failed.ok());
  INFO(failed.status().ToString());
  CHECK(failed.status().code() == StatusCode::kCorruption);
  const std::string& m = failed.status().message();
  CHECK(m.find("failed 3 times") != std::string::npos);
  CHECK(m.find("attempt 2") != std::string::npos);
  CHECK(m.find(files.train + ":") != std::string::npos);
  // Label 2 or 3, in whichever partition failed last.
  CHECK(m.find(": expected 0 or 1 (-1 reads as 0) (model.type is logistic)") != std::string::npos);
}

}  // namespace
}  // namespace mrtrain::runtime
