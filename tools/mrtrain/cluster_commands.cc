// The cluster's commands: master, worker, submit and status.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/base/log.h"
#include "runtime/checkpoint/atomic_file.h"
#include "runtime/failpoint/failpoint.h"
#include "runtime/http/http_server.h"
#include "runtime/master/master_service.h"
#include "runtime/worker/worker_service.h"
#include "tools/launch/process_group.h"
#include "tools/mrtrain/cluster_flags.h"
#include "tools/mrtrain/commands.h"
#include "tools/mrtrain/progress_printer.h"
#include "tools/mrtrain/submit_client.h"
#include "tools/mrtrain/worker_command.h"

namespace mrtrain::tools {
namespace {

using namespace std::chrono_literals;

struct MasterFlags {
  ClusterFlags cluster;
  std::string listen = "0.0.0.0:7070";
  std::string address_file;
  int worker_wait_sec = 60;
  int min_workers = 1;
  std::string plugin_cache;
  int64_t heartbeat_ms = 1000;
  int64_t heartbeat_timeout_ms = 10000;
  int64_t step_timeout_ms = 600000;
  double speculation_multiple = 2.0;
  int64_t speculation_min_ms = 200;
  std::string state_dir;
  std::string recover_dir;
  std::string http_listen;
  std::string http_address_file;
};

// What the status server reads of the master.
class MasterStatusSource : public runtime::StatusSource {
 public:
  explicit MasterStatusSource(const runtime::MasterService* master) : master_(master) {}
  std::string StatusJson() const override { return master_->StatusJson(); }
  std::optional<std::string> HistoryJson(uint64_t job_id) const override {
    return master_->HistoryJson(job_id);
  }
  std::string MetricsText() const override { return master_->MetricsText(); }

