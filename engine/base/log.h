#pragma once

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

}  // namespace mrtrain
