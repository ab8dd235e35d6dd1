#include "shuffle/merge/tree_sum.h"

#include <algorithm>
#include <cstring>

namespace mrtrain::shuffle {
namespace {

constexpr int64_t kMaxCount = int64_t{1} << 62;

// Adds the partitions of `node` (clipped at P) that no received node covers to `missing`, and
// the chosen nodes to `cover`. False when something is missing.
bool Cover(const std::set<TreeNode>& received, TreeNode node, int64_t num_partitions,
           std::vector<TreeNode>* cover, std::vector<int64_t>* missing) {
  if (node.lo >= num_partitions) return true;  // past P: nothing to cover
  if (received.count(node)) {
    cover->push_back(node);
    return true;
  }
  if (node.count == 1) {
    if (missing) missing->push_back(node.lo);
    return false;
  }
  const int64_t half = node.count / 2;
  const bool left = Cover(received, TreeNode{node.lo, half}, num_partitions, cover, missing);
  const bool right =
      Cover(received, TreeNode{node.lo + half, half}, num_partitions, cover, missing);
  return left && right;
}

}  // namespace

int64_t RootCount(int64_t num_partitions) {
  int64_t count = 1;
  while (count < num_partitions && count < kMaxCount) count *= 2;
  return count;
}

int64_t NodeCountFor(int64_t partitions, int64_t workers, int64_t requested) {
  const int64_t root = RootCount(partitions);
  if (requested <= 0 && workers <= 1) return root;
  const int64_t want =
      requested > 0 ? requested : std::max<int64_t>(1, partitions / std::max<int64_t>(1, workers));
  int64_t count = 1;
  while (count * 2 <= want && count < root) count *= 2;
  return count;
}

bool IsAligned(const TreeNode& node) {
  return node.lo >= 0 && node.count > 0 && node.count <= kMaxCount &&
         (node.count & (node.count - 1)) == 0 && node.lo % node.count == 0;
}

bool IsNodeOf(const TreeNode& node, int64_t num_partitions) {
  return IsAligned(node) && node.lo < num_partitions && node.count <= RootCount(num_partitions);
}

std::optional<std::vector<TreeNode>> ChooseCover(const std::set<TreeNode>& received,
                                                 int64_t num_partitions,
                                                 std::vector<int64_t>* missing) {
  std::vector<TreeNode> cover;
  if (!Cover(received, TreeNode{0, RootCount(num_partitions)}, num_partitions, &cover, missing)) {
    return std::nullopt;
  }
  return cover;
}

const float* TreeSummer::Sum(const TreeNode* nodes, const float* const* values, size_t n,
                             int64_t length, float* out) {
  if (n == 0) return nullptr;
  const TreeNode root{0, RootCount(nodes[n - 1].lo + nodes[n - 1].count)};
  // One buffer per level, sized before the descent: levels hold pointers into each other's.
  size_t depth = 1;
  for (int64_t c = root.count; c > 1; c /= 2) ++depth;
  if (scratch_.size() < depth) scratch_.resize(depth);
  for (std::vector<float>& level : scratch_) {
    if (static_cast<int64_t>(level.size()) < length) level.resize(length);
  }
  return SumWithin(root, nodes, values, n, length, out, 0);
}

const float* TreeSummer::SumWithin(TreeNode within, const TreeNode* nodes,
                                   const float* const* values, size_t n, int64_t length, float* out,
                                   size_t depth) {
  // One node present under `within`: every level above it skips an absent side, so the sum is
  // that node's value itself.
  if (n == 0) return nullptr;
  if (n == 1) return values[0];
  const int64_t half = within.count / 2;
  const int64_t mid = within.lo + half;
  size_t k = 0;
  while (k < n && nodes[k].lo < mid) ++k;
  if (k == 0 || k == n) {  // one side absent: the sum is the other side's
    return k == 0 ? SumWithin(TreeNode{mid, half}, nodes, values, n, length, out, depth + 1)
                  : SumWithin(TreeNode{within.lo, half}, nodes, values, n, length, out, depth + 1);
  }
  float* right_out = scratch_[depth].data();
  // The left half is summed into `out`, the right half into this depth's scratch; deeper levels
  // use deeper scratch, so neither overwrites the other.
  const float* left =
      SumWithin(TreeNode{within.lo, half}, nodes, values, k, length, out, depth + 1);
  const float* right =
      SumWithin(TreeNode{mid, half}, nodes + k, values + k, n - k, length, right_out, depth + 1);
  for (int64_t i = 0; i < length; ++i) out[i] = left[i] + right[i];
  return out;
}

}  // namespace mrtrain::shuffle
