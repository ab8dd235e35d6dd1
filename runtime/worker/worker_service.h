#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "engine/base/status.h"
#include "runtime/transport/transport.h"

namespace mrtrain::runtime {

inline constexpr size_t kDefaultMemoryBudgetBytes = size_t{1024} << 20;

struct WorkerOptions {
  std::string master_address;          // "host:port", or "inproc://name" in local mode
  std::string data_address;            // where to listen for pushes and pulls ("127.0.0.1:0")
  std::string name;                    // for logs and the status page; default "host:pid"
  int slots = 0;                       // tasks run at once, each with its own mapper; 0 = cores
  std::string plugin_cache_dir;        // shipped plugin libraries; "" = DefaultPluginCacheDir()
  // Bytes of shuffle pushes sent and not yet acknowledged, across the worker's tasks: past it
  // a task waits before sending (a slow reducer slows its mappers down instead of buffering).
  // A single push larger than the budget is sent when nothing else is outstanding.
  size_t push_budget_bytes = size_t{512} << 20;
  // Map output is kept until its epoch's checkpoint commits (a lost reducer shard is restored
  // from that checkpoint and the steps since are replayed from it): up to keep_budget_bytes in
  // memory, the rest spilled to files under spill_dir ("" = the system's temporary folder).
  size_t keep_budget_bytes = size_t{256} << 20;
  std::string spill_dir;
  // Decoded rows of the data sets with `cache: disk` kept in memory between the tasks that use
  // them, shared evenly by those sets (partitions in use and sets with `cache: memory` aside).
  size_t memory_budget_bytes = kDefaultMemoryBudgetBytes;
  bool keep_map_output = true;  // false: nothing is kept (local mode, where nothing could replay)
  // How long Start() keeps retrying the master (it may still be starting).
  std::chrono::milliseconds connect_timeout{30000};
  // The bound on every wait for a peer: a parameter pull, a push's acknowledgement.
  std::chrono::milliseconds reply_timeout{120000};
  // Floats in one reply to a parameter pull: a larger shard answers in several parts.
  uint64_t reply_part_values = kReplyPartValues;
};

// A worker: registers with the master, then runs what it is sent. For each job it parses the
// spec, loads its partitions once into a cache (the master sends a partition's tasks back to the
// worker that loaded it), runs map tasks (pull the parameters from the reducer shard hosts,
// compute, push one run per shard, report to the master) and evaluation tasks, and hosts the
// reducer shards the master places on it (stores pushed runs, serves pulls, reduces a round when
// the master says every run is in, writes its checkpoint files). Gradients and parameters go
// worker to worker; the master sees only task-sized messages.
//
// Threads: transport callbacks decode and hand most work on: tasks to a compute pool of `slots`
// threads, job setup and large shard work to a second pool, so a map task waiting for its
// acknowledgements never blocks the shard work that sends them. Shard work on small shards
// (a push, pull or reduce of at most kInlineShardWorkBytes) runs on the transport thread
// itself, saving two thread hops per message, which is most of a small model's round.
class WorkerService {
 public:
  // `transport` must outlive the service (in local mode the master shares it).
  WorkerService(Transport* transport, WorkerOptions options);
  ~WorkerService();
  WorkerService(const WorkerService&) = delete;
  WorkerService& operator=(const WorkerService&) = delete;

  // Listens for the data plane, connects to the master (retrying until connect_timeout) and
  // registers. Errors: those of Listen, and kUnavailable / kFailedPrecondition (wrong secret)
  // from connecting. Stop(), called from another thread meanwhile (a signal handler's loop),
  // makes it return kUnavailable within about 50 ms, whatever it was waiting for.
  Status Start();

  // Waits up to `timeout` for the worker's end: OK when the master told it to shut down (or
  // Stop() was called), kUnavailable when the connection to the master was lost. nullopt while
  // it still runs.
  std::optional<Status> Wait(std::chrono::milliseconds timeout);

  // Closes the connections and stops the pools, failing whatever waits. Idempotent.
  void Stop();

  // The exit status the master asked for when it told this worker to shut down (0 until then,
  // and when it asked for none). A value outside 0 to 255 on the wire reads as 1.
  int requested_exit_code() const;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace mrtrain::runtime
