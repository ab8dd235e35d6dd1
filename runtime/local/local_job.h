#pragma once

#include "engine/base/status.h"
#include "jobs/spec/job_spec.h"
#include "runtime/master/training_loop.h"

namespace mrtrain::runtime {

struct LocalRunOptions {
  // Continue from the newest valid checkpoint in output.dir/checkpoints (refused when it was
  // written by a spec with another fingerprint). Without one, starts from scratch.
  bool resume = false;
};

// Trains a job in this process: every partition's map task, the shuffle and the reducer
// shards run here on a thread pool, through the same map task, shuffle and shard code a
// cluster runs. Deterministic: same spec, same bytes, whatever the thread or shard count.
Result<TrainingResult> RunLocalJob(const jobs::JobSpec& spec, const LocalRunOptions& options,
                                   TrainingObserver* observer);

// Checks what can be checked without training: the data paths resolve and their headers
// parse, the model type and update rule exist and accept their hyperparameters.
Status ValidateJob(const jobs::JobSpec& spec);

}  // namespace mrtrain::runtime
