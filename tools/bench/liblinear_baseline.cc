#include "tools/bench/liblinear_baseline.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>

namespace mrtrain::bench {
namespace {

// Runs `command` through the shell; its standard output, or an error naming it.
Result<std::string> Capture(const std::string& command) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> pipe(popen(command.c_str(), "r"), &pclose);
  if (!pipe) return InternalError("cannot start: " + command);
  std::string output;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe.get())) > 0) output.append(buffer, n);
  if (pclose(pipe.release()) != 0) return InternalError("failed: " + command + "\n" + output);
  return output;
}

}  // namespace

bool LiblinearInstalled() {
  return std::system(
             "command -v liblinear-train >/dev/null 2>&1 && "
             "command -v liblinear-predict >/dev/null 2>&1") == 0;
}

Result<LiblinearRun> RunLiblinear(const std::string& train, const std::string& test,
                                  const std::string& model) {
  LiblinearRun run;
  const auto start = std::chrono::steady_clock::now();
  MRTRAIN_RETURN_IF_ERROR(
      Capture("liblinear-train -q -s 0 '" + train + "' '" + model + "' 2>&1").status());
  run.train_sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string predict = "liblinear-predict '" + test + "' '" + model + "' /dev/null 2>&1";
  MRTRAIN_ASSIGN_OR_RETURN(std::string output, Capture(predict));
  const std::optional<double> accuracy = ParseLiblinearAccuracy(output);
  if (!accuracy) return InternalError("no accuracy in the output of " + predict + ": " + output);
  run.test_accuracy = *accuracy;
  return run;
}

std::optional<double> ParseLiblinearAccuracy(const std::string& output) {
  const std::string key = "Accuracy = ";
  const size_t at = output.find(key);
  if (at == std::string::npos) return std::nullopt;
  const char* begin = output.c_str() + at + key.size();
  char* end = nullptr;
  const double percent = std::strtod(begin, &end);
  if (end == begin || *end != '%') return std::nullopt;
  return percent / 100;
}

}  // namespace mrtrain::bench
