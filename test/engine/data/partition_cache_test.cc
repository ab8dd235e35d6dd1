#include "engine/data/partition_cache.h"

#include <atomic>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

namespace mrtrain::data {
namespace {

// A dataset whose partition p is one row labelled p, counting loads and failing the first
// `failures` loads of every partition on demand.
class CountingDataset : public Dataset {
 public:
  CountingDataset(int64_t parts, int failures)
      : Dataset(MakeSpec(parts), {"counting"}), loads_(parts), failures_(failures) {}

  Result<PartitionData> LoadPartition(int64_t p) const override {
    const int n = ++loads_[p];
    if (n <= failures_) return CorruptionError("counting:" + std::to_string(p) + ": flaky");
    PartitionData data;
    data.num_rows = 1;
    data.num_cols = 1;
    data.dense = {static_cast<float>(p)};
    data.labels = {static_cast<float>(p)};
    return data;
  }

  std::string DescribePartition(int64_t p) const override {
    return "counting partition " + std::to_string(p);
  }

  int loads(int64_t p) const { return loads_[p].load(); }

 private:
  static DatasetSpec MakeSpec(int64_t parts) {
    DatasetSpec spec;
    spec.path = "counting";
    spec.num_partitions = parts;
    return spec;
  }

  mutable std::vector<std::atomic<int>> loads_;
  int failures_;
};

TEST_CASE("the cache parses each partition once across epochs", "[data]") {
  CountingDataset dataset(3, 0);
  PartitionCache cache(&dataset);
  for (int epoch = 0; epoch < 4; ++epoch) {
    for (int64_t p = 0; p < 3; ++p) {
      auto part = cache.Get(p);
      REQUIRE(part.ok());
      CHECK((*part)->labels == std::vector<float>{static_cast<float>(p)});
    }
  }
  for (int64_t p = 0; p < 3; ++p) CHECK(dataset.loads(p) == 1);
  auto a = cache.Get(1);
  auto b = cache.Get(1);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->get() == b->get());
}

TEST_CASE("concurrent gets of one partition parse it once", "[data]") {
  CountingDataset dataset(2, 0);
  PartitionCache cache(&dataset);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&cache, &ok, t] {
      if (cache.Get(t % 2).ok()) ++ok;
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(ok == 8);
  CHECK(dataset.loads(0) == 1);
  CHECK(dataset.loads(1) == 1);
}

TEST_CASE("the cache does not keep errors", "[data]") {
  CountingDataset dataset(1, 1);
  PartitionCache cache(&dataset);
  auto first = cache.Get(0);
  REQUIRE_FALSE(first.ok());
  CHECK(first.status().message() == "counting:0: flaky");
  auto second = cache.Get(0);
  REQUIRE(second.ok());
  CHECK(dataset.loads(0) == 2);
}

TEST_CASE("the cache rejects partitions out of range", "[data]") {
  CountingDataset dataset(2, 0);
  PartitionCache cache(&dataset);
  CHECK(cache.Get(2).status().code() == StatusCode::kInvalidArgument);
  CHECK(cache.Get(-1).status().code() == StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mrtrain::data
