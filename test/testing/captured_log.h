#pragma once

#include <memory>
#include <sstream>
#include <string>

#include <spdlog/common.h>
#include <spdlog/sinks/ostream_sink.h>

namespace mrtrain::testing {

// Copies what one of the engine's named loggers ("master", "worker", "checkpoint", ...) writes
// at `level` and above while it lives, one "LEVEL message" line each (e.g. "warning job 1 ...").
// The logger's own level is lowered to `level` meanwhile and restored after. Not for two at once
// on the same logger.
class CapturedLog {
 public:
  explicit CapturedLog(const std::string& logger,
                       spdlog::level::level_enum level = spdlog::level::info);
  ~CapturedLog();
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;

  // REQUIRES: nothing logs to the logger meanwhile.
  std::string text() const { return out_.str(); }

 private:
  const std::string logger_;
  std::ostringstream out_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
  spdlog::level::level_enum saved_level_;
};

}  // namespace mrtrain::testing
