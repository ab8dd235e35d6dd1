// Fault tolerance end to end: a real master and worker processes on 127.0.0.1 train a job while
// a fault is injected (a failpoint, SIGKILL, SIGSTOP, a master crash), and the final model must
// be byte-identical to the same job trained without any failure. Every wait is bounded and every
// process reaped. The figures each scenario prints (its time against a failure-free run on the
// same cluster) are the ones quoted in the README.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "test/integration/cluster_harness.h"
#include "tools/faultproxy/fault_proxy.h"
#include "test/testing/temp_dir.h"

namespace mrtrain {
namespace {

using namespace std::chrono_literals;
using testing::Cluster;
using testing::kBinary;
using testing::kSecret;
using testing::ModelBytes;
using testing::Mrtrain;
using testing::Output;
using testing::TempDir;
using testing::WriteJob;
using Clock = std::chrono::steady_clock;

const char kModel[] = "{type: mlp, hidden: [32], init: xavier, block_size: 16}";
const char kShuffle[] = "{mode: hash, reducers: 2}";
const char kTraining[] = "{epochs: 3, rounds_per_epoch: 8, seed: 7}";
// Longer, so that faults at random moments land while the job runs.
const char kLongTraining[] = "{epochs: 3, rounds_per_epoch: 40, seed: 7}";

// Fast detection, so a scenario's recovery takes a second, not the defaults' ten.
const std::vector<std::string> kMasterFlags = {
    "--heartbeat-ms", "100", "--heartbeat-timeout-ms", "1000", "--step-timeout-ms", "4000",
    "--speculation-min-ms", "300"};

// "ckpt-000001.manifest": what CheckpointDir commits after an epoch.
std::string ManifestOfEpoch(int epochs_done) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "ckpt-%06d.manifest", epochs_done);
  return buf;
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

// The model of the job trained in local mode: what every faulty run must reproduce.
std::string Reference(TempDir& dir, const std::string& training = kTraining) {
  const std::string spec = WriteJob(dir, "reference", kModel, kShuffle, training);
  Output out = Mrtrain("run " + spec);
  INFO(out.text);
  REQUIRE(out.exit_code == 0);
  return ModelBytes(dir, "reference");
}

// A cluster of three workers (w0 and w1 host reducer shards 0 and 1; w2 hosts none), the
// failpoints given to worker `faulty` (-1: none).
struct FaultCluster {
  FaultCluster(TempDir& dir, int faulty, const std::string& failpoints,
               const std::vector<std::string>& master_flags = kMasterFlags,
               const std::vector<std::string>& worker_flags = {})
      : cluster(dir, 3, master_flags) {
    for (int i = 0; i < 3; ++i) {
      std::vector<std::string> flags = {"--reconnect-sec", "30"};
      flags.insert(flags.end(), worker_flags.begin(), worker_flags.end());
      if (i == faulty) flags.insert(flags.end(), {"--failpoints", failpoints});
      pids.push_back(cluster.AddWorkers(1, flags)[0]);
    }
  }
  Cluster cluster;
  std::vector<pid_t> pids;
};

struct Scenario {
  const char* name;
  int worker;  // the worker that gets the failpoint
  const char* failpoints;
};

TEST_CASE("every failpoint, at a shard host or not, ends with the failure-free model",
          "[integration][faults]") {
  TempDir dir;
  const std::string reference = Reference(dir);
  // The time of a failure-free run on such a cluster, the yardstick of recovery times.
  double healthy_sec = 0;
  {
    FaultCluster healthy(dir, -1, "");
    const auto start = Clock::now();
    Output out = healthy.cluster.Submit(WriteJob(dir, "healthy", kModel, kShuffle, kTraining));
    healthy_sec = Seconds(Clock::now() - start);
    INFO(out.text);
    REQUIRE(out.exit_code == 0);
    REQUIRE(ModelBytes(dir, "healthy") == reference);
  }
  // Epochs are 0-based in map and reduce coordinates and count epochs done in checkpoint ones.
  const Scenario scenarios[] = {
      {"crash after a map task computed", 2, "map-after-compute=crash@epoch=1,round=2"},
      {"crash of a shard host after a map task", 0, "map-after-compute=crash@epoch=1,round=2"},
      {"crash of a shard host mid-shuffle", 1, "shuffle-mid-send=crash@epoch=1,round=3,shard=1"},
      {"crash of a shard host before it commits a reduce", 1,
       "reduce-before-commit=crash@epoch=2,round=1"},
      {"crash of a shard host mid-checkpoint", 0, "checkpoint-mid-write=crash@epoch=2"},
      {"a map task that hangs", 2, "map-after-compute=hang@epoch=1,round=1"},
      {"a map task delayed 1.5 s", 2, "map-after-compute=delay(1500)@epoch=0,round=3"},
      {"a map task's output dropped", 2, "map-after-compute=drop@epoch=2,round=0"},
      {"a push dropped", 2, "shuffle-mid-send=drop@epoch=1,round=1,shard=0"},
      {"a push corrupted", 2, "shuffle-mid-send=corrupt@epoch=1,round=2,shard=1,times=1"},
      {"a pull's reply dropped", 0, "pull-before-reply=drop@shard=0,times=1"},
      {"a reduce that hangs", 1, "reduce-before-commit=hang@epoch=1,round=2"},
      {"a reduce dropped", 0, "reduce-before-commit=drop@epoch=1,round=4"},
      {"a checkpoint file corrupted", 0, "checkpoint-mid-write=corrupt@epoch=1,times=1"},
      {"a checkpoint file lost", 1, "checkpoint-mid-write=drop@epoch=2,times=1"},
  };
  int identical = 0;
  std::printf("%-50s %8s %8s %9s %7s\n", "scenario", "seconds", "over", "recovered", "backups");
  for (const Scenario& s : scenarios) {
    INFO(s.name << ": " << s.failpoints);
    FaultCluster faulty(dir, s.worker, s.failpoints);
    const std::string name = "scenario" + std::to_string(identical);
    const auto start = Clock::now();
    Output out = faulty.cluster.Submit(WriteJob(dir, name, kModel, kShuffle, kTraining));
    const double took = Seconds(Clock::now() - start);
    INFO(out.text);
    REQUIRE(out.exit_code == 0);
    REQUIRE(ModelBytes(dir, name) == reference);
    ++identical;
    const nlohmann::json status = faulty.cluster.Status();
    std::printf("%-50s %8.2f %+8.2f %9d %7d\n", s.name, took, took - healthy_sec,
                status["recoveries"].get<int>(), status["backup_tasks"].get<int>());
  }
  std::printf("%d of %zu scenarios ended byte-identical; failure-free run %.2f s\n", identical,
              std::size(scenarios), healthy_sec);
  std::fflush(stdout);
}

TEST_CASE("with training.staleness 1, failures while two rounds overlap end with the same model",
          "[integration][faults]") {
  TempDir dir;
  const std::string stale = "{epochs: 3, rounds_per_epoch: 8, seed: 7, staleness: 1}";
  const std::string reference = Reference(dir, stale);
  // While round 2's reduce and round 3's map tasks run: shard hosts that crash or hang (the
  // job rolls back to the last checkpoint and replays with the same staleness), a map task whose
  // output is lost or that is slow (a backup attempt wins), and a pull of the older version
  // whose reply is lost.
  const Scenario scenarios[] = {
      {"crash of a shard host after a map task", 0, "map-after-compute=crash@epoch=1,round=3"},
      {"crash of a shard host before it commits a reduce", 1,
       "reduce-before-commit=crash@epoch=2,round=2"},
      {"a reduce that hangs", 1, "reduce-before-commit=hang@epoch=1,round=2"},
      {"a map task's output dropped", 2, "map-after-compute=drop@epoch=1,round=3"},
      {"a map task delayed 1.5 s", 2, "map-after-compute=delay(1500)@epoch=0,round=3"},
      {"a pull's reply dropped", 0, "pull-before-reply=drop@shard=0,times=2"},
  };
  int i = 0;
  for (const Scenario& s : scenarios) {
    INFO(s.name << ": " << s.failpoints);
    FaultCluster faulty(dir, s.worker, s.failpoints);
    const std::string name = "stale" + std::to_string(i++);
    Output out = faulty.cluster.Submit(WriteJob(dir, name, kModel, kShuffle, stale));
    INFO(out.text);
    REQUIRE(out.exit_code == 0);
    CHECK(ModelBytes(dir, name) == reference);
    // Lost shard hosts were recovered from by rolling back to a checkpoint; the slow task got
    // a backup attempt.
    const nlohmann::json status = faulty.cluster.Status();
    if (i <= 3) CHECK(status["recoveries"].get<int>() >= 1);
    if (i == 5) CHECK(status["backup_tasks"].get<int>() >= 1);
  }
}

TEST_CASE("SIGKILL and SIGSTOP of a worker at random moments: the model is always the same",
          "[integration][faults]") {
  // MRTRAIN_FAULT_TRIALS and MRTRAIN_FAULT_SEED let the soak script run hundreds.
  const int trials = EnvInt("MRTRAIN_FAULT_TRIALS", 20);
  const unsigned seed = static_cast<unsigned>(EnvInt("MRTRAIN_FAULT_SEED", 1));
  TempDir dir;
  const std::string reference = Reference(dir, kLongTraining);
  std::mt19937 rng(seed);
  int identical = 0, mid_job = 0, kills = 0, stops = 0;
  for (int trial = 0; trial < trials; ++trial) {
    const bool kill = std::uniform_int_distribution<int>(0, 1)(rng) == 0;
    const int victim = std::uniform_int_distribution<int>(0, 2)(rng);
    const auto at = std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 800)(rng));
    const auto pause = std::chrono::milliseconds(std::uniform_int_distribution<int>(200, 2500)(rng));
    INFO("trial " << trial << " (seed " << seed << "): " << (kill ? "SIGKILL" : "SIGSTOP")
                  << " worker w" << victim << " after " << at.count() << " ms"
                  << (kill ? "" : ", SIGCONT after " + std::to_string(pause.count()) + " ms"));
    // The same data file as the reference's (its path is part of the spec's fingerprint, which
    // the model file records).
    const std::string name = "trial" + std::to_string(trial);
    FaultCluster faulty(dir, -1, "");
    const std::string spec = WriteJob(dir, name, kModel, kShuffle, kLongTraining);
    const pid_t submit = faulty.cluster.SubmitAsync(spec, dir.File(name + ".log"));
    // The random moment counts from the job's start on the master.
    const auto deadline = Clock::now() + 30s;
    while (true) {
      const nlohmann::json jobs = faulty.cluster.Status()["jobs"];
      if (!jobs.empty() && jobs[0]["state"] != "queued") break;
      REQUIRE(Clock::now() < deadline);
      std::this_thread::sleep_for(5ms);
    }
    std::this_thread::sleep_for(at);
    const bool running = !faulty.cluster.group().Poll(submit).has_value();
    mid_job += running ? 1 : 0;
    if (kill) {
      ++kills;
      ::kill(faulty.pids[victim], SIGKILL);
      // A replacement joins mid-job and gets work.
      faulty.cluster.AddWorkers(1, {"--reconnect-sec", "30"});
    } else {
      ++stops;
      ::kill(faulty.pids[victim], SIGSTOP);
      std::this_thread::sleep_for(pause);
      ::kill(faulty.pids[victim], SIGCONT);
    }
    auto code = faulty.cluster.group().Wait(submit, 120s);
    INFO(TempDir::Read(dir.File(name + ".log")));
    REQUIRE(code.ok());
    REQUIRE(*code == 0);
    REQUIRE(ModelBytes(dir, name) == reference);
    ++identical;
  }
  std::printf("random trials (seed %u): %d of %d ended byte-identical (%d SIGKILL, %d SIGSTOP; "
              "%d landed while the job ran)\n",
              seed, identical, trials, kills, stops, mid_job);
  std::fflush(stdout);
}

