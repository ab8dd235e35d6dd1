#include "tools/bench/cluster_bench.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>

#include <climits>

#include "runtime/failpoint/failpoint.h"
#include "runtime/job/shipped_job.h"
#include "runtime/master/master_service.h"
#include "runtime/protocol/handshake.h"
#include "runtime/transport/tcp_transport.h"
#include "runtime/worker/worker_service.h"
#include "tools/launch/process_group.h"

namespace mrtrain::bench {
namespace {

constexpr char kSecretEnv[] = "MRTRAIN_SECRET";

class Collector : public runtime::JobListener {
 public:
  void OnEpoch(const runtime::EpochReport& r) override {
    seconds.push_back(r.train_sec);
    reports.push_back(r);
    reports.back().elapsed_sec =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - created).count();
  }
  void OnFinished(const Status& status, const runtime::TrainingResult*) override {
    done.set_value(status);
  }
  std::vector<double> seconds;
  std::vector<runtime::EpochReport> reports;
  const std::chrono::steady_clock::time_point created = std::chrono::steady_clock::now();
  std::promise<Status> done;
};

Result<std::unique_ptr<runtime::Transport>> Transport(const std::string& secret) {
  runtime::TcpOptions options;
  options.handshake.secret = secret;
  return runtime::MakeTcpTransport(options);
}

}  // namespace

Result<std::vector<double>> TrainOnLoopbackCluster(const jobs::JobSpec& spec, int workers,
                                                   int slots,
                                                   const std::string& last_worker_failpoints,
                                                   int64_t* backups, double* job_sec,
                                                   std::vector<runtime::EpochReport>* reports) {
  MRTRAIN_ASSIGN_OR_RETURN(std::string secret, runtime::GenerateClusterSecret());
  MRTRAIN_ASSIGN_OR_RETURN(auto transport, Transport(secret));
  runtime::MasterOptions options;
  options.listen_address = "127.0.0.1:0";
  options.min_workers = workers;
  runtime::MasterService master(transport.get(), options);
  MRTRAIN_ASSIGN_OR_RETURN(std::string address, master.Start());

  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return IOError("cannot find /proc/self/exe");
  tools::ProcessGroup group;
  for (int w = 0; w < workers; ++w) {
    std::vector<std::string> env = {std::string(kSecretEnv) + "=" + secret, "MRTRAIN_FAILPOINTS="};
    if (w + 1 == workers) env.back() += last_worker_failpoints;
    MRTRAIN_RETURN_IF_ERROR(
        group
            .Spawn({std::string(self, n), kWorkerFlag, address, "--slots", std::to_string(slots)},
                   env, "")
            .status());
  }
  auto collector = std::make_shared<Collector>();
  auto done = collector->done.get_future();
  const auto submitted = std::chrono::steady_clock::now();
  master.Submit(runtime::JobTextOf(spec, std::filesystem::current_path().string(), false),
                collector);
  Status status = done.get();  // the master bounds every step
  if (job_sec) {
    *job_sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - submitted).count();
  }
  if (backups) {
    *backups = nlohmann::json::parse(master.StatusJson()).value("backup_tasks", int64_t{0});
  }
  master.Stop(/*shutdown_workers=*/true);
  transport->Stop();
  MRTRAIN_RETURN_IF_ERROR(group.StopAll(std::chrono::seconds(5)));
  MRTRAIN_RETURN_IF_ERROR(status);
  if (reports) *reports = collector->reports;
  return collector->seconds;
}

int ServeAsWorker(const std::string& master_address, int slots) {
  const char* secret = std::getenv(kSecretEnv);
  auto transport = Transport(secret ? secret : "");
  if (!transport.ok()) {
    std::fprintf(stderr, "bench worker: %s\n", transport.status().ToString().c_str());
    return 1;
  }
  Status faults = runtime::failpoint::ConfigureFromEnv();
  if (!faults.ok()) {
    std::fprintf(stderr, "bench worker: %s\n", faults.ToString().c_str());
    return 1;
  }
  runtime::WorkerOptions options;
  options.master_address = master_address;
  options.data_address = "127.0.0.1:0";
  options.slots = slots;
  runtime::WorkerService worker(transport->get(), options);
  Status started = worker.Start();
  if (!started.ok()) {
    std::fprintf(stderr, "bench worker: %s\n", started.ToString().c_str());
    return 1;
  }
  std::optional<Status> ended;
  while (!ended) ended = worker.Wait(std::chrono::seconds(1));
  worker.Stop();
  (*transport)->Stop();
  return 0;
}

}  // namespace mrtrain::bench
