#include "engine/data/partition_cache.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

namespace mrtrain::data {
namespace {

// A dataset whose partition p is one row labelled p, counting loads and failing the first
// `failures` loads of every partition on demand.
class CountingDataset : public Dataset {
 public:
  CountingDataset(int64_t parts, int failures, int64_t rows = 1)
      : Dataset(MakeSpec(parts), {"counting"}), loads_(parts), failures_(failures), rows_(rows) {}

  Result<PartitionData> LoadPartition(int64_t p) const override {
    const int n = ++loads_[p];
    if (n <= failures_) return CorruptionError("counting:" + std::to_string(p) + ": flaky");
    PartitionData data;
    data.num_rows = rows_;
    data.num_cols = 1;
    for (int64_t i = 0; i < rows_; ++i) {
      data.dense.push_back(static_cast<float>(p * 1000 + i));
      data.labels.push_back(static_cast<float>(p));
    }
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
  int64_t rows_;
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

// Bytes of one partition of a CountingDataset with `rows` rows, as the cache counts them.
int64_t PartitionBytes(int64_t rows) {
  CountingDataset probe(1, 0, rows);
  return probe.LoadPartition(0)->MemoryBytes();
}

TEST_CASE("a bounded cache keeps idle partitions within its budget", "[data]") {
  const int64_t one = PartitionBytes(100);
  CountingDataset dataset(5, 0, 100);
  PartitionCache cache(&dataset, 2 * one);  // room for two idle partitions of five
  std::vector<std::vector<float>> first(5);
  for (int epoch = 0; epoch < 3; ++epoch) {
    for (int64_t p = 0; p < 5; ++p) {
      auto part = cache.Get(p);
      REQUIRE(part.ok());
      // Resident: at most the budget besides the partition this caller holds.
      CHECK(cache.ResidentBytes() <= 2 * one + one);
      if (epoch == 0) {
        first[p] = (*part)->dense;
      } else {
        CHECK((*part)->dense == first[p]);  // a re-read gives the same rows in the same order
      }
    }
  }
  // A loop over five with room for two misses every time: three epochs, three loads each.
  for (int64_t p = 0; p < 5; ++p) CHECK(dataset.loads(p) == 3);
  CHECK(cache.loads() == 15);
}

TEST_CASE("a bounded cache never drops a partition a caller holds", "[data]") {
  const int64_t one = PartitionBytes(100);
  CountingDataset dataset(3, 0, 100);
  PartitionCache cache(&dataset, 0);  // nothing idle may stay
  auto held = cache.Get(0);
  REQUIRE(held.ok());
  auto other = cache.Get(1);
  REQUIRE(other.ok());
  CHECK(cache.ResidentBytes() == 2 * one);  // both in use
  other = Result<std::shared_ptr<const PartitionData>>(std::shared_ptr<const PartitionData>());
  REQUIRE(cache.Get(2).ok());  // makes room: partition 1 goes, partition 0 is held
  auto again = cache.Get(0);
  REQUIRE(again.ok());
  CHECK(again->get() == held->get());  // shared, not loaded twice
  CHECK(dataset.loads(0) == 1);
  CHECK(dataset.loads(1) == 1);
}

TEST_CASE("a bounded cache reads the next partition ahead", "[data]") {
  const int64_t one = PartitionBytes(100);
  CountingDataset dataset(4, 0, 100);
  PartitionCache cache(&dataset, 2 * one);
  for (int64_t p = 0; p < 4; ++p) REQUIRE(cache.Get(p).ok());  // learn the share and sizes
  // Partitions 2 and 3 are resident; 0 and 1 are not.
  auto held = cache.Get(0);  // a re-read
  REQUIRE(held.ok());
  CHECK(dataset.loads(0) == 2);
  cache.PrefetchAfter(0);  // partition 1, on the I/O thread
  for (int i = 0; i < 500 && dataset.loads(1) < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(dataset.loads(1) == 2);
  auto next = cache.Get(1);  // found resident: no load of its own
  REQUIRE(next.ok());
  CHECK(dataset.loads(1) == 2);
  CHECK((*next)->dense.front() == 1000);
  CHECK(cache.ResidentBytes() <= 2 * one + 2 * one);
}

TEST_CASE("a read ahead that does not fit the budget is skipped", "[data]") {
  const int64_t one = PartitionBytes(100);
  CountingDataset dataset(2, 0, 100);
  PartitionCache cache(&dataset, one / 2);
  REQUIRE(cache.Get(1).ok());  // learns partition 1's size, then drops it
  auto held = cache.Get(0);
  REQUIRE(held.ok());
  cache.PrefetchAfter(0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(dataset.loads(1) == 1);
  CHECK(cache.ResidentBytes() == one);
}

TEST_CASE("an unbounded cache reads nothing ahead", "[data]") {
  CountingDataset dataset(2, 0);
  PartitionCache cache(&dataset);
  REQUIRE(cache.Get(0).ok());
  cache.Prefetch(1);
  cache.PrefetchAfter(0);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(dataset.loads(1) == 0);
}

}  // namespace
}  // namespace mrtrain::data
