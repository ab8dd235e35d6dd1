#include "shuffle/merge/key_grouper.h"

#include <algorithm>
#include <cstring>
#include <queue>
#include <unordered_map>

namespace mrtrain::shuffle {
namespace {

// A cursor in one sorted run; the heap orders cursors by (key, run index) so equal keys pop in
// run order (the stable tie-break of a k-way merge).
struct Cursor {
  ParamKey key;
  int source;
  int64_t index;
};

struct CursorAfter {
  bool operator()(const Cursor& a, const Cursor& b) const {
    if (a.key != b.key) return b.key < a.key;
    return a.source > b.source;
  }
};

}  // namespace

void GroupSortedRuns(const std::vector<const Run*>& runs,
                     const std::function<void(const KeyGroup&)>& fn) {
  std::priority_queue<Cursor, std::vector<Cursor>, CursorAfter> heap;
  for (size_t p = 0; p < runs.size(); ++p) {
    if (runs[p] && runs[p]->num_keys() > 0) {
      heap.push(Cursor{runs[p]->keys[0], static_cast<int>(p), 0});
    }
  }
  KeyGroup group;
  while (!heap.empty()) {
    group.key = heap.top().key;
    group.values.clear();
    group.sources.clear();
    while (!heap.empty() && heap.top().key == group.key) {
      Cursor c = heap.top();
      heap.pop();
      const Run& run = *runs[c.source];
      group.length = run.LengthOf(c.index);
      group.values.push_back(run.ValuesOf(c.index));
      group.sources.push_back(c.source);
      if (c.index + 1 < run.num_keys()) {
        heap.push(Cursor{run.keys[c.index + 1], c.source, c.index + 1});
      }
    }
    fn(group);
  }
}

void GroupHashedRuns(const std::vector<const Run*>& runs,
                     const std::function<void(const KeyGroup&)>& fn) {
  // One run (local mode, or a single node covering every partition): every key is its own
  // group, visited in the run's order, without a table or a vector per key.
  const Run* only = nullptr;
  size_t present = 0;
  for (size_t p = 0; p < runs.size(); ++p) {
    if (runs[p] && runs[p]->num_keys() > 0) {
      only = runs[p];
      ++present;
    }
  }
  if (present == 1) {
    const size_t p = static_cast<size_t>(std::find(runs.begin(), runs.end(), only) - runs.begin());
    KeyGroup g;
    g.values.resize(1);
    g.sources.assign(1, static_cast<int>(p));
    for (int64_t i = 0; i < only->num_keys(); ++i) {
      g.key = only->keys[i];
      g.length = only->LengthOf(i);
      g.values[0] = only->ValuesOf(i);
      fn(g);
    }
    return;
  }
  size_t total = 0;
  for (const Run* run : runs) total += run ? static_cast<size_t>(run->num_keys()) : 0;
  std::unordered_map<ParamKey, size_t> slot_of;
  slot_of.reserve(total);
  std::vector<KeyGroup> groups;
  groups.reserve(total);
  for (size_t p = 0; p < runs.size(); ++p) {  // run order fixes the order within groups
    if (!runs[p]) continue;
    const Run& run = *runs[p];
    for (int64_t i = 0; i < run.num_keys(); ++i) {
      auto [it, inserted] = slot_of.emplace(run.keys[i], groups.size());
      if (inserted) {
        groups.emplace_back();
        groups.back().key = run.keys[i];
        groups.back().length = run.LengthOf(i);
      }
      KeyGroup& g = groups[it->second];
      g.values.push_back(run.ValuesOf(i));
      g.sources.push_back(static_cast<int>(p));
    }
  }
  for (const KeyGroup& g : groups) fn(g);
}

const float* SumInTreeOrder(const KeyGroup& group, const std::vector<TreeNode>& nodes,
                            TreeSummer* summer, float* out) {
  std::vector<TreeNode> present(group.sources.size());
  for (size_t i = 0; i < present.size(); ++i) present[i] = nodes[group.sources[i]];
  return summer->Sum(present.data(), group.values.data(), present.size(), group.length, out);
}

}  // namespace mrtrain::shuffle
