#include "engine/data/partition_data.h"

#include <memory>
#include <vector>

#include <catch2/catch.hpp>

namespace mrtrain::data {
namespace {

PartitionData DenseRows() {
  PartitionData d;
  d.num_rows = 3;
  d.num_cols = 2;
  d.dense = {1, 2, 3, 4, 5, 6};
  d.labels = {10, 20, 30};
  return d;
}

// Rows: {0: 1.5}, {}, {1: 2.5, 4: 3.5}
PartitionData SparseRows() {
  PartitionData d;
  d.num_rows = 3;
  d.num_cols = 5;
  d.is_sparse = true;
  d.row_offsets = {0, 1, 1, 3};
  d.cols = {0, 1, 4};
  d.values = {1.5f, 2.5f, 3.5f};
  d.labels = {-1, 1, 1};
  return d;
}

TEST_CASE("a dense view points at the rows and labels", "[data]") {
  PartitionData d = DenseRows();
  api::Rows rows = d.View(2);
  CHECK(rows.num_rows == 3);
  CHECK(rows.num_cols == 2);
  CHECK_FALSE(rows.is_sparse);
  CHECK(rows.dense == d.dense.data());
  CHECK(rows.labels == d.labels.data());
  CHECK(rows.row_offsets == nullptr);
}

TEST_CASE("a sparse view reports the dataset-wide width", "[data]") {
  PartitionData d = SparseRows();
  api::Rows rows = d.View(100);
  CHECK(rows.num_cols == 100);
  CHECK(rows.is_sparse);
  CHECK(rows.row_offsets == d.row_offsets.data());
  CHECK(rows.cols == d.cols.data());
  CHECK(rows.values == d.values.data());
  CHECK(rows.dense == nullptr);
}

TEST_CASE("gather copies dense rows in the order given, repeats allowed", "[data]") {
  PartitionData d = DenseRows();
  d.skipped_records = 4;
  d.skipped_samples = {"x"};
  PartitionData out;
  out.dense = {99};
  const int64_t idx[] = {2, 0, 2};
  d.Gather(idx, 3, &out);
  CHECK(out.num_rows == 3);
  CHECK(out.num_cols == 2);
  CHECK(out.dense == std::vector<float>{5, 6, 1, 2, 5, 6});
  CHECK(out.labels == std::vector<float>{30, 10, 30});
  CHECK(out.skipped_records == 0);
  CHECK(out.skipped_samples.empty());
}

TEST_CASE("gather rebuilds csr offsets for sparse rows", "[data]") {
  PartitionData d = SparseRows();
  PartitionData out;
  const int64_t idx[] = {2, 1, 0};
  d.Gather(idx, 3, &out);
  CHECK(out.is_sparse);
  CHECK(out.num_cols == 5);
  CHECK(out.row_offsets == std::vector<int64_t>{0, 2, 2, 3});
  CHECK(out.cols == std::vector<uint32_t>{1, 4, 0});
  CHECK(out.values == std::vector<float>{2.5f, 3.5f, 1.5f});
  CHECK(out.labels == std::vector<float>{1, 1, -1});
}

// `owner`'s arrays lent to a partition that owns none, as a mapped shard lends its sections.
PartitionData BorrowFrom(const std::shared_ptr<const PartitionData>& owner) {
  PartitionData d;
  d.num_rows = owner->num_rows;
  d.num_cols = owner->num_cols;
  d.is_sparse = owner->is_sparse;
  PartitionData::Borrowed b;
  b.labels = owner->labels.data();
  b.dense = owner->dense.data();
  b.row_offsets = owner->row_offsets.data();
  b.cols = owner->cols.data();
  b.values = owner->values.data();
  b.bytes = 1000;
  b.lease = owner;
  d.borrowed = std::move(b);
  return d;
}

TEST_CASE("a partition with borrowed arrays views and gathers them as owned ones", "[data]") {
  auto dense = std::make_shared<const PartitionData>(DenseRows());
  auto sparse = std::make_shared<const PartitionData>(SparseRows());
  const PartitionData d = BorrowFrom(dense);
  const PartitionData s = BorrowFrom(sparse);
  CHECK(d.View(2).dense == dense->dense.data());
  CHECK(d.View(2).labels == dense->labels.data());
  CHECK(s.View(7).cols == sparse->cols.data());
  CHECK(s.View(7).row_offsets == sparse->row_offsets.data());
  const int64_t order[] = {2, 0};
  PartitionData out, expected;
  s.Gather(order, 2, &out);
  sparse->Gather(order, 2, &expected);
  CHECK(out.row_offsets == expected.row_offsets);
  CHECK(out.cols == expected.cols);
  CHECK(out.values == expected.values);
  CHECK(out.labels == expected.labels);
  CHECK_FALSE(out.borrowed.has_value());  // a gathered copy owns its rows
  d.Gather(order, 2, &out);
  CHECK(out.dense == std::vector<float>{5, 6, 1, 2});
  CHECK(out.labels == std::vector<float>{30, 10});
  // The lent bytes count: a partition's rows are resident while it is held, wherever they lie.
  CHECK(d.MemoryBytes() == PartitionData().MemoryBytes() + 1000);
}

TEST_CASE("row sources find a row's run and its distance from the run's start", "[data]") {
  RowSources sources;
  sources.files = {"a.csv", "b.csv"};
  sources.runs = {{0, 10, 0}, {3, 50, 0}, {5, 0, 1}};  // first_row, start, file
  CHECK_FALSE(RowSources().Find(0).has_value());
  auto at = sources.Find(2);
  REQUIRE(at.has_value());
  CHECK((at->file == 0 && at->run_start == 10 && at->after == 2));
  at = sources.Find(3);
  CHECK((at->file == 0 && at->run_start == 50 && at->after == 0));
  at = sources.Find(9);
  CHECK((at->file == 1 && at->run_start == 0 && at->after == 4));

  PartitionData d = DenseRows();
  const int64_t before = d.MemoryBytes();
  d.sources = sources;
  CHECK(d.MemoryBytes() >= before + 3 * static_cast<int64_t>(sizeof(RowSources::Run)));
}

TEST_CASE("memory bytes counts every array", "[data]") {
  PartitionData empty;
  PartitionData d = DenseRows();
  CHECK(d.MemoryBytes() >= empty.MemoryBytes() + 9 * static_cast<int64_t>(sizeof(float)));
  PartitionData s = SparseRows();
  CHECK(s.MemoryBytes() >= empty.MemoryBytes() + 4 * 8 + 3 * 4 + 3 * 4 + 3 * 4);
}

}  // namespace
}  // namespace mrtrain::data
