#include "runtime/worker/map_task.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/data/dataset.h"
#include "engine/tensor/model_state.h"
#include "test/runtime/worker/sum_mapper.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::runtime {
namespace {

// 10 rows of 2 features: row i is (i, 100 + i), label i.
data::PartitionData TenRows() {
  data::PartitionData p;
  p.num_rows = 10;
  p.num_cols = 2;
  for (int i = 0; i < 10; ++i) {
    p.dense.push_back(static_cast<float>(i));
    p.dense.push_back(static_cast<float>(100 + i));
    p.labels.push_back(static_cast<float>(i));
  }
  return p;
}

struct Fixture {
  SumMapper mapper;
  std::shared_ptr<ModelLayout> layout;
  ModelState state;
  MapTaskConfig config;
  shuffle::HashPartitioner partitioner{1};
  RowOrderCache orders{7};

  Fixture() {
    layout = std::make_shared<ModelLayout>(
        ModelLayout::Create(mapper.DescribeModel(api::DataShape{2, 0, false}), 16).value());
    state = ModelState::Zeros(layout, 0);
    config.layout = layout.get();
    config.num_features = 2;
    config.rounds_per_epoch = 3;
    config.chunk_rows = 2;
    config.seed = 7;
  }

  Result<MapTaskOutput> Run(int64_t epoch, int64_t round, const data::PartitionData& p) {
    return RunMapTask(config, TaskId{epoch, round, 0, 0}, p, state.View(), mapper, partitioner,
                      orders);
  }
};

TEST_CASE("an epoch's rounds visit every row of the partition exactly once", "[runtime]") {
  Fixture f;
  data::PartitionData p = TenRows();
  float total_first = 0, total_rows = 0;
  std::vector<int64_t> sizes;
  for (int64_t round = 0; round < 3; ++round) {
    auto out = f.Run(0, round, p);
    REQUIRE(out.ok());
    REQUIRE(out->runs.size() == 1);
    const auto& run = out->runs[0];
    REQUIRE(run.num_keys() == 2);
    total_first += run.ValuesOf(0)[0];  // sum of feature 0 = sum of row ids in the slice
    total_rows += run.ValuesOf(1)[0];
    sizes.push_back(out->stats.examples);
  }
  CHECK(total_first == 45.0f);  // 0 + 1 + ... + 9
  CHECK(total_rows == 10.0f);
  CHECK(sizes == std::vector<int64_t>{3, 3, 4});
}

TEST_CASE("a map task past buffer_bytes spills and returns the runs it would in memory",
          "[runtime]") {
  Fixture f;
  f.config.rounds_per_epoch = 1;  // 10 rows, 5 mapper calls of 2 rows
  data::PartitionData p = TenRows();
  auto memory = f.Run(0, 0, p);
  REQUIRE(memory.ok());
  CHECK(memory->spilled_runs == 0);
  testing::TempDir dir;
  f.config.buffer_bytes = 8;  // w (2 floats) or b, not both
  f.config.spill_dir = dir.File("spill");
  auto spilled = f.Run(0, 0, p);
  REQUIRE(spilled.ok());
  CHECK(spilled->spilled_runs >= 4);
  CHECK(spilled->spilled_bytes > 0);
  REQUIRE(spilled->runs.size() == 1);
  CHECK(spilled->runs[0].keys == memory->runs[0].keys);
  CHECK(spilled->runs[0].values == memory->runs[0].values);
  CHECK(spilled->stats.examples == 10);
  CHECK(std::filesystem::is_empty(dir.File("spill")));

  SECTION("a spill folder that cannot be made fails the task, not the mapper") {
    f.config.spill_dir = dir.Write("file", "x") + "/spill";
    auto failed = f.Run(0, 0, p);
    REQUIRE_FALSE(failed.ok());
    CHECK(failed.status().code() == StatusCode::kIOError);
    CHECK(failed.status().message().find("map task (epoch 0, round 0, partition 0, attempt 0): "
                                         "cannot create spill folder " +
                                         f.config.spill_dir) == 0);
  }
}

TEST_CASE("row order depends on seed, epoch and partition only", "[runtime]") {
  auto a = EpochRowOrder(7, 0, 0, 100);
  CHECK(a == EpochRowOrder(7, 0, 0, 100));
  CHECK(a != EpochRowOrder(7, 1, 0, 100));
  CHECK(a != EpochRowOrder(7, 0, 1, 100));
  CHECK(a != EpochRowOrder(8, 0, 0, 100));
  std::set<int64_t> seen(a.begin(), a.end());
  CHECK(seen.size() == 100);
}

TEST_CASE("the combiner sums the mapper's chunk calls into one value per key", "[runtime]") {
  Fixture f;
  f.config.rounds_per_epoch = 1;
  data::PartitionData p = TenRows();
  auto out = f.Run(0, 0, p);
  REQUIRE(out.ok());
  CHECK(f.mapper.gradient_calls == 5);  // 10 rows in chunks of 2
  CHECK(out->runs[0].num_keys() == 2);
  CHECK(out->runs[0].ValuesOf(0)[1] == 1045.0f);  // sum of 100 + i
}

TEST_CASE("a throwing mapper fails the task with its message and the task id", "[runtime]") {
  Fixture f;
  f.mapper.throw_in_gradient = true;
  data::PartitionData p = TenRows();
  auto out = RunMapTask(f.config, TaskId{2, 1, 4, 3}, p, f.state.View(), f.mapper, f.partitioner,
                        f.orders);
  REQUIRE_FALSE(out.ok());
  CHECK(out.status().code() == StatusCode::kPluginError);
  CHECK(out.status().message().find("bad record near row 7") != std::string::npos);
  // Rows built in memory have no file to name: the message names the partition row.
  CHECK(out.status().message().find("mapper threw on row ") != std::string::npos);
  CHECK(out.status().message().find("epoch 2, round 1, partition 4, attempt 3") !=
        std::string::npos);
}

TEST_CASE("emitting a tensor the model does not have fails the task", "[runtime]") {
  Fixture f;
  f.mapper.emit_bad_tensor = true;
  data::PartitionData p = TenRows();
  auto out = f.Run(0, 0, p);
  REQUIRE_FALSE(out.ok());
  CHECK(out.status().code() == StatusCode::kPluginError);
  CHECK(out.status().message().find("unknown tensor id 5") != std::string::npos);
}

TEST_CASE("model averaging emits the row-weighted negated delta of local SGD", "[runtime]") {
  Fixture f;
  f.config.rounds_per_epoch = 1;
  f.config.model_averaging = true;
  f.config.local_learning_rate = 0.5;
  f.config.local_batch_size = 5;
  data::PartitionData p = TenRows();
  auto out = f.Run(0, 0, p);
  REQUIRE(out.ok());
  // SumMapper's gradient does not depend on params: two local batches of 5 rows each step
  // b by -0.5 * (5 / 5), so the local delta of b is -1 and the emitted value -(-1) * 10 rows.
  const auto& run = out->runs[0];
  REQUIRE(run.num_keys() == 2);
  CHECK(run.ValuesOf(1)[0] == Approx(10.0f));
  // w[0]: batches sum row ids; delta = -0.5 * (mean of batch 1 + mean of batch 2) = -0.5 * 9.
  CHECK(run.ValuesOf(0)[0] == Approx(0.5f * 9.0f * 10.0f));
}

// A one-weight model that throws on a row labelled bad_label (alone or in a chunk), or with
// only_on_chunks on any call with more than one row: a failure no single row causes.
class ThrowOnLabelMapper : public api::Mapper {
 public:
  float bad_label = -1;
  bool only_on_chunks = false;

