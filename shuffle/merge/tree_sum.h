#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <vector>

namespace mrtrain::shuffle {

// Why a tree: gradients of one key from P partitions are summed in the order of one fixed
// binary tree over the partition indices [0, P). A worker that ran a whole subtree's
// partitions can then send that subtree's sum, and it is exactly the float the reducer would
// have computed from the leaves: the model cannot depend on who combined what (how many
// workers, which of them ran which partitions, retries at another grain). A linear order
// would allow combining only prefixes; an order-independent (reproducible) summation would
// cost wide accumulators on every element.
//
// A node of the tree: partitions [lo, lo + count) clipped at P, with count a power of two and
// lo a multiple of it. Sum(node) = Sum(left half) + Sum(right half), where an absent side (no
// partition in it emitted the key, or it lies past P) is skipped; a leaf is its partition's
// value. The root is [0, RootCount(P)).
struct TreeNode {
  int64_t lo = 0;
  int64_t count = 1;

  int64_t End(int64_t num_partitions) const {
    return lo + count < num_partitions ? lo + count : num_partitions;
  }
  bool Contains(const TreeNode& o) const { return lo <= o.lo && o.lo + o.count <= lo + count; }
  bool operator==(const TreeNode& o) const { return lo == o.lo && count == o.count; }
  bool operator!=(const TreeNode& o) const { return !(*this == o); }
  // By lo, then the larger node first.
  bool operator<(const TreeNode& o) const { return lo != o.lo ? lo < o.lo : count > o.count; }
};

// The smallest power of two >= num_partitions (1 for 0 or 1).
int64_t RootCount(int64_t num_partitions);

// Whether `node` can be a tree node at all: lo >= 0, count a power of two up to 2^62, lo a
// multiple of count (what a decoder can check without knowing P).
bool IsAligned(const TreeNode& node);

// Whether `node` is a node of the tree over num_partitions: aligned, lo < P, count <= RootCount(P).
bool IsNodeOf(const TreeNode& node, int64_t num_partitions);

// The node of map task `task` when a job's tasks cover `node_count` partitions each (a power of
// two): [task * node_count, (task + 1) * node_count), clipped at P when used.
inline TreeNode NodeOfTask(int64_t task, int64_t node_count) {
  return TreeNode{task * node_count, node_count};
}

// The node size that gives each of `workers` about one node: the largest power of two
// <= max(1, partitions / workers), and the whole tree (RootCount) for one worker. With
// `requested` > 0, that rounded down to a power of two (at most the root) instead.
int64_t NodeCountFor(int64_t partitions, int64_t workers, int64_t requested = 0);

// Picks from `received` (nodes of the tree over num_partitions; duplicates and overlaps allowed)
// disjoint nodes covering [0, P): from the root down, a received node is used whole, else its
// children are tried. Any cover gives the same sums, so this takes the largest nodes. Returns
// them ascending by lo; nullopt when a partition lies under no received node, and then
// `missing` (if not null) lists those partitions, ascending.
std::optional<std::vector<TreeNode>> ChooseCover(const std::set<TreeNode>& received,
                                                 int64_t num_partitions,
                                                 std::vector<int64_t>* missing = nullptr);

// Sums float blocks in tree order. Not thread-safe (it keeps scratch buffers).
class TreeSummer {
 public:
  // values[i] is the sum of `length` floats over node nodes[i]; the nodes are disjoint and
  // ascending by lo (a cover minus the nodes that had nothing for the key). Returns their
  // sum in tree order: one of `values` when n == 1, else `out`, which it wrote; nullptr when
  // n == 0.
  const float* Sum(const TreeNode* nodes, const float* const* values, size_t n, int64_t length,
                   float* out);

 private:
  const float* SumWithin(TreeNode within, const TreeNode* nodes, const float* const* values,
                         size_t n, int64_t length, float* out, size_t depth);
  std::vector<std::vector<float>> scratch_;  // [depth]: the right half's sum
};

// Folds values in tree order, for anything with an associative-looking `add(left, right)`
// (statistics of map tasks): nodes[i] holds values[i], disjoint and ascending by lo. nullopt
// when there are none.
template <typename T, typename Add>
std::optional<T> TreeFold(TreeNode within, const TreeNode* nodes, const T* values, size_t n,
                          const Add& add) {
  if (n == 0) return std::nullopt;
  if (n == 1) return values[0];
  const int64_t mid = within.lo + within.count / 2;
  size_t k = 0;
  while (k < n && nodes[k].lo < mid) ++k;
  std::optional<T> left = TreeFold(TreeNode{within.lo, within.count / 2}, nodes, values, k, add);
  std::optional<T> right =
      TreeFold(TreeNode{mid, within.count / 2}, nodes + k, values + k, n - k, add);
  if (!left) return right;
  if (!right) return left;
  return add(*left, *right);
}

// The fold over the whole tree of `nodes` (ascending, disjoint).
template <typename T, typename Add>
std::optional<T> TreeFold(const std::vector<TreeNode>& nodes, const std::vector<T>& values,
                          const Add& add) {
  if (nodes.empty()) return std::nullopt;
  const TreeNode root{0, RootCount(nodes.back().lo + nodes.back().count)};
  return TreeFold(root, nodes.data(), values.data(), nodes.size(), add);
}

}  // namespace mrtrain::shuffle
