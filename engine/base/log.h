#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace mrtrain {

// One named logger per component ("engine", "data", "shuffle", "worker", "local", "master",
// "transport", "plugin", "checkpoint"). Loggers write to stderr so stdout stays for progress
// and results. Thread-safe.
std::shared_ptr<spdlog::logger> Logger(const std::string& component);

// Sets the level of every logger, present and future: "trace", "debug", "info", "warn",
// "error", "off". Unknown names leave the level unchanged and return false.
bool SetLogLevel(const std::string& level);

// The format of every logger's lines, present and future: "text" (the default:
// "2026-01-02 10:00:00.123 info [master] message") or "json", one object per line:
//   {"time":"2026-01-02T10:00:00.123Z","level":"info","logger":"master","msg":"message",
//    "process":"worker","worker":"w0","job":3,"epoch":2,"round":5}
// where process and worker come from SetLogProcess and job, epoch and round (1-based) from the
// logging thread's ScopedLogJob, each only when known. Unknown names leave the format
// unchanged and return false.
bool SetLogFormat(const std::string& format);

// What this process is, for json lines: its role ("master", "worker", "submit", ...) and, for
// a worker, its name. Call at start-up, before other threads log.
void SetLogProcess(const std::string& role, const std::string& worker = "");

// The calling thread works on `job` until the scope ends (json lines carry it); SetLogRound
// adds the epoch and round. Restores the thread's previous job, epoch and round on exit.
class ScopedLogJob {
 public:
  explicit ScopedLogJob(uint64_t job);
  ~ScopedLogJob();
  ScopedLogJob(const ScopedLogJob&) = delete;
  ScopedLogJob& operator=(const ScopedLogJob&) = delete;

 private:
  uint64_t job_;
  int64_t epoch_, round_;
};
// The calling thread's epoch and round, 1-based (0: not in one).
void SetLogRound(int64_t epoch, int64_t round);

// A log message as one json line would carry it (for tests: what SetLogFormat("json")
// writes, without the line feed).
std::string LogJsonLine(const std::string& time, const std::string& level,
                        const std::string& logger, const std::string& message);

}  // namespace mrtrain
