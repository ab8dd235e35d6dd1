#include "shuffle/spill/spill_run_merger.h"

#include <cstring>
#include <memory>
#include <queue>

#include "shuffle/spill/spill_run_file.h"

namespace mrtrain::shuffle {
namespace {

// A run's next record in the heap: ordered by key, then run index, so equal keys pop in spill
// order and, since a run's reader advances only after its record is folded, in the order
// within each run too.
struct Head {
  ParamKey key;
  size_t run;
};

struct HeadAfter {
  bool operator()(const Head& a, const Head& b) const {
    if (a.key != b.key) return b.key < a.key;
    return a.run > b.run;
  }
};

}  // namespace

Status MergeSpillRuns(const std::vector<std::string>& paths, int64_t max_length,
                      const std::function<void(ParamKey, const float*, int64_t)>& emit) {
  std::vector<std::unique_ptr<SpillRunReader>> readers;
  std::priority_queue<Head, std::vector<Head>, HeadAfter> heap;
  for (const std::string& path : paths) {
    MRTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<SpillRunReader> reader,
                             SpillRunReader::Open(path, max_length));
    MRTRAIN_ASSIGN_OR_RETURN(bool any, reader->Next());
    if (any) heap.push(Head{reader->key(), readers.size()});
    readers.push_back(std::move(reader));
  }
  std::vector<float> sum(max_length);
  while (!heap.empty()) {
    const ParamKey key = heap.top().key;
    int64_t length = 0;
    while (!heap.empty() && heap.top().key == key) {
      SpillRunReader& r = *readers[heap.top().run];
      const size_t run = heap.top().run;
      heap.pop();
      if (length == 0) {
        length = r.length();
        std::memcpy(sum.data(), r.values(), length * sizeof(float));
      } else if (r.length() != length) {
        return CorruptionError(
            "spill run " + r.path() + ": key (tensor " + std::to_string(key.tensor()) + ", block " +
            std::to_string(key.block()) + ") holds " + std::to_string(r.length()) +
            " floats, an earlier run " + std::to_string(length));
      } else {
        const float* in = r.values();
        for (int64_t i = 0; i < length; ++i) sum[i] += in[i];
      }
      MRTRAIN_ASSIGN_OR_RETURN(bool more, r.Next());
      if (more) heap.push(Head{r.key(), run});
    }
    emit(key, sum.data(), length);
  }
  return Status::Ok();
}

}  // namespace mrtrain::shuffle