TEST_CASE("a master killed mid-job and started again with --recover finishes the job with the "
          "same model",
          "[integration][faults]") {
  TempDir dir;
  const std::string state = dir.File("master-state");
  std::vector<std::string> flags = kMasterFlags;
  flags.insert(flags.end(), {"--state-dir", state});
  FaultCluster first(dir, -1, "", flags);
  const std::string spec = WriteJob(dir, "restarted", kModel, kShuffle,
                                    "{epochs: 4, rounds_per_epoch: 40, seed: 7}");
  Output local = Mrtrain("run " + spec + " --set output.dir=" + dir.File("restarted-local"));
  REQUIRE(local.exit_code == 0);
  const pid_t submit = first.cluster.SubmitAsync(spec, dir.File("submit.log"));
  // Killed once the first epoch's checkpoint is committed (its manifest is the commit).
  const auto deadline = Clock::now() + 60s;
  while (!std::filesystem::exists(dir.File("restarted/checkpoints/" + ManifestOfEpoch(1)))) {
    REQUIRE(Clock::now() < deadline);
    std::this_thread::sleep_for(10ms);
  }
  const auto killed_at = Clock::now();
  ::kill(first.cluster.master(), SIGKILL);
  (void)first.cluster.group().Wait(submit, 30s);  // it lost its master

  // The same address, so the workers find it again.
  std::vector<std::string> argv = {kBinary,   "master",         "--listen", first.cluster.address(),
                                   "--recover", state,          "--min-workers", "3",
                                   "--plugin-cache", dir.File("cache-master")};
  argv.insert(argv.end(), kMasterFlags.begin(), kMasterFlags.end());
  auto second = first.cluster.group().Spawn(argv, {kSecret}, dir.File("master2.log"));
  REQUIRE(second.ok());
  const auto finish_deadline = Clock::now() + 120s;
  std::string job_state;
  while (job_state != "succeeded") {
    INFO(TempDir::Read(dir.File("master2.log")));
    REQUIRE(Clock::now() < finish_deadline);
    REQUIRE_FALSE(first.cluster.group().Poll(*second).has_value());
    std::this_thread::sleep_for(100ms);
    Output out = Mrtrain("status --json --master " + first.cluster.address(), 10);
    if (out.exit_code != 0) continue;
    const nlohmann::json status = nlohmann::json::parse(out.text, nullptr, false);
    if (!status.is_object()) continue;
    for (const auto& job : status["jobs"]) {
      job_state = job.value("state", std::string());
      REQUIRE(job_state != "failed");
    }
  }
  std::printf("master restart: job finished %.2f s after the master was killed\n",
              Seconds(Clock::now() - killed_at));
  CHECK(ModelBytes(dir, "restarted") == ModelBytes(dir, "restarted-local"));
  // It was the second master that trained the rest, from the checkpoint after epoch 1 or later.
  const std::string log = TempDir::Read(dir.File("master2.log"));
  INFO(log);
  CHECK(log.find("recovering job 1 (running") != std::string::npos);
  CHECK(log.find("resuming job") != std::string::npos);
  CHECK(log.find("job 1 (restarted) succeeded") != std::string::npos);
}

