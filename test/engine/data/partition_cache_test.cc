#include "engine/data/partition_cache.h"

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "test/engine/data/shard_test_files.h"
#include "test/testing/temp_dir.h"

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

TEST_CASE("a partition let go past the budget stops counting at once", "[data]") {
  const int64_t one = PartitionBytes(100);
  CountingDataset dataset(3, 0, 100);
  PartitionCache cache(&dataset, one);  // room for one idle partition
  auto a = cache.Get(0);
  auto b = cache.Get(1);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(cache.ResidentBytes() == 2 * one);  // both in use
  *a = nullptr;                             // idle, within the budget: kept
  CHECK(cache.ResidentBytes() == 2 * one);
  *b = nullptr;  // idle too: the least recently used goes now, not at the next Get
  CHECK(cache.ResidentBytes() == one);
  REQUIRE(cache.Get(1).ok());  // the one kept
  CHECK(dataset.loads(1) == 1);
  REQUIRE(cache.Get(0).ok());  // the one dropped
  CHECK(dataset.loads(0) == 2);
}

TEST_CASE("tasks on many threads leave at most the budget resident when they let go", "[data]") {
  const int64_t one = PartitionBytes(100);
  CountingDataset dataset(6, 0, 100);
  PartitionCache cache(&dataset, 2 * one);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, &wrong, t] {
      for (int i = 0; i < 300; ++i) {
        const int64_t p = (i * 7 + t * 3) % 6;
        auto part = cache.Get(p);
        if (!part.ok() || (*part)->dense.front() != static_cast<float>(p * 1000)) ++wrong;
        cache.PrefetchAfter(p);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(wrong == 0);
  // Nothing is held: what stays is idle, within the budget (a read ahead may still land, and
  // it must fit too).
  CHECK(cache.ResidentBytes() <= 2 * one);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(cache.ResidentBytes() <= 2 * one);
}

TEST_CASE("a partition may outlive its cache", "[data]") {
  CountingDataset dataset(1, 0, 3);
  std::shared_ptr<const PartitionData> kept;
  {
    PartitionCache cache(&dataset, 0);
    auto part = cache.Get(0);
    REQUIRE(part.ok());
    kept = *part;
  }
  CHECK(kept->dense == std::vector<float>{0, 1, 2});
  kept.reset();  // lets go of it without the cache
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

// Whether this process maps `file` (a line of /proc/self/maps ends with its path).
bool Mapped(const std::string& file) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.size() >= file.size() &&
        line.compare(line.size() - file.size(), file.size(), file) == 0) {
      return true;
    }
  }
  return false;
}

TEST_CASE("a bounded cache serves shards in place and unmaps a partition it lets go", "[data]") {
  testing::TempDir dir;
  const DatasetSpec shards = ConvertForTest(SmallLibsvmForTest(dir.path(), 40, 2), dir.File("s"));
  const std::string file = dir.File("s/part-00000.mrs");
  auto dataset = Dataset::Open(shards);
  REQUIRE(dataset.ok());
  CHECK_FALSE(Mapped(file));                // opening the set read the headers only
  PartitionCache cache(dataset->get(), 0);  // nothing idle stays
  auto part = cache.Get(0);
  REQUIRE(part.ok());
  REQUIRE((*part)->borrowed.has_value());
  CHECK((*part)->values.empty());  // nothing copied
  CHECK(Mapped(file));
  // The mapped arrays count as if copied: what a task touches is resident.
  CHECK(cache.ResidentBytes() == (*part)->MemoryBytes());
  CHECK((*part)->MemoryBytes() > (*part)->borrowed->bytes);
  *part = nullptr;
  CHECK_FALSE(Mapped(file));
  CHECK(cache.ResidentBytes() == 0);
}

TEST_CASE("an unbounded cache keeps shard partitions as copies", "[data]") {
  testing::TempDir dir;
  const DatasetSpec shards = ConvertForTest(SmallLibsvmForTest(dir.path(), 40, 2), dir.File("s"));
  auto dataset = Dataset::Open(shards);
  REQUIRE(dataset.ok());
  PartitionCache cache(dataset->get());
  auto part = cache.Get(1);
  REQUIRE(part.ok());
  CHECK_FALSE((*part)->borrowed.has_value());
  CHECK_FALSE((*part)->values.empty());
  CHECK_FALSE(Mapped(dir.File("s/part-00001.mrs")));
}

}  // namespace
}  // namespace mrtrain::data