 private:
  const runtime::MasterService* const master_;
};

// Starts the status server when --http-listen is given: prints its address and writes it to
// --http-address-file. Returns null when it is not asked for; an error when it cannot start.
Result<std::unique_ptr<runtime::HttpServer>> StartStatusServer(
    const MasterFlags& flags, const runtime::StatusSource* source) {
  if (flags.http_listen.empty()) return std::unique_ptr<runtime::HttpServer>();
  runtime::HttpServerOptions options;
  options.listen = flags.http_listen;
  auto server = std::make_unique<runtime::HttpServer>(source, options);
  MRTRAIN_ASSIGN_OR_RETURN(std::string address, server->Start());
  std::printf("status page on http://%s/ (API: /api/status, metrics: /metrics)\n", address.c_str());
  std::fflush(stdout);
  if (!flags.http_address_file.empty()) {
    MRTRAIN_RETURN_IF_ERROR(runtime::WriteFileAtomically(flags.http_address_file, address));
  }
  return server;
}

int Master(const MasterFlags& flags) {
  ScopedSignalForwarding signals;
  auto transport = MakeClusterTransport(flags.cluster);
  if (!transport.ok()) {
    std::fprintf(stderr, "mrtrain master: %s\n", transport.status().message().c_str());
    return 2;
  }
  runtime::MasterOptions options;
  options.listen_address = flags.listen;
  options.worker_wait = std::chrono::seconds(flags.worker_wait_sec);
  options.min_workers = flags.min_workers;
  options.heartbeat_interval = std::chrono::milliseconds(flags.heartbeat_ms);
  options.heartbeat_timeout = std::chrono::milliseconds(flags.heartbeat_timeout_ms);
  options.plugin_cache_dir = flags.plugin_cache;
  options.step_timeout = std::chrono::milliseconds(flags.step_timeout_ms);
  options.speculation_multiple = flags.speculation_multiple;
  options.speculation_min = std::chrono::milliseconds(flags.speculation_min_ms);
  options.state_dir = !flags.recover_dir.empty() ? flags.recover_dir : flags.state_dir;
  options.recover = !flags.recover_dir.empty();
  runtime::MasterService master(transport->get(), options);
  auto address = master.Start();
  if (!address.ok()) {
    std::fprintf(stderr, "mrtrain master: %s\n", address.status().ToString().c_str());
    return 1;
  }
  std::printf("master listening on %s\n", address->c_str());
  std::fflush(stdout);
  if (!flags.address_file.empty()) {
    Status written = runtime::WriteFileAtomically(flags.address_file, *address);
    if (!written.ok()) {
      std::fprintf(stderr, "mrtrain master: %s\n", written.ToString().c_str());
      return 1;
    }
  }
  MasterStatusSource source(&master);
  auto http = StartStatusServer(flags, &source);
  if (!http.ok()) {
    std::fprintf(stderr, "mrtrain master: %s\n", http.status().ToString().c_str());
    master.Stop();
    return 1;
  }
  while (signals.received_signal() == 0) std::this_thread::sleep_for(100ms);
  if (*http) (*http)->Stop();
  master.Stop(/*shutdown_workers=*/true);
  (*transport)->Stop();
  return 0;
}

}  // namespace

int RunWorker(const WorkerFlags& flags) {
  ScopedSignalForwarding signals;
  // json log lines name the worker as the master does (WorkerService's default: host:pid).
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) std::snprintf(host, sizeof(host), "worker");
  SetLogProcess("worker", flags.name.empty() ? std::string(host) + ":" + std::to_string(getpid())
                                             : flags.name);
  Status faults = flags.failpoints.empty() ? runtime::failpoint::ConfigureFromEnv()
                                           : runtime::failpoint::Configure(flags.failpoints);
  if (!faults.ok()) {
    std::fprintf(stderr, "mrtrain worker: --failpoints: %s\n", faults.message().c_str());
    return 2;
  }
  auto master = MasterAddress(flags.master);
  if (!master.ok()) {
    std::fprintf(stderr, "mrtrain worker: %s\n", master.status().message().c_str());
    return 2;
  }
  auto transport = MakeClusterTransport(flags.cluster);
  if (!transport.ok()) {
    std::fprintf(stderr, "mrtrain worker: %s\n", transport.status().message().c_str());
    return 2;
  }
  runtime::WorkerOptions options;
  options.master_address = *master;
  // Other workers must reach this one's data plane: on a cluster every interface (the master
  // tells them the address it sees us on), on loopback only loopback.
  options.data_address = !flags.listen.empty() ? flags.listen
                         : IsLoopback(*master) ? "127.0.0.1:0"
                                               : "0.0.0.0:0";
  options.slots = flags.slots;
  options.name = flags.name;
  options.plugin_cache_dir = flags.plugin_cache;
  options.push_budget_bytes = static_cast<size_t>(flags.push_budget_kb) << 10;
  options.keep_budget_bytes = static_cast<size_t>(flags.keep_budget_mb) << 20;
  options.spill_dir = flags.spill_dir;
  options.memory_budget_bytes = static_cast<size_t>(flags.memory_budget_mb) << 20;
  bool registered_once = false;
  while (true) {
    // After losing the master the worker registers again, with a fresh state, for as long as
    // --reconnect-sec allows: a master restarted with --recover finds its workers back.
    options.connect_timeout =
        std::chrono::seconds(registered_once ? flags.reconnect_sec : flags.connect_sec);
    runtime::WorkerService worker(transport->get(), options);
    // Registering may take up to --reconnect-sec: it runs on its own thread so that a signal
    // stops it (Stop() makes Start() return) instead of waiting for it to give up.
    std::future<Status> starting =
        std::async(std::launch::async, [&worker] { return worker.Start(); });
    bool stopping = false;
    while (starting.wait_for(50ms) != std::future_status::ready) {
      if (!stopping && signals.received_signal() != 0) {
        stopping = true;
        worker.Stop();
      }
    }
    Status started = starting.get();
    if (signals.received_signal() != 0) {
      worker.Stop();
      (*transport)->Stop();
      return 0;
    }
    if (!started.ok()) {
      worker.Stop();
      (*transport)->Stop();
      std::fprintf(stderr, "mrtrain worker: %s\n", started.ToString().c_str());
      return 1;
    }
    registered_once = true;
    std::optional<Status> ended;
    while (!ended && signals.received_signal() == 0) ended = worker.Wait(100ms);
    worker.Stop();
    const bool lost_master = ended && !ended->ok();
    if (!lost_master || flags.reconnect_sec <= 0 || signals.received_signal() != 0) {
      (*transport)->Stop();
      if (lost_master) {
        std::fprintf(stderr, "mrtrain worker: %s\n", ended->ToString().c_str());
        return 1;
      }
      // Told to stop by its master: with the status it asked for (a launcher's job's).
      return ended ? worker.requested_exit_code() : 0;
    }
    std::fprintf(stderr, "mrtrain worker: %s; registering again\n", ended->ToString().c_str());
  }
}

