#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/status.h"
#include "runtime/protocol/messages.h"

namespace mrtrain::runtime {

// A job the journal lists as not finished.
struct JournalEntry {
  uint64_t id = 0;
  std::string state;  // "queued" or "running"
  int64_t epochs_done = 0;
};

// The master's record of its unfinished jobs on disk, so that a master started again with
// `--recover DIR` resumes them: each job's submitted spec (with its plugin libraries) in
// "job-<id>.msg", and "state.json" listing the unfinished jobs and the next job id. Every file
// is replaced atomically (temporary file, fsync, rename): a crash leaves the old version or
// the new one. The training state itself is in each job's checkpoints, which the resumed job
// continues from.
class JobJournal {
 public:
  explicit JobJournal(std::string dir) : dir_(std::move(dir)) {}

  // Keeps a queued job's spec. kIOError naming the file.
  Status AddJob(uint64_t id, const msg::JobSpecText& text);
  // Forgets a finished job's spec.
  void RemoveJob(uint64_t id);
  // Replaces the list of unfinished jobs. kIOError naming the file.
  Status WriteState(uint64_t next_job_id, const std::vector<JournalEntry>& unfinished);

  struct Recovered {
    uint64_t next_job_id = 1;
    std::vector<JournalEntry> jobs;         // ascending ids
    std::vector<msg::JobSpecText> texts;    // [i] for jobs[i]
  };
  // Reads what WriteState and AddJob wrote. An empty folder (no state.json) recovers nothing.
  // Errors name the file and what is wrong with it (kCorruption, kIOError).
  Result<Recovered> Load() const;

  const std::string& dir() const { return dir_; }

 private:
  std::string JobPath(uint64_t id) const;
  const std::string dir_;
};

}  // namespace mrtrain::runtime
