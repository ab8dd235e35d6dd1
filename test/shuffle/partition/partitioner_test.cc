#include "shuffle/partition/partitioner.h"

#include <set>

#include <catch2/catch.hpp>

#include "test/shuffle/shuffle_test_util.h"

namespace mrtrain::shuffle {
namespace {

TEST_CASE("every key goes to exactly one shard in range", "[shuffle]") {
  auto layout = TestLayout();
  for (ShuffleMode mode : {ShuffleMode::kHash, ShuffleMode::kSort}) {
    for (int r : {1, 2, 3, 5}) {
      auto part = MakePartitioner(mode, *layout, r);
      size_t total = 0;
      for (int s = 0; s < r; ++s) total += KeysOfShard(*part, *layout, s).size();
      CHECK(total == layout->keys().size());
      for (ParamKey k : layout->keys()) {
        CHECK(part->ShardOf(k) >= 0);
        CHECK(part->ShardOf(k) < r);
      }
    }
  }
}

TEST_CASE("range partitioner gives contiguous ranges balanced by parameter count", "[shuffle]") {
  auto layout = TestLayout();  // 1237 parameters
  RangePartitioner part(*layout, 3);
  int last = 0;
  std::vector<int64_t> params(3, 0);
  for (ParamKey k : layout->keys()) {
    int s = part.ShardOf(k);
    CHECK(s >= last);  // ascending keys never go back to an earlier shard
    last = s;
    params[s] += layout->Range(k).length;
  }
  for (int64_t p : params) {
    CHECK(p > 1237 / 3 - 64);
    CHECK(p < 1237 / 3 + 64);
  }
}

TEST_CASE("range partitioner with more shards than keys leaves shards empty", "[shuffle]") {
  auto layout = TestLayout();  // 21 keys
  RangePartitioner part(*layout, 30);
  std::set<int> used;
  for (ParamKey k : layout->keys()) used.insert(part.ShardOf(k));
  CHECK(used.size() <= 21);
  CHECK(part.boundaries().size() == 29);
}

TEST_CASE("hash partitioner spreads neighbouring blocks over shards", "[shuffle]") {
  HashPartitioner part(4);
  std::vector<int> counts(4, 0);
  for (uint64_t b = 0; b < 4000; ++b) counts[part.ShardOf(ParamKey(0, b))]++;
  for (int c : counts) {
    CHECK(c > 850);
    CHECK(c < 1150);
  }
}

}  // namespace
}  // namespace mrtrain::shuffle
