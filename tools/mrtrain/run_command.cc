#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "engine/base/log.h"
#include "jobs/spec/job_spec.h"
#include "runtime/local/local_job.h"
#include "tools/mrtrain/commands.h"
#include "tools/mrtrain/progress_printer.h"

namespace mrtrain::tools {
namespace {

struct RunFlags {
  std::string spec_path;
  std::vector<std::string> overrides;
  bool resume = false;
  std::string progress = "auto";
};

int Run(const RunFlags& flags) {
  auto spec = jobs::LoadJobSpec(flags.spec_path, flags.overrides);
  if (!spec.ok()) {
    std::fprintf(stderr, "mrtrain run: %s\n", spec.status().message().c_str());
    return 2;
  }
  const bool interactive =
      flags.progress == "bar" || (flags.progress == "auto" && isatty(STDOUT_FILENO));
  ProgressPrinter printer(stdout, interactive);
  runtime::LocalRunOptions options;
  options.resume = flags.resume;
  auto result = runtime::RunLocalJob(*spec, options, &printer);
  if (!result.ok()) {
    std::fprintf(stderr, "mrtrain run: job %s failed: %s\n", spec->name.c_str(),
                 result.status().ToString().c_str());
    return 1;
  }
  if (!result->last) std::printf("job %s had already finished all epochs\n", spec->name.c_str());
  std::printf("model: %s (NumPy: %s), metrics: %s/metrics.jsonl\n", result->model_path.c_str(),
              result->npz_path.c_str(), spec->output_dir.c_str());
  return 0;
}

}  // namespace

void AddRunCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<RunFlags>();
  CLI::App* cmd =
      app.add_subcommand("run", "Train a job in local mode (all roles in this process)");
  cmd->add_option("job", flags->spec_path, "Job spec (YAML)")->required();
  cmd->add_option("--set", flags->overrides,
                  "Override a spec key, e.g. --set training.epochs=3 (repeatable)");
  cmd->add_flag("--resume", flags->resume,
                "Continue from the newest valid checkpoint in output.dir/checkpoints");
  cmd->add_option("--progress", flags->progress,
                  "auto: a bar on a terminal, one line per epoch otherwise; bar; lines")
      ->check(CLI::IsMember({"auto", "bar", "lines"}));
  cmd->callback([flags, exit_code] { *exit_code = Run(*flags); });
}

}  // namespace mrtrain::tools