  std::vector<api::TensorSpec> DescribeModel(const api::DataShape& /*shape*/) override {
    return {api::TensorSpec{"b", {1}, api::TensorSpec::Role::kBias}};
  }
  void Gradient(const api::MapContext& /*ctx*/, const api::Rows& rows,
                const api::ParamsView& /*params*/, api::GradientSink& sink,
                api::MapStats& stats) override {
    Check(rows);
    const float b = static_cast<float>(rows.num_rows);
    sink.AddTensor(0, &b, 1);
    stats.examples += rows.num_rows;
  }
  void Evaluate(const api::Rows& rows, const api::ParamsView& /*params*/,
                api::MapStats& stats) override {
    Check(rows);
    stats.examples += rows.num_rows;
  }
  int NumOutputs() const override { return 1; }
  void Predict(const api::Rows& rows, const api::ParamsView& /*params*/, float* predicted,
               float* scores) override {
    for (int64_t i = 0; i < rows.num_rows; ++i) predicted[i] = scores[i] = 0;
  }

 private:
  void Check(const api::Rows& rows) const {
    if (only_on_chunks && rows.num_rows > 1) throw std::runtime_error("out of scratch space");
    for (int64_t i = 0; i < rows.num_rows; ++i) {
      if (rows.labels[i] == bad_label) {
        throw std::runtime_error("cannot learn label " + std::to_string(int(bad_label)));
      }
    }
  }
};

// Map tasks over partitions loaded from files, with a mapper that throws on one record.
struct FileFixture {
  testing::TempDir dir;
  ThrowOnLabelMapper mapper;
  std::shared_ptr<ModelLayout> layout;
  ModelState state;
  MapTaskConfig config;
  shuffle::HashPartitioner partitioner{1};
  RowOrderCache orders{7};

