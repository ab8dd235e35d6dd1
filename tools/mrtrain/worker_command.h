#pragma once

#include <cstdint>
#include <string>

#include "runtime/worker/worker_service.h"
#include "tools/mrtrain/cluster_flags.h"

// `mrtrain worker`, callable by the other commands that become a worker (`launch`).
namespace mrtrain::tools {

struct WorkerFlags {
  ClusterFlags cluster;
  std::string master;
  std::string listen;
  int slots = 0;
  std::string name;
  std::string plugin_cache;
  int64_t push_budget_kb = 512 * 1024;
  int64_t keep_budget_mb = 256;
  int64_t memory_budget_mb = runtime::kDefaultMemoryBudgetBytes >> 20;
  std::string spill_dir;
  int64_t connect_sec = 30;  // the first registration's retries (a master starting up)
  int64_t reconnect_sec = 60;
  std::string failpoints;
};

// Registers with the master and serves it until it says stop (then exits with the status it
// asked for), SIGINT/SIGTERM (0), or the master is lost for longer than reconnect_sec (1).
// 2 for bad flags. Installs its own signal handlers: call it with none installed.
int RunWorker(const WorkerFlags& flags);

}  // namespace mrtrain::tools
