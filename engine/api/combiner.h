#pragma once

#include <cstdint>

#include "engine/api/views.h"

namespace mrtrain::api {

// Where one block of a map task's output stands.
struct CombineContext {
  int64_t epoch = 0;      // 0-based
  int64_t round = 0;      // 0-based, within the epoch
  int64_t partition = 0;  // the task's partition
  int tensor = 0;         // the block's tensor (index in DescribeModel's list)
  int64_t block = 0;      // the block's index within the tensor
  int64_t examples = 0;   // examples behind the task's output
  TaskLog* log = nullptr;
};

// Optional: runs on the map side, after the engine has summed everything a map task emitted
// for a block and before the block is shuffled to its reducer, so a job can transform what
// travels (clip it, quantize it, drop small values) without touching the model or the update
// rule. The reducer receives what Combine leaves.
//
// Contract: Combine sees one task's own sum only (never values of other partitions: results
// stay independent of placement), must be deterministic (a re-run attempt must produce the
// same bytes), and must not change `n`. One instance serves one task at a time (the engine
// makes one per task), so members may hold scratch. May throw (anything): the task then
// fails with the message.
class Combiner {
 public:
  virtual ~Combiner() = default;

  // `values`: the task's summed gradient for block (ctx.tensor, ctx.block), `n` floats; change
  // them in place.
  virtual void Combine(const CombineContext& ctx, float* values, int64_t n) = 0;
};

}  // namespace mrtrain::api
