// `mrtrain launch JOB.yaml`: one command for every process a cluster launcher starts (srun,
// mpirun, a Kubernetes indexed Job). Rank 0 runs the master and submits the job; the others
// run workers; every process exits when the job ends, with the job's exit status.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "runtime/checkpoint/atomic_file.h"
#include "runtime/master/master_service.h"
#include "tools/launch/launch_env.h"
#include "tools/launch/process_group.h"
#include "tools/mrtrain/cluster_flags.h"
#include "tools/mrtrain/commands.h"
#include "tools/mrtrain/progress_printer.h"
#include "tools/mrtrain/submit_client.h"
#include "tools/mrtrain/worker_command.h"

namespace mrtrain::tools {
namespace {

using namespace std::chrono_literals;

struct LaunchFlags {
  ClusterFlags cluster;
  std::string spec_path;
  std::vector<std::string> overrides;
  bool resume = false;
  std::string progress = "lines";
  int port = kDefaultMasterPort;
  std::string master_host;
  std::string rendezvous;
  int slots = 0;
  int worker_wait_sec = 300;
  int64_t memory_budget_mb = runtime::kDefaultMemoryBudgetBytes >> 20;
};

constexpr char kAddressFileName[] = "master.address";

std::string ThisHost() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

// Rank 0: the master, listening where the workers look for it, and the job's submitter.
int RunMasterRank(const LaunchFlags& flags, const LaunchRole& role) {
  ScopedSignalForwarding signals;
  auto fail = [](int code, const Status& s) {
    std::fprintf(stderr, "mrtrain launch: %s\n", s.ToString().c_str());
    return code;
  };
  auto job = ReadJob(flags.spec_path, flags.overrides, flags.resume);
  if (!job.ok()) return fail(2, job.status());
  const std::string advertised_host = !flags.master_host.empty()  ? flags.master_host
                                      : !role.master_host.empty() ? role.master_host
                                                                  : ThisHost();
  const std::string address_file =
      flags.rendezvous.empty() ? "" : flags.rendezvous + "/" + kAddressFileName;
  if (!address_file.empty() && std::filesystem::exists(address_file)) {
    // A worker could read it before this run replaces it, and look for a master long gone.
    return fail(
        2, FailedPreconditionError(address_file + " exists, left by an earlier launch: "
                                                  "give each launch an empty --rendezvous folder"));
  }
  auto transport = MakeClusterTransport(flags.cluster);
  if (!transport.ok()) return fail(2, transport.status());
  runtime::MasterOptions options;
  const bool loopback = IsLoopback(advertised_host + ":0");
  options.listen_address =
      std::string(loopback ? "127.0.0.1:" : "0.0.0.0:") + std::to_string(flags.port);
  options.min_workers = role.size - 1;
  options.worker_wait = std::chrono::seconds(flags.worker_wait_sec);
  runtime::MasterService master(transport->get(), options);
  auto bound = master.Start();
  if (!bound.ok()) return fail(1, bound.status().WithContext("rank 0 of " + role.launcher));
  const std::string port = bound->substr(bound->rfind(':') + 1);
  const std::string advertised = advertised_host + ":" + port;
  std::printf("mrtrain launch (%s, %d processes): master on %s\n", role.launcher.c_str(), role.size,
              advertised.c_str());
  std::fflush(stdout);
  if (!address_file.empty()) {
    Status written = runtime::WriteFileAtomically(address_file, advertised);
    if (!written.ok()) {
      master.Stop(/*shutdown_workers=*/true, 1);
      (*transport)->Stop();
      return fail(1, written);
    }
  }
  JobOutcome outcome{1, ""};
  auto client = MakeClusterTransport(flags.cluster);
  if (client.ok()) {
    ProgressPrinter printer(stdout, flags.progress == "bar");
    outcome = FollowJob(**client, "127.0.0.1:" + port, std::move(*job), printer, &signals);
    (*client)->Stop();
  } else {
    outcome.summary = client.status().ToString();
  }
  // The workers exit with the job's status too: each reports how the job ended.
  master.Stop(/*shutdown_workers=*/true, outcome.exit_code);
  (*transport)->Stop();
  if (!address_file.empty()) std::remove(address_file.c_str());
  std::fprintf(outcome.exit_code == 0 ? stdout : stderr, "%s\n", outcome.summary.c_str());
  return outcome.exit_code;
}

// Waits for rank 0 to write its address into the rendezvous folder.
Result<std::string> WaitForRendezvous(const std::string& dir, std::chrono::seconds bound) {
  const std::string path = dir + "/" + kAddressFileName;
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < bound) {
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (f != nullptr) {
      char buffer[512] = {};
      const size_t n = std::fread(buffer, 1, sizeof(buffer) - 1, f);
      std::fclose(f);
      if (n > 0) return std::string(buffer, n);  // written atomically: whole or absent
    }
    std::this_thread::sleep_for(50ms);
  }
  return DeadlineExceededError("rank 0 wrote no " + path + " within " +
                               std::to_string(bound.count()) + " s (--worker-wait)");
}

// The master's HOST:PORT for a worker rank: the rendezvous folder's when given, else
// --master-host, else the launcher's, else $MASTER_ADDR; with --port.
Result<std::string> MasterFor(const LaunchFlags& flags, const LaunchRole& role) {
  const std::string port = std::to_string(flags.port);
  if (!flags.master_host.empty() && flags.rendezvous.empty()) return flags.master_host + ":" + port;
  if (!role.master_host.empty() && flags.rendezvous.empty()) return role.master_host + ":" + port;
  if (!flags.rendezvous.empty()) {
    return WaitForRendezvous(flags.rendezvous, std::chrono::seconds(flags.worker_wait_sec));
  }
  // The port is --port's on every rank (rank 0 listens there), whatever $MASTER_PORT says.
  if (const char* host = std::getenv("MASTER_ADDR")) return std::string(host) + ":" + port;
  return InvalidArgumentError(
      role.launcher +
      " does not tell where rank 0 runs: give --master-host HOST (with a fixed "
      "--port), set $MASTER_ADDR, or give --rendezvous DIR, a folder every process can read");
}

int Launch(const LaunchFlags& flags) {
  auto role = DetectLaunchRole([](const char* name) { return std::getenv(name); });
  if (!role.ok()) {
    std::fprintf(stderr, "mrtrain launch: %s\n", role.status().message().c_str());
    return 2;
  }
  if (flags.port == 0 && flags.rendezvous.empty()) {
    std::fprintf(stderr,
                 "mrtrain launch: --port 0 needs --rendezvous DIR (the workers must "
                 "learn the port rank 0 was given)\n");
    return 2;
  }
  if (role->rank == 0) return RunMasterRank(flags, *role);
  auto master = MasterFor(flags, *role);
  if (!master.ok()) {
    std::fprintf(stderr, "mrtrain launch: rank %d: %s\n", role->rank,
                 master.status().message().c_str());
    return 2;
  }
  WorkerFlags worker;
  worker.cluster = flags.cluster;
  worker.master = *master;
  worker.slots = flags.slots;
  worker.name = role->launcher + "-" + std::to_string(role->rank);
  worker.memory_budget_mb = flags.memory_budget_mb;
  worker.connect_sec = flags.worker_wait_sec;  // pods and tasks may start minutes apart
  worker.reconnect_sec = 0;  // the launch ends with its master: no master, nothing to do
  return RunWorker(worker);
}

}  // namespace

void AddLaunchCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<LaunchFlags>();
  CLI::App* cmd = app.add_subcommand(
      "launch",
      "Run one process of a Slurm, Open MPI or Kubernetes launch: rank 0 is the master and "
      "submits the job, the others are workers (see docs/launch.md)");
  cmd->add_option("job", flags->spec_path, "Job spec (YAML)")->required();
  cmd->add_option("--set", flags->overrides,
                  "Override a spec key, e.g. --set training.epochs=3 (repeatable)");
  cmd->add_flag("--resume", flags->resume,
                "Continue from the newest valid checkpoint in output.dir/checkpoints");
  cmd->add_option("--progress", flags->progress, "lines (default) or bar, on rank 0")
      ->check(CLI::IsMember({"bar", "lines"}));
  cmd->add_option("--port", flags->port,
                  "The master's port (0: any free one, announced through --rendezvous)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--master-host", flags->master_host,
                  "Where rank 0 runs, when the launcher does not say (Open MPI)");
  cmd->add_option("--rendezvous", flags->rendezvous,
                  "A folder every process can read (shared file system): rank 0 writes its "
                  "address there, the workers wait for it");
  cmd->add_option("--slots", flags->slots, "Tasks a worker runs at once (default: its cores)");
  cmd->add_option("--worker-wait", flags->worker_wait_sec,
                  "Seconds the job waits for every worker, and a worker for its master")
      ->check(CLI::Range(1, 86400));
  cmd->add_option("--memory-budget-mb", flags->memory_budget_mb,
                  "As for `mrtrain worker`: MiB of decoded rows of cache: disk sets kept")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  AddClusterFlags(cmd, &flags->cluster);
  AddListenFlags(cmd, &flags->cluster);
  cmd->callback([flags, exit_code] { *exit_code = Launch(*flags); });
}

}  // namespace mrtrain::tools
