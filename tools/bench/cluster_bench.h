#pragma once

#include <string>
#include <vector>

#include "engine/base/status.h"
#include "jobs/spec/job_spec.h"
#include "runtime/master/training_loop.h"

namespace mrtrain::bench {

// The hidden flag that makes the benchmark binary a worker: `bench --worker-of HOST:PORT`.
inline constexpr char kWorkerFlag[] = "--worker-of";

// Trains `spec` on a master in this process and `workers` worker processes (this binary
// re-executed with kWorkerFlag), each with `slots` task slots, over TCP on 127.0.0.1 with a
// secret made for the run. Returns each epoch's training time (rounds only), in seconds.
// `last_worker_failpoints`, when set, is the MRTRAIN_FAILPOINTS of the last worker only (a
// straggler: "map-after-compute=delay(500)"). `backups`, when set, gets the speculative
// attempts the master started. `job_sec`, when set, gets the seconds from the submit to the
// job's end (what a predict job, which has no epochs, is measured by). `reports`, when set,
// gets each epoch's report, its elapsed_sec counted from the submit (so it includes loading
// the data, which the master's own count, from the first round, leaves out).
Result<std::vector<double>> TrainOnLoopbackCluster(
    const jobs::JobSpec& spec, int workers, int slots,
    const std::string& last_worker_failpoints = "", int64_t* backups = nullptr,
    double* job_sec = nullptr, std::vector<runtime::EpochReport>* reports = nullptr);

// The worker side: registers with the master and serves until it is told to stop. Returns the
// process's exit code.
int ServeAsWorker(const std::string& master_address, int slots);

}  // namespace mrtrain::bench
