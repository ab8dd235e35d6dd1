#include "shuffle/buffer/map_output_buffer.h"

#include <catch2/catch.hpp>

#include "test/shuffle/shuffle_test_util.h"

namespace mrtrain::shuffle {
namespace {

TEST_CASE("combiner sums values of the same key within a task", "[shuffle]") {
  auto layout = TestLayout();
  HashPartitioner one(1);
  MapOutputBuffer buffer(layout.get(), &one, 1 << 20);
  std::vector<float> a(7, 1.5f), b(7, 2.0f);
  REQUIRE(buffer.Add(ParamKey(2, 0), a.data()).ok());
  REQUIRE(buffer.Add(ParamKey(2, 0), b.data()).ok());
  CHECK(buffer.num_keys() == 1);
  auto runs = buffer.Finish().value();
  REQUIRE(runs.size() == 1);
  REQUIRE(runs[0].num_keys() == 1);
  CHECK(runs[0].LengthOf(0) == 7);
  for (int i = 0; i < 7; ++i) CHECK(runs[0].ValuesOf(0)[i] == 3.5f);
  CHECK(buffer.num_keys() == 0);
}

TEST_CASE("sort shuffle runs are ascending and hash runs keep emission order", "[shuffle]") {
  auto layout = TestLayout();
  std::vector<float> block(64, 1.0f);
  std::vector<ParamKey> emitted = {ParamKey(0, 9), ParamKey(0, 2), ParamKey(1, 0), ParamKey(0, 5)};
  SECTION("sort") {
    RangePartitioner part(*layout, 2);
    MapOutputBuffer buffer(layout.get(), &part, 1 << 20);
    for (ParamKey k : emitted) REQUIRE(buffer.Add(k, block.data()).ok());
    auto runs = buffer.Finish().value();
    for (const Run& run : runs) {
      for (int64_t i = 1; i < run.num_keys(); ++i) CHECK(run.keys[i - 1] < run.keys[i]);
    }
  }
  SECTION("hash") {
    HashPartitioner part(1);
    MapOutputBuffer buffer(layout.get(), &part, 1 << 20);
    for (ParamKey k : emitted) REQUIRE(buffer.Add(k, block.data()).ok());
    auto runs = buffer.Finish().value();
    CHECK(runs[0].keys == emitted);
  }
}

TEST_CASE("buffer refuses keys outside the model and output over budget", "[shuffle]") {
  auto layout = TestLayout();
  HashPartitioner one(1);
  MapOutputBuffer buffer(layout.get(), &one, 100 * sizeof(float));
  std::vector<float> block(64, 1.0f);
  Status bad = buffer.Add(ParamKey(3, 0), block.data());
  CHECK(bad.code() == StatusCode::kInvalidArgument);
  CHECK(buffer.Add(ParamKey(0, 0), block.data()).ok());
  Status over = buffer.Add(ParamKey(0, 1), block.data());
  CHECK(over.code() == StatusCode::kFailedPrecondition);
  CHECK(over.message().find("shuffle.buffer_bytes=400") != std::string::npos);
  // Summing into a key already held needs no new memory.
  CHECK(buffer.Add(ParamKey(0, 0), block.data()).ok());
}

}  // namespace
}  // namespace mrtrain::shuffle
