#pragma once

#include "engine/base/status.h"
#include "jobs/spec/job_spec.h"
#include "runtime/master/training_loop.h"
#include "runtime/worker/worker_service.h"

namespace mrtrain::runtime {

struct LocalRunOptions {
  // Continue from the newest valid checkpoint in output.dir/checkpoints (refused when it was
  // written by a spec with another fingerprint). Without one, starts from scratch.
  bool resume = false;
  // Where the worker spills (map output past shuffle.buffer_bytes); "" = the system's
  // temporary folder ($TMPDIR).
  std::string spill_dir;
  // The worker's budget for data sets with `cache: disk` (WorkerOptions::memory_budget_bytes).
  size_t memory_budget_bytes = kDefaultMemoryBudgetBytes;
};

// Trains a job in this process: a real master and one worker (with training.threads task
// slots, hosting every reducer shard) over the in-process transport, so local mode runs, and
// debugs, the very code a cluster runs. Deterministic: same spec, same bytes, whatever the
// thread, shard or worker count. REQUIRES: `spec` came from ParseJobSpec or LoadJobSpec (its
// text is what the worker parses).
Result<TrainingResult> RunLocalJob(const jobs::JobSpec& spec, const LocalRunOptions& options,
                                   TrainingObserver* observer);

}  // namespace mrtrain::runtime
