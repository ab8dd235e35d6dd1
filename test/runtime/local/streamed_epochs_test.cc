// data.*.cache: disk with a memory budget smaller than the data: partitions are dropped and
// read again every round, from text or from shards, and the model's bytes do not change.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/data/shard_converter.h"
#include "jobs/spec/job_spec.h"
#include "runtime/local/local_job.h"
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

std::string Train(const TempDir& dir, const std::string& yaml, const std::string& name,
                  std::vector<std::string> overrides, size_t budget_bytes) {
  overrides.push_back("output.dir=" + dir.File(name));
  const jobs::JobSpec spec = Parse(yaml, overrides);
  LocalRunOptions options;
  options.memory_budget_bytes = budget_bytes;
  auto result = RunLocalJob(spec, options, nullptr);
  INFO((result.ok() ? "" : result.status().message()));
  REQUIRE(result.ok());
  return TempDir::Read(dir.File(name + "/model.mrt"));
}

const std::vector<std::string> kDisk = {"data.train.cache=disk", "data.test.cache=disk"};

// The data: 1500 rows of 10 dense features in 5 train partitions of about 13 KB decoded each
// (65 KB in all), and 2 test partitions of about 33 KB.
std::string WriteJob(const TempDir& dir) {
  tools::SyntheticSpec s;
  s.task = tools::SyntheticSpec::Task::kMulticlass;
  s.classes = 3;
  s.features = 10;
  s.rows = 1500;
  s.seed = 5;
  REQUIRE(tools::WriteSyntheticCsv(dir.File("train.csv"), s).ok());
  return "data:\n"
         "  train: {path: " +
         dir.File("train.csv") +
         ", format: csv, partitions: 5}\n"
         "  test: {path: " +
         dir.File("train.csv") +
         ", format: csv, partitions: 2}\n"
         "model: {type: softmax, block_size: 16}\n"
         "update: {rule: adam, learning_rate: 0.1}\n"
         "training: {epochs: 3, rounds_per_epoch: 4, seed: 3, threads: 2}\n";
}

TEST_CASE("cache: disk on csv with a budget below the data writes the model of cache: memory",
          "[runtime]") {
  TempDir dir;
  const std::string yaml = WriteJob(dir);
  const std::string reference = Train(dir, yaml, "memory", {}, 0);
  REQUIRE(reference.size() > 200);
  // 40 KB shared by two sets: about one idle train partition of five, so every round re-reads
  // most partitions and reads the next one ahead.
  CHECK(Train(dir, yaml, "disk40k", kDisk, 40000) == reference);
  // No idle partition at all: every task reads its partition again; nothing fits to read ahead.
  CHECK(Train(dir, yaml, "disk0", kDisk, 0) == reference);
}

TEST_CASE("cache: disk on shards with a budget below the data writes the model of cache: memory",
          "[runtime]") {
  TempDir dir;
  const std::string yaml = WriteJob(dir);
  const std::string reference = Train(dir, yaml, "memory", {}, 0);
  const jobs::JobSpec text = Parse(yaml, {"output.dir=" + dir.File("unused")});
  for (const char* set : {"train", "test"}) {
    data::ConvertOptions options;
    options.threads = 2;
    const data::DatasetSpec& source = std::string(set) == "train" ? text.train : *text.test;
    auto summary = data::ConvertToShards(source, dir.File(std::string(set) + "-shards"), options);
    INFO((summary.ok() ? "" : summary.status().message()));
    REQUIRE(summary.ok());
  }
  std::vector<std::string> shards = kDisk;
  for (const char* set : {"train", "test"}) {
    shards.push_back(std::string("data.") + set + ".format=shards");
    shards.push_back(std::string("data.") + set +
                     ".path=" + dir.File(std::string(set) + "-shards"));
  }
  CHECK(Train(dir, yaml, "shards40k", shards, 40000) == reference);
  CHECK(Train(dir, yaml, "shards0", shards, 0) == reference);
}

}  // namespace
}  // namespace mrtrain::runtime
