#include "shuffle/merge/key_grouper.h"

#include <algorithm>
#include <cstring>
#include <queue>

#include "engine/tensor/key_index.h"

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
  // Several runs: a group per distinct key, numbered in first-seen order, then each group's
  // values gathered in run order into flat arrays (no vector per key: a round of a row-sparse
  // model has tens of thousands of keys).
  size_t total = 0;
  for (const Run* run : runs) total += run ? static_cast<size_t>(run->num_keys()) : 0;
  KeyIndex group_of;
  group_of.Reserve(total);
  std::vector<ParamKey> keys;      // per group
  std::vector<int64_t> lengths;    // per group
  std::vector<size_t> begin;       // per group, then one past the last: its values' range
  std::vector<int64_t> entry_group(total);  // per (run, key) entry, in run order
  size_t entry = 0;
  for (const Run* run : runs) {
    if (!run) continue;
    for (int64_t i = 0; i < run->num_keys(); ++i, ++entry) {
      const auto [g, inserted] = group_of.FindOrInsert(run->keys[i].packed(), keys.size());
      if (inserted) {
        keys.push_back(run->keys[i]);
        lengths.push_back(run->LengthOf(i));
        begin.push_back(0);
      }
      entry_group[entry] = g;
      ++begin[g];  // a count for now
    }
  }
  size_t at = 0;
  for (size_t& b : begin) {  // counts to starts
    const size_t count = b;
    b = at;
    at += count;
  }
  begin.push_back(at);
  std::vector<const float*> values(total);
  std::vector<int> sources(total);
  std::vector<size_t> next(begin.begin(), begin.end() - 1);
  entry = 0;
  for (size_t p = 0; p < runs.size(); ++p) {  // run order fixes the order within groups
    if (!runs[p]) continue;
    for (int64_t i = 0; i < runs[p]->num_keys(); ++i, ++entry) {
      const size_t slot = next[entry_group[entry]]++;
      values[slot] = runs[p]->ValuesOf(i);
      sources[slot] = static_cast<int>(p);
    }
  }
  KeyGroup g;
  for (size_t k = 0; k < keys.size(); ++k) {
    g.key = keys[k];
    g.length = lengths[k];
    g.values.assign(values.begin() + begin[k], values.begin() + begin[k + 1]);
    g.sources.assign(sources.begin() + begin[k], sources.begin() + begin[k + 1]);
    fn(g);
  }
}

const float* SumInTreeOrder(const KeyGroup& group, const std::vector<TreeNode>& nodes,
                            TreeSummer* summer, float* out) {
  // One value is its own sum (what the tree gives too), without building the node list.
  if (group.values.size() == 1) return group.values[0];
  // The nodes on the stack when few (every key of a round comes here), else on the heap.
  constexpr size_t kOnStack = 32;
  const size_t n = group.sources.size();
  TreeNode on_stack[kOnStack];
  std::vector<TreeNode> on_heap(n > kOnStack ? n : 0);
  TreeNode* present = n > kOnStack ? on_heap.data() : on_stack;
  for (size_t i = 0; i < n; ++i) present[i] = nodes[group.sources[i]];
  return summer->Sum(present, group.values.data(), n, group.length, out);
}

}  // namespace mrtrain::shuffle
