#include "engine/models/row_gradient.h"

#include <vector>

#include <catch2/catch.hpp>

#include "test/engine/models/collecting_sink.h"

namespace mrtrain::models {
namespace {

TEST_CASE("row gradient sums rows by id and sends the blocks they fall in", "[engine][models]") {
  const std::vector<api::TensorSpec> specs = {{"v", {100, 3}, api::TensorSpec::Role::kWeight}};
  RowGradient rows;
  rows.Resize(100, 3);
  rows.Row(40)[1] += 2.0f;
  rows.Row(2)[0] += 1.0f;
  rows.Row(40)[1] += 0.5f;  // summed with the first
  rows.Row(41)[2] += -1.0f;
  CHECK(rows.touched_rows() == std::vector<uint32_t>{40, 2, 41});

  // Blocks of 8 floats: row 2 is floats 6-8 (blocks 0 and 1), rows 40 and 41 floats 120-125
  // (block 15).
  CollectingSink sink(specs, /*block_size=*/8);
  rows.Emit(0, sink);
  CHECK(sink.bad_blocks() == 0);
  CHECK(sink.block_calls() == 3);
  CHECK(sink.tensor_calls() == 0);
  std::vector<float> expected(300, 0.0f);
  expected[6] = 1.0f;
  expected[121] = 2.5f;
  expected[125] = -1.0f;
  CHECK(sink.gradient(0) == expected);

  // Emit forgets: nothing touched, nothing sent; a row starts from zero again.
  CHECK(rows.touched_rows().empty());
  rows.Emit(0, sink);
  CHECK(sink.block_calls() == 3);
  CHECK(rows.Row(40)[1] == 0.0f);
}

TEST_CASE("row gradient sends the whole tensor when most rows are touched", "[engine][models]") {
  const std::vector<api::TensorSpec> specs = {{"w", {4}, api::TensorSpec::Role::kWeight}};
  RowGradient rows;
  rows.Resize(4, 1);
  for (uint32_t r : {3u, 0u, 1u}) rows.Row(r)[0] += static_cast<float>(r + 1);
  CollectingSink sink(specs, /*block_size=*/2);
  rows.Emit(0, sink);
  CHECK(sink.tensor_calls() == 1);
  CHECK(sink.block_calls() == 0);
  CHECK(sink.gradient(0) == std::vector<float>{1, 2, 0, 4});
}

TEST_CASE("row gradient of a row-sparse tensor sends its rows ascending, holding only them",
          "[engine][models]") {
  const std::vector<api::TensorSpec> specs = {
      {"v", {int64_t{1} << 31, 2}, api::TensorSpec::Role::kWeight, /*row_sparse=*/true}};
  RowGradient rows;
  rows.Resize(int64_t{1} << 31, 2, /*row_sparse=*/true);  // allocates nothing of that size
  rows.Row(2000000000)[1] += 2.0f;
  rows.Row(5)[0] += 1.0f;
  rows.Row(2000000000)[1] += 0.5f;
  CollectingSink sink(specs);
  rows.Emit(0, sink);
  CHECK(sink.row_calls() == 2);
  CHECK(sink.tensor_calls() + sink.block_calls() == 0);
  CHECK(sink.row_order() == std::vector<std::pair<int, int64_t>>{{0, 5}, {0, 2000000000}});
  CHECK(sink.rows(0).at(5) == std::vector<float>{1.0f, 0.0f});
  CHECK(sink.rows(0).at(2000000000) == std::vector<float>{0.0f, 2.5f});
  rows.Emit(0, sink);  // forgot them
  CHECK(sink.row_calls() == 2);
}

}  // namespace
}  // namespace mrtrain::models