TEST_CASE("network faults between workers and the master (a proxy on each worker's link) end "
          "with the failure-free model",
          "[integration][faults]") {
  TempDir dir;
  const std::string reference = Reference(dir);
  struct NetworkScenario {
    const char* name;
    int worker;           // whose link to the master gets the fault
    tools::Mode mode;
    tools::Direction direction;
  };
  const NetworkScenario scenarios[] = {
      {"20 ms of latency on a shard host's link", 0, tools::Mode::Delay(20ms),
       tools::Direction::kBoth},
      {"a shard host's link black-holed", 0, tools::Mode::BlackHole(), tools::Direction::kBoth},
      {"a link dropped mid-frame", 1, tools::Mode::DropMidFrame(7), tools::Direction::kBoth},
      {"every frame from a worker duplicated", 2, tools::Mode::Duplicate(),
       tools::Direction::kClientToServer},
      {"frames from a worker reordered in pairs", 2, tools::Mode::Reorder(),
       tools::Direction::kClientToServer},
  };
  int identical = 0;
  for (const NetworkScenario& s : scenarios) {
    INFO(s.name);
    Cluster cluster(dir, 3, kMasterFlags);
    std::vector<std::unique_ptr<tools::FaultProxy>> proxies;
    for (int i = 0; i < 3; ++i) {
      proxies.push_back(std::make_unique<tools::FaultProxy>(cluster.address()));
      Result<std::string> proxy_address = proxies.back()->Start("127.0.0.1:0");
      REQUIRE(proxy_address.ok());
      // The worker reaches the master through its proxy; `--master` is only the control link.
      cluster.AddWorkers(1, {"--reconnect-sec", "30"}, *proxy_address);
    }
    const std::string name = "network" + std::to_string(identical);
    const pid_t submit = cluster.SubmitAsync(WriteJob(dir, name, kModel, kShuffle, kTraining),
                                             dir.File(name + ".log"));
    // The fault starts once the job is past its setup.
    const auto deadline = Clock::now() + 30s;
    while (!std::filesystem::exists(dir.File(name + "/checkpoints/" + ManifestOfEpoch(1)))) {
      REQUIRE(Clock::now() < deadline);
      std::this_thread::sleep_for(5ms);
    }
    proxies[s.worker]->SetMode(s.mode, s.direction);
    const auto faulted = Clock::now();
    auto code = cluster.group().Wait(submit, 120s);
    const double rest = Seconds(Clock::now() - faulted);
    INFO(TempDir::Read(dir.File(name + ".log")));
    REQUIRE(code.ok());
    REQUIRE(*code == 0);
    REQUIRE(ModelBytes(dir, name) == reference);
    ++identical;
    const nlohmann::json status = cluster.Status();
    std::printf("%-50s job done %.2f s after the fault (recoveries %d, backups %d)\n", s.name,
                rest, status["recoveries"].get<int>(), status["backup_tasks"].get<int>());
    // The status page a person reads says the same.
    const Output page = Mrtrain("status --master " + cluster.address(), 30);
    CHECK(page.text.find(std::to_string(status["recoveries"].get<int>()) + " recoveries, " +
                         std::to_string(status["backup_tasks"].get<int>()) +
                         " backup attempts") != std::string::npos);
  }
  std::printf("network faults: %d of %zu scenarios ended byte-identical\n", identical,
              std::size(scenarios));
  std::fflush(stdout);
}