namespace {

struct SubmitFlags {
  ClusterFlags cluster;
  std::string master;
  std::string spec_path;
  std::vector<std::string> overrides;
  bool resume = false;
  std::string progress = "auto";
};

int Submit(const SubmitFlags& flags) {
  ScopedSignalForwarding signals;
  auto master = MasterAddress(flags.master);
  auto job = ReadJob(flags.spec_path, flags.overrides, flags.resume);
  if (!master.ok() || !job.ok()) {
    std::fprintf(stderr, "mrtrain submit: %s\n",
                 (master.ok() ? job.status() : master.status()).message().c_str());
    return 2;
  }
  auto transport = MakeClusterTransport(flags.cluster);
  if (!transport.ok()) {
    std::fprintf(stderr, "mrtrain submit: %s\n", transport.status().message().c_str());
    return 2;
  }
  ProgressPrinter printer(
      stdout, flags.progress == "bar" || (flags.progress == "auto" && isatty(STDOUT_FILENO)));
  JobOutcome outcome = FollowJob(**transport, *master, std::move(*job), printer, &signals);
  (*transport)->Stop();
  std::fprintf(outcome.exit_code == 0 ? stdout : stderr, "%s\n", outcome.summary.c_str());
  return outcome.exit_code;
}

struct StatusFlags {
  ClusterFlags cluster;
  std::string master;
  bool json = false;
};

int PrintStatus(const StatusFlags& flags) {
  auto master = MasterAddress(flags.master);
  if (!master.ok()) {
    std::fprintf(stderr, "mrtrain status: %s\n", master.status().message().c_str());
    return 2;
  }
  auto transport = MakeClusterTransport(flags.cluster);
  if (!transport.ok()) {
    std::fprintf(stderr, "mrtrain status: %s\n", transport.status().message().c_str());
    return 2;
  }
  auto status = QueryStatus(**transport, *master);
  (*transport)->Stop();
  if (!status.ok()) {
    std::fprintf(stderr, "mrtrain status: %s\n", status.status().ToString().c_str());
    return 1;
  }
  if (flags.json) {
    std::printf("%s\n", status->c_str());
    return 0;
  }
  const nlohmann::json j = nlohmann::json::parse(*status, nullptr, false);
  if (!j.is_object()) {
    std::fprintf(stderr, "mrtrain status: the master sent no JSON object\n");
    return 1;
  }
  std::printf(
      "master %s: %zu workers, %zu jobs; %lld recoveries, %lld backup attempts, %lld "
      "late or duplicate results dropped\n",
      master->c_str(), j["workers"].size(), j["jobs"].size(),
      static_cast<long long>(j.value("recoveries", 0LL)),
      static_cast<long long>(j.value("backup_tasks", 0LL)),
      static_cast<long long>(j.value("dropped_results", 0LL)));
  for (const auto& w : j["workers"]) {
    std::printf("  worker %d  %-24s slots=%d  data=%s\n", w.value("id", 0),
                w.value("name", std::string()).c_str(), w.value("slots", 0),
                w.value("data_address", std::string()).c_str());
  }
  for (const auto& job : j["jobs"]) {
    std::printf("  job %d  %-24s %-9s epochs %lld/%lld%s%s\n", job.value("id", 0),
                job.value("name", std::string()).c_str(), job.value("state", std::string()).c_str(),
                static_cast<long long>(job.value("epochs_done", 0LL)),
                static_cast<long long>(job.value("epochs", 0LL)), job.contains("error") ? "  " : "",
                job.value("error", std::string()).c_str());
  }
  return 0;
}

}  // namespace

