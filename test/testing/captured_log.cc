#include "test/testing/captured_log.h"

#include <algorithm>

#include "engine/base/log.h"

namespace mrtrain::testing {

CapturedLog::CapturedLog(const std::string& logger, spdlog::level::level_enum level)
    : logger_(logger), sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)) {
  sink_->set_pattern("%l %v");
  sink_->set_level(level);
  auto log = Logger(logger_);
  saved_level_ = log->level();
  log->set_level(std::min(level, saved_level_));
  log->sinks().push_back(sink_);
}

CapturedLog::~CapturedLog() {
  auto log = Logger(logger_);
  auto& sinks = log->sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  log->set_level(saved_level_);
}

}  // namespace mrtrain::testing
