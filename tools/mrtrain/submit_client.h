#pragma once

#include <string>

#include "engine/base/status.h"
#include "runtime/master/training_loop.h"
#include "runtime/protocol/messages.h"
#include "runtime/transport/transport.h"
#include "tools/launch/process_group.h"

namespace mrtrain::tools {

// What a followed job ended with.
struct JobOutcome {
  int exit_code = 1;    // 0 succeeded, 1 failed, 128 + signal when interrupted
  std::string summary;  // the line to print: where the model is, or why the job failed
};

// Submits `job` to the master at `address` and follows it to its end, passing the master's
// round and epoch reports to `observer`. A signal seen by `interrupt` (may be null) cancels
// the job. Every wait is bounded: losing the master ends the wait with an error.
JobOutcome FollowJob(runtime::Transport& transport, const std::string& address,
                     runtime::msg::JobSpecText job, runtime::TrainingObserver& observer,
                     const ScopedSignalForwarding* interrupt);

// Asks the master at `address` for its workers and jobs; returns its JSON.
Result<std::string> QueryStatus(runtime::Transport& transport, const std::string& address);

// The JobSpecText for a spec file as the user named it: its text, overrides and this
// process's working directory, so every node resolves relative paths as the user meant.
Result<runtime::msg::JobSpecText> ReadJob(const std::string& path,
                                          const std::vector<std::string>& overrides,
                                          bool resume);

}  // namespace mrtrain::tools