TEST_CASE("a shard host lost after the other workers spilled their kept output to disk: the "
          "replay reads it back and ends with the failure-free model",
          "[integration][faults]") {
  TempDir dir;
  const std::string reference = Reference(dir);
  // No memory budget: every map task's output goes to a checksummed file in the spill folder.
  FaultCluster faulty(dir, 0, "map-after-compute=crash@epoch=1,round=5", kMasterFlags,
                      {"--keep-budget-mb", "0", "--spill-dir", dir.File("spill")});
  Output out = faulty.cluster.Submit(WriteJob(dir, "spilled", kModel, kShuffle, kTraining));
  INFO(out.text);
  REQUIRE(out.exit_code == 0);
  CHECK(ModelBytes(dir, "spilled") == reference);
  INFO(TempDir::Read(dir.File("master.log")));
  CHECK(faulty.cluster.Status()["recoveries"] == 1);
  // The survivors answered the replayed rounds from their files instead of computing them
  // (they say so when the job ends).
  const auto deadline = Clock::now() + 10s;
  std::string logs;
  while (logs.find("map tasks were replayed from kept output") == std::string::npos) {
    REQUIRE(Clock::now() < deadline);
    std::this_thread::sleep_for(50ms);
    logs = TempDir::Read(dir.File("w1.log")) + TempDir::Read(dir.File("w2.log"));
  }
}

}  // namespace
}  // namespace mrtrain