void AddClusterCommands(CLI::App& app, int* exit_code) {
  auto master = std::make_shared<MasterFlags>();
  CLI::App* m = app.add_subcommand("master", "Run a master: workers register, jobs are submitted");
  m->add_option("--listen", master->listen, "HOST:PORT to listen on (port 0 picks a free one)");
  m->add_option("--address-file", master->address_file,
                "Write the bound HOST:PORT here once listening (for scripts)");
  m->add_option("--min-workers", master->min_workers, "Workers a job waits for before it starts")
      ->check(CLI::Range(1, 100000));
  m->add_option("--worker-wait", master->worker_wait_sec,
                "Seconds a job waits for --min-workers workers before it fails");
  m->add_option("--heartbeat-ms", master->heartbeat_ms, "How often workers send a heartbeat")
      ->check(CLI::Range(int64_t{10}, int64_t{3600000}));
  m->add_option("--heartbeat-timeout-ms", master->heartbeat_timeout_ms,
                "A worker silent this long is lost and its tasks re-run (0: never)")
      ->check(CLI::Range(int64_t{0}, int64_t{86400000}));
  m->add_option("--plugin-cache", master->plugin_cache,
                "Where shipped plugin libraries are kept (default: ~/.cache/mrtrain/plugins)");
  m->add_option("--step-timeout-ms", master->step_timeout_ms,
                "Bound on each step of a job; workers it still waits for then are declared lost")
      ->check(CLI::Range(int64_t{100}, int64_t{86400000}));
  m->add_option("--speculation-multiple", master->speculation_multiple,
                "A task running this many times its round's median gets a backup attempt "
                "(0: never)")
      ->check(CLI::Range(0.0, 1000.0));
  m->add_option("--speculation-min-ms", master->speculation_min_ms, "... and at least this long")
      ->check(CLI::Range(int64_t{0}, int64_t{86400000}));
  m->add_option("--state-dir", master->state_dir,
                "Record unfinished jobs here, for a later --recover");
  m->add_option("--recover", master->recover_dir,
                "Resume the unfinished jobs recorded in this --state-dir (and keep recording)");
  m->add_option("--http-listen", master->http_listen,
                "Serve the read-only status page, JSON API and /metrics on PORT or HOST:PORT "
                "(a bare port binds 127.0.0.1; port 0 picks one; default: off)");
  m->add_option("--http-address-file", master->http_address_file,
                "Write the status page's bound HOST:PORT here once listening (for scripts)");
  AddClusterFlags(m, &master->cluster);
  AddListenFlags(m, &master->cluster);
  m->callback([master, exit_code] { *exit_code = Master(*master); });

  auto worker = std::make_shared<WorkerFlags>();
  CLI::App* w = app.add_subcommand("worker", "Run a worker for a master");
  w->add_option("--master", worker->master,
                "The master's HOST:PORT; else $MASTER_ADDR:$MASTER_PORT");
  w->add_option("--listen", worker->listen,
                "HOST:PORT for the data plane (default: any port, all interfaces; loopback "
                "when the master is on loopback)");
  w->add_option("--slots", worker->slots, "Tasks run at once (default: the number of cores)");
  w->add_option("--name", worker->name, "Name on the status page (default: host:pid)");
  w->add_option("--push-budget-kb", worker->push_budget_kb,
                "KiB of shuffle pushes sent and not yet acknowledged before tasks wait")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  w->add_option("--plugin-cache", worker->plugin_cache,
                "Where shipped plugin libraries are kept (default: ~/.cache/mrtrain/plugins)");
  w->add_option("--keep-budget-mb", worker->keep_budget_mb,
                "MiB of map output kept in memory until its epoch's checkpoint commits (for "
                "replays after a lost reducer shard); beyond it output is spilled to disk")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  w->add_option(
       "--memory-budget-mb", worker->memory_budget_mb,
       "MiB of decoded rows of the data sets with cache: disk kept in memory between the tasks "
       "that use them (shared by those sets; partitions in use are resident besides)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  w->add_option("--spill-dir", worker->spill_dir,
                "Where kept map output is spilled (default: the temporary folder)");
  w->add_option("--reconnect-sec", worker->reconnect_sec,
                "After losing the master, keep trying to register again this long (0: exit)")
      ->check(CLI::Range(int64_t{0}, int64_t{86400}));
  w->add_option("--failpoints", worker->failpoints,
                "Fault injection for tests (see runtime/failpoint/failpoint.h); also "
                "$MRTRAIN_FAILPOINTS");
  AddClusterFlags(w, &worker->cluster);
  AddListenFlags(w, &worker->cluster);
  w->callback([worker, exit_code] { *exit_code = RunWorker(*worker); });

  auto submit = std::make_shared<SubmitFlags>();
  CLI::App* s = app.add_subcommand("submit", "Run a job on a cluster and follow it");
  s->add_option("job", submit->spec_path, "Job spec (YAML)")->required();
  s->add_option("--master", submit->master,
                "The master's HOST:PORT; else $MASTER_ADDR:$MASTER_PORT");
  s->add_option("--set", submit->overrides, "Override a spec key (repeatable)");
  s->add_flag("--resume", submit->resume,
              "Continue from the newest valid checkpoint in output.dir/checkpoints");
  s->add_option("--progress", submit->progress, "auto, bar or lines")
      ->check(CLI::IsMember({"auto", "bar", "lines"}));
  AddClusterFlags(s, &submit->cluster);
  s->callback([submit, exit_code] { *exit_code = Submit(*submit); });

  auto status = std::make_shared<StatusFlags>();
  CLI::App* st = app.add_subcommand("status", "List a master's workers and jobs");
  st->add_option("--master", status->master,
                 "The master's HOST:PORT; else $MASTER_ADDR:$MASTER_PORT");
  st->add_flag("--json", status->json, "Print the master's JSON as it is");
  AddClusterFlags(st, &status->cluster);
  st->callback([status, exit_code] { *exit_code = PrintStatus(*status); });
}

}  // namespace mrtrain::tools
