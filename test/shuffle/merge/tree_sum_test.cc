#include "shuffle/merge/tree_sum.h"

#include <cmath>
#include <cstring>
#include <random>

#include <catch2/catch.hpp>

namespace mrtrain::shuffle {
namespace {

// Sum(node) straight from the definition in tree_sum.h, over leaves[p] (empty: partition p
// emitted nothing). Empty when nothing under the node emitted.
std::vector<float> Reference(const std::vector<std::vector<float>>& leaves, TreeNode node) {
  const int64_t p = static_cast<int64_t>(leaves.size());
  if (node.lo >= p) return {};
  if (node.count == 1) return leaves[node.lo];
  const int64_t half = node.count / 2;
  std::vector<float> left = Reference(leaves, TreeNode{node.lo, half});
  std::vector<float> right = Reference(leaves, TreeNode{node.lo + half, half});
  if (left.empty()) return right;
  if (right.empty()) return left;
  for (size_t i = 0; i < left.size(); ++i) left[i] += right[i];
  return left;
}

// Random leaves of widely different magnitudes (so the order of additions shows in the bits);
// about one partition in four emits nothing.
std::vector<std::vector<float>> RandomLeaves(int64_t partitions, int64_t length,
                                             std::mt19937& rng) {
  std::uniform_real_distribution<float> unit(-1, 1);
  std::uniform_int_distribution<int> exponent(-10, 20);
  std::vector<std::vector<float>> leaves(partitions);
  for (auto& leaf : leaves) {
    if (rng() % 4 == 0) continue;
    for (int64_t i = 0; i < length; ++i) leaf.push_back(std::ldexp(unit(rng), exponent(rng)));
  }
  return leaves;
}

// A random cover of [0, P): from the root down, each node is taken whole or split.
void RandomCover(TreeNode node, int64_t partitions, std::mt19937& rng,
                 std::vector<TreeNode>* cover) {
  if (node.lo >= partitions) return;
  if (node.count == 1 || rng() % 3 == 0) {
    cover->push_back(node);
    return;
  }
  RandomCover(TreeNode{node.lo, node.count / 2}, partitions, rng, cover);
  RandomCover(TreeNode{node.lo + node.count / 2, node.count / 2}, partitions, rng, cover);
}

bool SameBits(const float* a, const std::vector<float>& b) {
  return a ? !b.empty() && std::memcmp(a, b.data(), b.size() * sizeof(float)) == 0 : b.empty();
}

TEST_CASE("tree nodes: root, alignment and membership", "[shuffle]") {
  CHECK(RootCount(0) == 1);
  CHECK(RootCount(1) == 1);
  CHECK(RootCount(5) == 8);
  CHECK(RootCount(8) == 8);
  CHECK(IsAligned(TreeNode{4, 4}));
  CHECK_FALSE(IsAligned(TreeNode{2, 4}));
  CHECK_FALSE(IsAligned(TreeNode{3, 3}));
  CHECK_FALSE(IsAligned(TreeNode{-1, 1}));
  CHECK_FALSE(IsAligned(TreeNode{0, 0}));
  CHECK(IsNodeOf(TreeNode{4, 4}, 5));  // [4, 8) clipped to [4, 5)
  CHECK_FALSE(IsNodeOf(TreeNode{5, 1}, 5));
  CHECK_FALSE(IsNodeOf(TreeNode{0, 16}, 5));
  CHECK(IsNodeOf(TreeNode{0, 8}, 5));
  CHECK(NodeOfTask(3, 2) == TreeNode{6, 2});
}

TEST_CASE("node size: about one node per worker, the whole tree for one", "[shuffle]") {
  CHECK(NodeCountFor(4, 1) == 4);
  CHECK(NodeCountFor(5, 1) == 8);  // one node [0, 8) clipped to [0, 5)
  CHECK(NodeCountFor(4, 2) == 2);
  CHECK(NodeCountFor(8, 2) == 4);
  CHECK(NodeCountFor(10, 2) == 4);  // 5 per worker, rounded down
  CHECK(NodeCountFor(2, 4) == 1);
  CHECK(NodeCountFor(8, 3) == 2);
  CHECK(NodeCountFor(8, 2, 1) == 1);   // requested
  CHECK(NodeCountFor(8, 1, 3) == 2);   // rounded down to a power of two
  CHECK(NodeCountFor(3, 1, 64) == 4);  // at most the root
}

TEST_CASE("a tree sum follows the definition and any cover gives the same bits", "[shuffle]") {
  std::mt19937 rng(7);
  TreeSummer summer;
  for (int64_t partitions : {1, 2, 3, 5, 8, 13, 32}) {
    for (int trial = 0; trial < 20; ++trial) {
      const int64_t length = 1 + static_cast<int64_t>(rng() % 9);
      auto leaves = RandomLeaves(partitions, length, rng);
      const std::vector<float> want = Reference(leaves, TreeNode{0, RootCount(partitions)});
      std::vector<TreeNode> cover;
      RandomCover(TreeNode{0, RootCount(partitions)}, partitions, rng, &cover);
      // Each node of the cover sends its own tree sum, as a combining worker does; nodes
      // with nothing for the key are left out, as the key grouper leaves them out.
      std::vector<std::vector<float>> sums;
      std::vector<TreeNode> present;
      for (TreeNode node : cover) {
        std::vector<float> s = Reference(leaves, node);
        if (s.empty()) continue;
        sums.push_back(std::move(s));
        present.push_back(node);
      }
      std::vector<const float*> values;
      for (const auto& s : sums) values.push_back(s.data());
      std::vector<float> out(length);
      const float* got =
          summer.Sum(present.data(), values.data(), present.size(), length, out.data());
      INFO("partitions " << partitions << " trial " << trial << " cover of " << cover.size());
      CHECK(SameBits(got, want));
    }
  }
}

TEST_CASE("the tree order is not the left-to-right order", "[shuffle]") {
  // 1e8 + 1 rounds to 1e8: ((1e8 + 1) + (-1e8 + 1)) + 0.5 is 0.5; left to right it is 1.5.
  const float leaves[5] = {1e8f, 1.0f, -1e8f, 1.0f, 0.5f};
  std::vector<TreeNode> nodes;
  std::vector<const float*> values;
  for (int64_t p = 0; p < 5; ++p) {
    nodes.push_back(TreeNode{p, 1});
    values.push_back(&leaves[p]);
  }
  TreeSummer summer;
  float out = 0;
  CHECK(*summer.Sum(nodes.data(), values.data(), 5, 1, &out) == 0.5f);
  // One value: returned as it is, whatever node it covers.
  CHECK(summer.Sum(nodes.data() + 3, values.data() + 3, 1, 1, &out) == values[3]);
  CHECK(summer.Sum(nodes.data(), values.data(), 0, 1, &out) == nullptr);
}

TEST_CASE("ChooseCover takes the largest nodes and names what is missing", "[shuffle]") {
  std::vector<int64_t> missing;
  CHECK(ChooseCover({{0, 1}, {1, 1}, {0, 2}, {2, 1}, {4, 4}}, 5, &missing) == std::nullopt);
  CHECK(missing == std::vector<int64_t>{3});
  missing.clear();
  CHECK(ChooseCover({{0, 1}, {1, 1}, {0, 2}, {2, 1}, {3, 1}, {4, 4}}, 5, &missing) ==
        std::vector<TreeNode>{{0, 2}, {2, 1}, {3, 1}, {4, 4}});
  CHECK(missing.empty());
  CHECK(ChooseCover({{0, 4}, {2, 2}, {3, 1}, {4, 1}}, 5, &missing) ==
        std::vector<TreeNode>{{0, 4}, {4, 1}});
  CHECK(missing.empty());
  CHECK(ChooseCover({{0, 8}}, 5) == std::vector<TreeNode>{{0, 8}});
  CHECK(ChooseCover({{0, 1}}, 1) == std::vector<TreeNode>{{0, 1}});
  CHECK(ChooseCover({}, 3, &missing) == std::nullopt);
  CHECK(missing == std::vector<int64_t>{0, 1, 2});
}

TEST_CASE("TreeFold adds statistics in the same tree order", "[shuffle]") {
  auto add = [](double a, double b) { return a + b; };
  const std::vector<double> leaves = {1e17, 1.0, -1e17, 1.0, 0.5};
  std::vector<TreeNode> nodes;
  for (int64_t p = 0; p < 5; ++p) nodes.push_back(TreeNode{p, 1});
  const double by_leaves = *TreeFold(nodes, leaves, add);
  CHECK(by_leaves == 0.5);
  // Nodes [0, 4) and [4, 8) summed by their tasks first: the same double.
  const std::vector<double> halves = {(1e17 + 1.0) + (-1e17 + 1.0), 0.5};
  CHECK(*TreeFold(std::vector<TreeNode>{{0, 4}, {4, 4}}, halves, add) == by_leaves);
  CHECK(TreeFold(std::vector<TreeNode>{}, std::vector<double>{}, add) == std::nullopt);
}

}  // namespace
}  // namespace mrtrain::shuffle
