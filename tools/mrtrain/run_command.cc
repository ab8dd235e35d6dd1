#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <climits>
#include <thread>

#include "engine/base/log.h"
#include "jobs/spec/job_spec.h"
#include "runtime/local/local_job.h"
#include "runtime/protocol/handshake.h"
#include "tools/launch/process_group.h"
#include "tools/mrtrain/cluster_flags.h"
#include "tools/mrtrain/commands.h"
#include "tools/mrtrain/progress_printer.h"
#include "tools/mrtrain/submit_client.h"

namespace mrtrain::tools {
namespace {

struct RunFlags {
  std::string spec_path;
  std::vector<std::string> overrides;
  bool resume = false;
  std::string progress = "auto";
  int workers = 0;
  std::string log_level = "warn";
  int64_t memory_budget_mb = runtime::kDefaultMemoryBudgetBytes >> 20;
};

// This binary, to start the master and workers from.
Result<std::string> SelfPath() {
  char path[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return IOError("cannot find this program's path in /proc/self/exe");
  return std::string(path, static_cast<size_t>(n));
}

// `run --workers N`: a master and N worker processes on loopback with a secret made for the
// run, the job submitted to them, and every process reaped at the end or on Ctrl-C.
int RunOnLoopback(const RunFlags& flags, ProgressPrinter& printer) {
  ScopedSignalForwarding signals;  // first: it must outlive the group
  ProcessGroup group(&signals);
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "mrtrain run: %s\n", s.ToString().c_str());
    return 1;
  };
  auto job = ReadJob(flags.spec_path, flags.overrides, flags.resume);
  if (!job.ok()) {
    std::fprintf(stderr, "mrtrain run: %s\n", job.status().message().c_str());
    return 2;
  }
  auto self = SelfPath();
  auto secret = runtime::GenerateClusterSecret();
  if (!self.ok()) return fail(self.status());
  if (!secret.ok()) return fail(secret.status());
  char dir_template[] = "/tmp/mrtrain-run-XXXXXX";
  if (!mkdtemp(dir_template)) return fail(IOError("cannot create a temporary directory"));
  const std::string dir = dir_template;
  const std::string address_file = dir + "/master.address";
  // The secret travels in the environment, which only this user can read (/proc/PID/environ).
  const std::vector<std::string> env = {std::string(kSecretEnv) + "=" + *secret};
  const std::string log_flag = "--log-level=" + flags.log_level;

  auto master = group.Spawn({*self, log_flag, "master", "--listen", "127.0.0.1:0",
                             "--address-file", address_file, "--min-workers",
                             std::to_string(flags.workers)},
                            env, "");
  if (!master.ok()) return fail(master.status());
  auto address = group.WaitForFile(address_file, std::chrono::seconds(30), *master);
  std::remove(address_file.c_str());
  rmdir(dir.c_str());
  if (!address.ok()) return fail(address.status());
  const int cores = std::max(1u, std::thread::hardware_concurrency());
  const int slots = std::max(1, cores / flags.workers);
  for (int i = 0; i < flags.workers; ++i) {
    auto worker = group.Spawn({*self, log_flag, "worker", "--master", *address, "--slots",
                               std::to_string(slots), "--name", "worker-" + std::to_string(i),
                               "--memory-budget-mb", std::to_string(flags.memory_budget_mb)},
                              env, "");
    if (!worker.ok()) return fail(worker.status());
  }
  runtime::TcpOptions client;
  client.handshake.secret = *secret;
  auto transport = runtime::MakeTcpTransport(client);
  if (!transport.ok()) return fail(transport.status());
  JobOutcome outcome = FollowJob(**transport, *address, std::move(*job), printer, &signals);
  (*transport)->Stop();
  Status stopped = group.StopAll(std::chrono::seconds(5));
  if (!stopped.ok()) std::fprintf(stderr, "mrtrain run: %s\n", stopped.ToString().c_str());
  std::fprintf(outcome.exit_code == 0 ? stdout : stderr, "%s\n", outcome.summary.c_str());
  return outcome.exit_code;
}

int Run(const RunFlags& flags) {
  auto spec = jobs::LoadJobSpec(flags.spec_path, flags.overrides);
  if (!spec.ok()) {
    std::fprintf(stderr, "mrtrain run: %s\n", spec.status().message().c_str());
    return 2;
  }
  const bool interactive =
      flags.progress == "bar" || (flags.progress == "auto" && isatty(STDOUT_FILENO));
  ProgressPrinter printer(stdout, interactive);
  if (flags.workers > 0) return RunOnLoopback(flags, printer);
  runtime::LocalRunOptions options;
  options.resume = flags.resume;
  options.memory_budget_bytes = static_cast<size_t>(flags.memory_budget_mb) << 20;
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
  cmd->add_option("--workers", flags->workers,
                  "Start a master and N worker processes on loopback instead of one process")
      ->check(CLI::Range(1, 256));
  cmd->add_option("--memory-budget-mb", flags->memory_budget_mb,
                  "MiB of decoded rows of the data sets with cache: disk kept in memory (per worker) between the tasks "
                  "that use them (shared by those sets; partitions in use are resident besides)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  cmd->add_option("--worker-log-level", flags->log_level,
                  "Log level of the master and worker processes of --workers")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  cmd->callback([flags, exit_code] { *exit_code = Run(*flags); });
}

}  // namespace mrtrain::tools
