// mrtrain: the command line. Each subcommand lives in its own file; main only wires them up
// and turns what start-up libraries throw into one clear line and a non-zero exit.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

#include <CLI/CLI.hpp>

#include "engine/base/log.h"
#include "engine/base/malloc_tuning.h"
#include "tools/mrtrain/commands.h"

int main(int argc, char** argv) {
  // Under `bazel run` the process starts in the runfiles tree; relative paths in flags and
  // specs mean the user's folder, which Bazel passes here.
  if (const char* dir = std::getenv("BUILD_WORKING_DIRECTORY")) {
    if (chdir(dir) != 0) std::perror("mrtrain: chdir to BUILD_WORKING_DIRECTORY");
  }
  mrtrain::KeepFreedMemoryInProcess();
  CLI::App app{"mrtrain: a MapReduce-style distributed training engine"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  // The environment's default lets `run --workers N` pass the format on to its processes.
  const char* format_env = std::getenv("MRTRAIN_LOG_FORMAT");
  std::string log_format = format_env ? format_env : "text";
  app.add_option("--log-format", log_format,
                 "text, or json: one object per line with time, level, logger, msg, process, "
                 "worker, job, epoch and round (default: $MRTRAIN_LOG_FORMAT, else text)")
      ->check(CLI::IsMember({"text", "json"}));
  app.parse_complete_callback([&] {
    mrtrain::SetLogLevel(log_level);
    if (!mrtrain::SetLogFormat(log_format)) {
      std::fprintf(stderr, "mrtrain: MRTRAIN_LOG_FORMAT=%s: expected text or json\n",
                   log_format.c_str());
    }
    if (!app.get_subcommands().empty()) {
      mrtrain::SetLogProcess(app.get_subcommands()[0]->get_name());
    }
  });
  int exit_code = 0;
  mrtrain::tools::AddRunCommand(app, &exit_code);
  mrtrain::tools::AddValidateCommand(app, &exit_code);
  mrtrain::tools::AddPredictCommand(app, &exit_code);
  mrtrain::tools::AddConvertCommand(app, &exit_code);
  mrtrain::tools::AddClusterCommands(app, &exit_code);
  mrtrain::tools::AddLaunchCommand(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mrtrain: %s\n", e.what());
    return 1;
  }
  return exit_code;
}
