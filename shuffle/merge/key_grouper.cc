#include "shuffle/merge/key_grouper.h"

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
  std::unordered_map<ParamKey, size_t> slot_of;
  std::vector<KeyGroup> groups;
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
