#include "runtime/worker/map_task.h"

#include <set>

#include <catch2/catch.hpp>

#include "engine/tensor/model_state.h"
#include "test/runtime/worker/sum_mapper.h"

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

}  // namespace
}  // namespace mrtrain::runtime
