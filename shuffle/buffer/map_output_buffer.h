#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/base/status.h"
#include "engine/tensor/key_index.h"
#include "engine/tensor/model_layout.h"
#include "shuffle/buffer/run.h"
#include "shuffle/partition/partitioner.h"

namespace mrtrain::shuffle {

// Where a map task's buffer spills: run files `dir`/`name`-<n>.run. An empty `dir` turns
// spilling off (output past the budget then fails the task).
struct SpillOptions {
  std::string dir;   // made on the first spill when missing; left in place
  std::string name;  // unique among the tasks that share `dir`, e.g. the task's id
};

// Collects the (key, block) pairs one map task emits and sums values of the same key as they
// arrive (the combiner), within a memory budget. Each key goes straight into the run of its
// reducer shard, so finishing a hash-shuffle task moves the runs out without copying; a sort
// shuffle sorts each run once at the end. Summation order is emission order, which is
// deterministic for a given task.
//
// Past the budget the buffer spills: it sorts what it holds by key and writes it as one run
// file (shuffle/spill/FORMAT.md), then starts empty. A key already spilled cannot be combined
// any more without changing its sum's rounding (a float sum is a left fold: (a+b)+c is not
// a+(b+c)), so each later emission of it is held, and spilled, as a record of its own.
// Finish() merges the runs and folds each key's records in spill order, so the output is
// bit-identical to what an unlimited buffer would give: the same sums, keys in the same order.
//
// Not thread-safe: one buffer per task. The layout and the partitioner must outlive the
// buffer. Spilled files are removed by Finish() and by the destructor, whatever happened.
class MapOutputBuffer {
 public:
  MapOutputBuffer(const ModelLayout* layout, const Partitioner* partitioner, int64_t budget_bytes,
                  SpillOptions spill = {});
  ~MapOutputBuffer();
  MapOutputBuffer(const MapOutputBuffer&) = delete;
  MapOutputBuffer& operator=(const MapOutputBuffer&) = delete;

  // A hint: about `keys` distinct keys will be added, so that the table of held keys, when one
  // is needed, is sized once.
  void ReserveKeys(size_t keys);

  // Adds (sums into) block `key`; `values` holds layout->Range(key).length floats.
  // kInvalidArgument for a key outside the model; kFailedPrecondition when the block does not
  // fit the budget (spilling off: when the held output would pass it; the message gives the
  // budget and the key); kIOError naming the run file when a spill cannot be written.
  Status Add(ParamKey key, const float* values);

  int64_t num_keys() const {
    return ascending_ ? keys_seen_ : static_cast<int64_t>(slot_of_.size());
  }
  int64_t bytes() const { return bytes_; }
  // Runs written so far (Finish() included) and their bytes on disk.
  int64_t spilled_runs() const { return spilled_runs_; }
  int64_t spilled_bytes() const { return spilled_bytes_; }

  // Returns one run per shard (sorted by key when the partitioner is sorted, in first-emission
  // order otherwise) and leaves the buffer empty. After spills: kCorruption naming the run
  // file and offset when one was damaged, kIOError when the last one cannot be written.
  Result<std::vector<Run>> Finish();

 private:
  // Sorts what is held into a run file and empties the buffer.
  Status Spill();
  // Leaves the ascending mode: builds slots_ and slot_of_ for the keys held.
  void IndexHeldKeys();
  Result<std::vector<Run>> MergeSpilled();
  void RemoveSpillFiles();

  // Constant after construction.
  const ModelLayout* layout_;
  const Partitioner* partitioner_;
  const int64_t budget_bytes_;
  const SpillOptions spill_;

  struct Slot {
    ParamKey key;
    int shard;
    int64_t offset;      // into runs_[shard].values
    int64_t first_seen;  // how many keys were new before this one: the hash-shuffle order
  };
  // While ascending_ (every key so far came after the one before, and nothing spilled) no key
  // can repeat, and keys_seen_ is the number held: slots_ and slot_of_ stay empty, which spares
  // the common case (one mapper call per task: a row-sparse model's tens of thousands of rows,
  // or a dense model's blocks, each emitted once, ascending) a table lookup and insert per key.
  bool ascending_ = true;
  ParamKey last_key_;
  size_t expected_keys_ = 0;  // ReserveKeys
  // Otherwise the keys held and combinable: packed key -> index in slots_.
  KeyIndex slot_of_;
  std::vector<Slot> slots_;
  // One per shard, in emission order. After a spill a key may appear more than once here (see
  // the class comment), so these are not Runs in run.h's sense until Finish() merges them.
  std::vector<Run> runs_;
  int64_t bytes_ = 0;
  int64_t keys_seen_ = 0;

  // Spilling: every key written to a run so far, with its first_seen; the run files in order.
  std::unordered_map<ParamKey, int64_t> spilled_first_seen_;
  std::vector<std::string> spill_paths_;  // not yet removed
  int64_t spilled_runs_ = 0;
  int64_t spilled_bytes_ = 0;
};

}  // namespace mrtrain::shuffle