  FileFixture() {
    layout = std::make_shared<ModelLayout>(
        ModelLayout::Create(mapper.DescribeModel(api::DataShape{}), 4).value());
    state = ModelState::Zeros(layout, 0);
    config.layout = layout.get();
    config.mapper_name = "throw_on_label";
    config.rounds_per_epoch = 1;
    config.chunk_rows = 4;
    config.seed = 7;
  }

  // Partition p of a dataset; fails the test on an error.
  data::PartitionData Load(const data::DatasetSpec& spec, int64_t p) {
    auto dataset = data::Dataset::Open(spec);
    INFO(dataset.status().ToString());
    REQUIRE(dataset.ok());
    auto part = (*dataset)->LoadPartition(p);
    INFO(part.status().ToString());
    REQUIRE(part.ok());
    return std::move(*part);
  }

  // The error of attempt 2 of the map task for partition p in epoch 1 (rows shuffled).
  std::string Fail(const data::PartitionData& part, int64_t p) {
    config.num_features = part.num_cols;
    auto out =
        RunMapTask(config, TaskId{1, 0, p, 2}, part, state.View(), mapper, partitioner, orders);
    REQUIRE_FALSE(out.ok());
    CHECK(out.status().code() == StatusCode::kPluginError);
    return out.status().message();
  }
};

// Where a label sits in a partition.
int64_t RowOf(const data::PartitionData& part, float label) {
  auto it = std::find(part.labels.begin(), part.labels.end(), label);
  REQUIRE(it != part.labels.end());
  return it - part.labels.begin();
}

std::string BigEndian32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

TEST_CASE("a mapper throwing on one csv record names its file and line", "[runtime]") {
  FileFixture f;
  // Label i on line i + 2 up to 12; a blank line 15, inside partition 1, shifts the rest by one.
  std::string text = "label,a,b\n";
  for (int i = 0; i < 20; ++i) {
    if (i == 13) text += "\n";
    text += std::to_string(i) + "," + std::to_string(2 * i) + ",1\n";
  }
  data::DatasetSpec spec;
  spec.path = f.dir.Write("train.csv", text);
  spec.csv_header = true;
  spec.num_partitions = 2;
  const data::PartitionData part = f.Load(spec, 1);
  f.mapper.bad_label = 15;
  const std::string where = "at " + spec.path + " line 18 (row " + std::to_string(RowOf(part, 15)) +
                            " of the partition): ";
  SECTION("gradient chunks") {
    CHECK(f.Fail(part, 1) ==
          "map task (epoch 1, round 0, partition 1, attempt 2): mapper "
          "\"throw_on_label\" threw on record " +
              where + "cannot learn label 15");
  }
  SECTION("model averaging's local batches") {
    f.config.model_averaging = true;
    f.config.local_batch_size = 3;
    CHECK(f.Fail(part, 1).find("threw on record " + where) != std::string::npos);
  }
  SECTION("evaluation") {
    auto stats = EvaluatePartition(part, part.num_cols, 4, f.state.View(), f.mapper);
    REQUIRE_FALSE(stats.ok());
    CHECK(stats.status().code() == StatusCode::kPluginError);
    CHECK(stats.status().message() ==
          "evaluation failed: mapper threw on record " + where + "cannot learn label 15");
  }
}

TEST_CASE("a mapper throwing on one libsvm record names its file and line", "[runtime]") {
  FileFixture f;
  std::string text = "# exported by a tool\n# labels are record ids\n";
  for (int i = 0; i < 12; ++i)
    text += std::to_string(i) + " 1:0.5 " + std::to_string(i + 2) + ":1\n";
  data::DatasetSpec spec;
  spec.path = f.dir.Write("train.svm", text);
  spec.format = data::DataFormat::kLibsvm;
  spec.num_partitions = 3;
  const data::PartitionData part = f.Load(spec, 2);
  f.mapper.bad_label = 10;
  const std::string message = f.Fail(part, 2);
  CHECK(message.find("\"throw_on_label\" threw on record at " + spec.path + " line 13 (row " +
                     std::to_string(RowOf(part, 10)) +
                     " of the partition): cannot learn label 10") != std::string::npos);
}

TEST_CASE("a mapper throwing on one idx record names its record index", "[runtime]") {
  FileFixture f;
  std::string images = std::string{0, 0, 8, 3} + BigEndian32(6) + BigEndian32(2) + BigEndian32(2);
  std::string labels = std::string{0, 0, 8, 1} + BigEndian32(6);
  for (int i = 0; i < 6; ++i) {
    images += std::string(4, static_cast<char>(i));
    labels.push_back(static_cast<char>(i));
  }
  data::DatasetSpec spec;
  spec.path = f.dir.Write("images.idx3", images);
  spec.labels_path = f.dir.Write("labels.idx1", labels);
  spec.format = data::DataFormat::kIdx;
  spec.num_partitions = 2;  // records [0, 3) and [3, 6)
  const data::PartitionData part = f.Load(spec, 1);
  f.mapper.bad_label = 4;
  CHECK(f.Fail(part, 1).find("threw on record at " + spec.path +
                             " record index 4 (row 1 of the partition): cannot learn label 4") !=
        std::string::npos);
}

TEST_CASE("a mapper that throws on a chunk but on none of its rows alone says so", "[runtime]") {
  Fixture f;
  ThrowOnLabelMapper mapper;
  mapper.only_on_chunks = true;
  f.config.rounds_per_epoch = 1;
  f.config.chunk_rows = 4;
  data::PartitionData p = TenRows();
  auto out =
      RunMapTask(f.config, TaskId{0, 0, 0, 1}, p, f.state.View(), mapper, f.partitioner, f.orders);
  REQUIRE_FALSE(out.ok());
  CHECK(out.status().message() ==
        "map task (epoch 0, round 0, partition 0, attempt 1): mapper threw on rows [0, 4) of the "
        "round but not on any single row: out of scratch space");
}

}  // namespace
}  // namespace mrtrain::runtime
