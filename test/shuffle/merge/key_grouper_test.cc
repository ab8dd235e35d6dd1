#include "shuffle/merge/key_grouper.h"

#include <cstring>
#include <map>

#include <catch2/catch.hpp>

#include "engine/api/random.h"
#include "shuffle/buffer/map_output_buffer.h"
#include "test/shuffle/shuffle_test_util.h"

namespace mrtrain::shuffle {
namespace {

// Emits random blocks from `num_partitions` map tasks (each task a different subset of keys
// in a different order), shuffles them to `shards` shards and returns the per-key sums.
std::map<uint64_t, std::vector<float>> ShuffleAndSum(ShuffleMode mode, int shards,
                                                     int num_partitions) {
  auto layout = TestLayout();
  auto part = MakePartitioner(mode, *layout, shards);
  std::vector<std::vector<Run>> outputs;
  for (int p = 0; p < num_partitions; ++p) {
    api::RandomStream random(42, p);
    MapOutputBuffer buffer(layout.get(), part.get(), 1 << 20);
    std::vector<ParamKey> keys = layout->keys();
    for (size_t i = keys.size(); i > 1; --i) std::swap(keys[i - 1], keys[random.Below(i)]);
    std::vector<float> block(64);
    for (ParamKey k : keys) {
      if (random.Below(4) == 0) continue;  // sparse: not every task touches every key
      for (float& v : block) v = random.Uniform(-1e3f, 1e3f);
      REQUIRE(buffer.Add(k, block.data()).ok());
    }
    outputs.push_back(buffer.Finish().value());
  }
  std::map<uint64_t, std::vector<float>> sums;
  for (int s = 0; s < shards; ++s) {
    std::vector<const Run*> runs;
    std::vector<TreeNode> nodes;
    TreeSummer summer;
    for (int p = 0; p < num_partitions; ++p) {
      runs.push_back(&outputs[p][s]);
      nodes.push_back(TreeNode{p, 1});
    }
    auto visit = [&](const KeyGroup& g) {
      for (size_t i = 1; i < g.sources.size(); ++i) CHECK(g.sources[i - 1] < g.sources[i]);
      CHECK(part->ShardOf(g.key) == s);
      std::vector<float> out(g.length);
      const float* sum = SumInTreeOrder(g, nodes, &summer, out.data());
      CHECK(sums.count(g.key.packed()) == 0);
      sums[g.key.packed()].assign(sum, sum + g.length);
    };
    if (mode == ShuffleMode::kSort) {
      GroupSortedRuns(runs, visit);
    } else {
      GroupHashedRuns(runs, visit);
    }
  }
  return sums;
}

bool BitEqual(const std::map<uint64_t, std::vector<float>>& a,
              const std::map<uint64_t, std::vector<float>>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end() || it->second.size() != v.size()) return false;
    if (std::memcmp(v.data(), it->second.data(), v.size() * sizeof(float)) != 0) return false;
  }
  return true;
}

TEST_CASE("sort merge yields keys ascending with values in partition order", "[shuffle]") {
  Run r0, r1, r2;
  float a = 1, b = 2, c = 3, d = 4;
  r0.Append(ParamKey(0, 1), &a, 1);
  r0.Append(ParamKey(0, 3), &b, 1);
  r1.Append(ParamKey(0, 3), &c, 1);
  r2.Append(ParamKey(0, 0), &d, 1);
  r2.Append(ParamKey(0, 3), &d, 1);
  std::vector<uint64_t> keys;
  std::vector<std::vector<int>> parts;
  GroupSortedRuns({&r0, &r1, nullptr, &r2}, [&](const KeyGroup& g) {
    keys.push_back(g.key.block());
    parts.push_back(g.sources);
  });
  CHECK(keys == std::vector<uint64_t>{0, 1, 3});
  CHECK(parts[2] == std::vector<int>{0, 1, 3});
}

TEST_CASE("hash and sort shuffle give bit-identical sums for any shard count", "[shuffle]") {
  auto reference = ShuffleAndSum(ShuffleMode::kSort, 1, 5);
  CHECK(reference.size() > 15);
  CHECK(BitEqual(reference, ShuffleAndSum(ShuffleMode::kSort, 3, 5)));
  CHECK(BitEqual(reference, ShuffleAndSum(ShuffleMode::kHash, 1, 5)));
  CHECK(BitEqual(reference, ShuffleAndSum(ShuffleMode::kHash, 3, 5)));
  CHECK(BitEqual(reference, ShuffleAndSum(ShuffleMode::kHash, 7, 5)));
}

TEST_CASE("groups are summed in the tree order of their runs' nodes", "[shuffle]") {
  // 1e8 + 1 rounds to 1e8: the tree (p0 + p1) + (p2 + p3) gives 0, left to right gives 1.
  Run r0, r1, r2, r3;
  float big = 1e8f, one = 1.0f, minus_big = -1e8f;
  r0.Append(ParamKey(0, 0), &big, 1);
  r1.Append(ParamKey(0, 0), &one, 1);
  r2.Append(ParamKey(0, 0), &minus_big, 1);
  r3.Append(ParamKey(0, 0), &one, 1);
  const std::vector<TreeNode> leaves = {{0, 1}, {1, 1}, {2, 1}, {3, 1}};
  TreeSummer summer;
  float out = -1, sum = -1;
  GroupHashedRuns({&r0, &r1, &r2, &r3},
                  [&](const KeyGroup& g) { sum = *SumInTreeOrder(g, leaves, &summer, &out); });
  CHECK(sum == 0.0f);
  // The same key's sums over nodes [0, 2) and [2, 4), as two workers would send them.
  Run left, right;
  float left_sum = big + one, right_sum = minus_big + one;
  left.Append(ParamKey(0, 0), &left_sum, 1);
  right.Append(ParamKey(0, 0), &right_sum, 1);
  GroupSortedRuns({&left, &right}, [&](const KeyGroup& g) {
    sum = *SumInTreeOrder(g, {{0, 2}, {2, 2}}, &summer, &out);
  });
  CHECK(sum == 0.0f);
}

}  // namespace
}  // namespace mrtrain::shuffle
