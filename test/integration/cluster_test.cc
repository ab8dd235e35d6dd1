// Multi-process tests of the distributed runtime: a real master and real worker processes of
// the mrtrain binary on 127.0.0.1, ports picked by the OS, every wait bounded and every process
// reaped (ProcessGroup), as a user would run them.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/base/sha256.h"
#include "test/integration/cluster_harness.h"
#include "test/testing/temp_dir.h"
#include "tools/data/synthetic.h"
#include "tools/launch/process_group.h"

namespace mrtrain {
namespace {

using namespace std::chrono_literals;
using testing::Cluster;
using testing::kBinary;
using testing::kSanitized;
using testing::kSecret;
using testing::kTestPlugins;
using testing::ModelBytes;
using testing::Mrtrain;
using testing::Output;
using testing::TempDir;
using testing::WriteJob;

TEST_CASE(
    "the final model is byte-identical in local mode and on 1, 2 and 4 workers, with 1 "
    "and 3 reducers and hash and sort shuffle",
    "[integration]") {
  TempDir dir;
  const std::string mlp = "{type: mlp, hidden: [16], init: xavier, block_size: 8}";
  // Reference: local mode, one process.
  const std::string local = WriteJob(dir, "local", mlp, "{mode: hash, reducers: 1}");
  Output ran = Mrtrain("run " + local);
  INFO(ran.text);
  REQUIRE(ran.exit_code == 0);
  const std::string reference = ModelBytes(dir, "local");
  REQUIRE(reference.size() > 100);

  Cluster cluster(dir);
  struct Variant {
    int workers;  // in the cluster when the job starts
    const char* shuffle;
  };
  // Workers stay connected between jobs; the master runs them one after another.
  const Variant variants[] = {{1, "{mode: hash, reducers: 1}"}, {1, "{mode: sort, reducers: 3}"},
                              {2, "{mode: sort, reducers: 1}"}, {2, "{mode: hash, reducers: 3}"},
                              {4, "{mode: hash, reducers: 3}"}, {4, "{mode: sort, reducers: 1}"}};
  int workers = 0;
  int i = 0;
  for (const Variant& v : variants) {
    if (v.workers > workers) {
      // The later workers may have one push unacknowledged at a time (1 KiB budget): tasks then
      // wait for the reducers, which must change nothing but time.
      cluster.AddWorkers(v.workers - workers,
                         workers == 0 ? std::vector<std::string>{}
                                      : std::vector<std::string>{"--push-budget-kb", "1"});
      workers = v.workers;
    }
    const std::string name = "cluster" + std::to_string(i++);
    Output out = cluster.Submit(WriteJob(dir, name, mlp, v.shuffle));
    INFO(v.workers << " workers, shuffle " << v.shuffle << "\n" << out.text);
    REQUIRE(out.exit_code == 0);
    CHECK(out.text.find("epoch 2/2 train_loss=") != std::string::npos);
    CHECK(ModelBytes(dir, name) == reference);
  }
  // Those were different covers of the partitions' reduction tree: 1 worker combined all 5
  // partitions in one task, 2 workers nodes of 2, 4 workers one partition per task.
  const std::string log = TempDir::Read(dir.File("master.log"));
  for (const char* nodes : {"on 1 workers, up to 5 partitions per map task",
                            "on 2 workers, up to 2 partitions per map task",
                            "on 4 workers, up to 1 partitions per map task"}) {
    CHECK(log.find(nodes) != std::string::npos);
  }
  // The status page lists the workers and every job with its outcome.
  nlohmann::json status = cluster.Status();
  CHECK(status["workers"].size() == 4);
  REQUIRE(status["jobs"].size() == std::size(variants));
  for (const auto& job : status["jobs"]) CHECK(job["state"] == "succeeded");
}

TEST_CASE(
    "with training.staleness 1 the model is byte-identical in local mode and on 1 and 2 workers, "
    "with 1 and 3 reducers and hash and sort shuffle, and differs from staleness 0",
    "[integration]") {
  TempDir dir;
  const std::string mlp = "{type: mlp, hidden: [16], init: xavier, block_size: 8}";
  const std::string stale = "{epochs: 2, rounds_per_epoch: 6, seed: 7, staleness: 1}";
  Output ran = Mrtrain("run " + WriteJob(dir, "local", mlp, "{mode: hash, reducers: 1}", stale));
  INFO(ran.text);
  REQUIRE(ran.exit_code == 0);
  const std::string reference = ModelBytes(dir, "local");
  REQUIRE(reference.size() > 100);
  // The map tasks really read older parameters: the same job without staleness differs.
  REQUIRE(Mrtrain("run " + WriteJob(dir, "fresh", mlp, "{mode: hash, reducers: 1}")).exit_code ==
          0);
  CHECK(ModelBytes(dir, "fresh") != reference);

  Cluster cluster(dir);
  struct Variant {
    int workers;
    const char* shuffle;
  };
  const Variant variants[] = {{1, "{mode: sort, reducers: 3}"},
                              {2, "{mode: hash, reducers: 3}"},
                              {2, "{mode: sort, reducers: 1}"}};
  int workers = 0;
  int i = 0;
  for (const Variant& v : variants) {
    if (v.workers > workers) {
      cluster.AddWorkers(v.workers - workers);
      workers = v.workers;
    }
    const std::string name = "stale" + std::to_string(i++);
    Output out = cluster.Submit(WriteJob(dir, name, mlp, v.shuffle, stale));
    INFO(v.workers << " workers, shuffle " << v.shuffle << "\n" << out.text);
    REQUIRE(out.exit_code == 0);
    CHECK(out.text.find("epoch 2/2 train_loss=") != std::string::npos);
    CHECK(ModelBytes(dir, name) == reference);
  }
}

TEST_CASE("a backup attempt of a map task over several partitions ends with the same model",
          "[integration]") {
  TempDir dir;
  const std::string mlp = "{type: mlp, hidden: [16], init: xavier, block_size: 8}";
  const std::string local = WriteJob(dir, "local", mlp, "{mode: hash, reducers: 2}");
  Output ran = Mrtrain("run " + local);
  INFO(ran.text);
  REQUIRE(ran.exit_code == 0);
  Cluster cluster(dir, 2, {"--speculation-min-ms", "300"});
  // Two workers: map tasks of 2 partitions, task 1 ([2, 4)) planned on w1, which stalls on it
  // once; w0 runs a backup of the whole node, and whichever pushes first, the bytes are the same.
  cluster.AddWorkers(1);
  cluster.AddWorkers(1, {"--failpoints", "map-after-compute=delay(1500)@epoch=0,round=1"});
  const std::string spec = WriteJob(dir, "backup", mlp, "{mode: hash, reducers: 2}");
  Output out = cluster.Submit(spec);
  INFO(out.text);
  REQUIRE(out.exit_code == 0);
  CHECK(ModelBytes(dir, "backup") == ModelBytes(dir, "local"));
  CHECK(cluster.Status()["backup_tasks"].get<int>() >= 1);
  CHECK(TempDir::Read(dir.File("master.log")).find("up to 2 partitions per map task") !=
        std::string::npos);
}

TEST_CASE("the master's bytes per epoch do not grow with the model's size", "[integration]") {
  TempDir dir;
  // No heartbeats during the jobs: their bytes grow with a job's duration, not its model, and
  // the larger model takes longer (much longer under a sanitizer).
  Cluster cluster(dir, 1, {"--heartbeat-ms", "3600000", "--heartbeat-timeout-ms", "0"});
  cluster.AddWorkers(2);
  // Same data, rounds and partitions; the second model has 20,000 times the parameters.
  const std::string small =
      WriteJob(dir, "small", "{type: logistic, block_size: 4096}", "{reducers: 2}");
  const std::string large =
      WriteJob(dir, "large", "{type: mlp, hidden: [20000], block_size: 4096}", "{reducers: 2}");
  auto bytes_of = [&](const std::string& spec) {
    const int64_t before = cluster.Status()["control_bytes"].get<int64_t>();
    Output out = cluster.Submit(spec);
    INFO(out.text);
    REQUIRE(out.exit_code == 0);
    return cluster.Status()["control_bytes"].get<int64_t>() - before;
  };
  const int64_t small_bytes = bytes_of(small);
  const int64_t large_bytes = bytes_of(large);
  const auto small_size = std::filesystem::file_size(dir.File("small/model.mrt"));
  const auto large_size = std::filesystem::file_size(dir.File("large/model.mrt"));
  INFO("control-plane bytes: small model " << small_bytes << ", large model " << large_bytes
                                           << "; model files " << small_size << " and "
                                           << large_size);
  REQUIRE(large_size > 1000 * small_size);
  // Only the spec text and the numbers in the messages differ.
  CHECK(large_bytes < small_bytes * 11 / 10);
  CHECK(large_bytes < static_cast<int64_t>(large_size) / 10);
}

// Resident anonymous memory (the heap, not the binary's pages) of a process, from /proc; 0 when
// it cannot be read.
int64_t RssKiB(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("RssAnon:", 0) == 0) return std::stoll(line.substr(8));
  }
  return 0;
}

TEST_CASE("a long-lived master and worker do not grow job after job", "[integration]") {
  if (kSanitized) {
    WARN("skipped: process sizes under a sanitizer do not show leaks");
    return;
  }
  // Every map task arms a reply timeout of minutes and every step a step bound; cancelled, they
  // used to stay until due, and the heap a job freed was never given back: a worker grew by
  // about a megabyte per job of a few hundred rounds.
  TempDir dir;
  Cluster cluster(dir);
  const pid_t worker = cluster.AddWorkers(1).at(0);
  const std::string spec = WriteJob(dir, "rounds", "{type: logistic}", "{reducers: 2}",
                                    "{epochs: 2, rounds_per_epoch: 150}");
  int64_t worker_after[8] = {};
  int64_t master_after[8] = {};
  for (int job = 0; job < 8; ++job) {
    Output out = cluster.Submit(spec);
    INFO(out.text);
    REQUIRE(out.exit_code == 0);
    std::this_thread::sleep_for(300ms);  // EndJob reaches the worker, the job's data goes
    worker_after[job] = RssKiB(worker);
    master_after[job] = RssKiB(cluster.master());
  }
  INFO("worker RSS after job 2: " << worker_after[1] << " KiB, after job 8: " << worker_after[7]
                                  << " KiB; master: " << master_after[1] << " and "
                                  << master_after[7] << " KiB");
  REQUIRE(worker_after[1] > 0);
  CHECK(worker_after[7] - worker_after[1] < 1024);
  CHECK(master_after[7] - master_after[1] < 1024);
}

TEST_CASE(
    "metrics.jsonl and the master's log give the peak memory of the master and of each "
    "worker",
    "[integration]") {
  TempDir dir;
  Cluster cluster(dir);
  cluster.AddWorkers(2);
  const std::string spec = WriteJob(dir, "peaks", "{type: logistic}", "{reducers: 2}");
  Output out = cluster.Submit(spec);
  INFO(out.text);
  REQUIRE(out.exit_code == 0);
  std::ifstream metrics(dir.File("peaks/metrics.jsonl"));
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(metrics, line);) lines.push_back(nlohmann::json::parse(line));
  REQUIRE(lines.size() == 2);
  constexpr int64_t kMiB = 1 << 20;
  for (const nlohmann::json& line : lines) {
    INFO(line.dump());
    const int64_t master = line.at("master_peak_rss_bytes").get<int64_t>();
    CHECK(master > kMiB);
    CHECK(master < 4096 * kMiB);
    // One figure per worker process, by its name (the harness names them w0, w1).
    REQUIRE(line.at("worker_peak_rss_bytes").size() == 2);
    for (const char* name : {"w0", "w1"}) {
      INFO("worker " << name);
      const int64_t bytes = line["worker_peak_rss_bytes"].at(name).get<int64_t>();
      CHECK(bytes > kMiB);
      CHECK(bytes < 4096 * kMiB);
    }
  }
  // The master logs the same figures when the job ends.
  const std::string log = TempDir::Read(dir.File("master.log"));
  INFO(log);
  const size_t at = log.find("(peaks) peak RSS: master ");
  REQUIRE(at != std::string::npos);
  CHECK_THAT(log.substr(at, log.find('\n', at) - at),
             Catch::Matches("\\(peaks\\) peak RSS: master [0-9]+ MiB, worker [0-9]+ \\(w0\\) "
                            "[0-9]+ MiB, worker [0-9]+ \\(w1\\) [0-9]+ MiB"));
}

TEST_CASE("a long-lived worker reports each job's own peak memory, not its lifetime's",
          "[integration]") {
  if (kSanitized) {
    WARN("skipped: a sanitizer's quarantine keeps the first job's memory resident");
    return;
  }
  TempDir dir;
  Cluster cluster(dir);
  cluster.AddWorkers(1);
  // The first job's model (a hidden layer of 20,000 units: its activations for a partition's
  // 600 rows alone take 46 MiB) takes far more memory than the second's logistic one; the
  // worker's peak starts again with each job.
  const std::string large =
      WriteJob(dir, "large", "{type: mlp, hidden: [20000], block_size: 65536}", "{reducers: 2}",
               "{epochs: 1, rounds_per_epoch: 1, seed: 7}");
  const std::string small = WriteJob(dir, "small", "{type: logistic}", "{reducers: 2}");
  auto worker_peak = [&](const std::string& spec, const std::string& name) {
    Output out = cluster.Submit(spec);
    INFO(out.text);
    REQUIRE(out.exit_code == 0);
    const std::string text = TempDir::Read(dir.File(name + "/metrics.jsonl"));
    // The last line (npos + 1 = 0 when there is one).
    const nlohmann::json last =
        nlohmann::json::parse(text.substr(text.rfind('\n', text.size() - 2) + 1));
    return last.at("max_worker_peak_rss_bytes").get<int64_t>();
  };
  const int64_t large_peak = worker_peak(large, "large");
  const int64_t small_peak = worker_peak(small, "small");
  INFO("worker peak: large job " << large_peak << " bytes, small job after it " << small_peak);
  CHECK(large_peak - small_peak > (20 << 20));
}

TEST_CASE(
    "submit reports a failing job with its cause and a non-zero exit; the cluster serves "
    "the next job",
    "[integration]") {
  TempDir dir;
  Cluster cluster(dir);
  cluster.AddWorkers(1);
  const std::string good = WriteJob(dir, "good", "{type: logistic}", "{reducers: 1}");
  Output bad = cluster.Submit(good, "--set data.train.path=" + dir.File("missing.svm"));
  INFO(bad.text);
  CHECK(bad.exit_code == 1);
  CHECK(bad.text.find("missing.svm") != std::string::npos);
  // A plugin that throws fails its task on every attempt: the job ends naming the plugin's
  // message and the partition, and the worker lives on for the next job.
  const std::string throwing =
      dir.Write("throwing.yaml", "plugins: [" + std::filesystem::absolute(kTestPlugins).string() +
                                     "]\n"
                                     "data: {train: {path: " +
                                     dir.File("train.svm") +
                                     ", format: libsvm, partitions: 2}}\n"
                                     "model: {plugin: thrower}\n"
                                     "training: {epochs: 1, max_attempts: 3}\n"
                                     "output: {dir: " +
                                     dir.File("throwing") + "}\n");
  // A name no library exports is reported before any task runs, naming the library.
  Output unknown = cluster.Submit(throwing, "--set model.plugin=hubber");
  INFO(unknown.text);
  CHECK(unknown.exit_code == 1);
  CHECK(unknown.text.find("no plugin exports mapper 'hubber'") != std::string::npos);
  CHECK(unknown.text.find("libtest_plugins.so exports mappers: thrower") != std::string::npos);
  Output thrown = cluster.Submit(throwing);
  INFO(thrown.text);
  CHECK(thrown.exit_code == 1);
  CHECK(thrown.text.find("thrower gave up on purpose") != std::string::npos);
  CHECK(thrown.text.find("failed 3 times") != std::string::npos);
  CHECK(thrown.text.find("partition") != std::string::npos);
  Output ok = cluster.Submit(good);
  INFO(ok.text);
  CHECK(ok.exit_code == 0);
  nlohmann::json status = cluster.Status();
  REQUIRE(status["jobs"].size() == 4);
  CHECK(status["jobs"][0]["state"] == "failed");
  CHECK(status["jobs"][1]["state"] == "failed");
  CHECK(status["jobs"][2]["state"] == "failed");
  CHECK(status["jobs"][3]["state"] == "succeeded");
}

TEST_CASE("submit ships plugin libraries; workers load the copy whose SHA-256 they checked",
          "[integration]") {
  TempDir dir;
  // The submitter's own copy of the example plugins, next to its spec and data.
  std::filesystem::copy_file("jobs/plugins/libmrtrain_example_plugins.so",
                             dir.File("libexample.so"));
  tools::SyntheticSpec s;
  s.task = tools::SyntheticSpec::Task::kRegression;
  s.rows = 2000;
  s.features = 6;
  s.seed = 4;
  REQUIRE(tools::WriteSyntheticCsv(dir.File("huber.csv"), s).ok());
  const std::string spec = dir.Write(
      "huber.yaml", "plugins: [" + dir.File("libexample.so") +
                        "]\n"
                        "data: {train: {path: " +
                        dir.File("huber.csv") +
                        ", format: csv, partitions: 4}}\n"
                        "model: {plugin: huber, params: {delta: 1.0}, init: zeros}\n"
                        "update: {plugin: clipped_sgd, params: {clip: 5}, learning_rate: 0.2}\n"
                        "training: {epochs: 3, rounds_per_epoch: 10, seed: 5}\n"
                        "shuffle: {reducers: 2}\n"
                        "output: {dir: " +
                        dir.File("huber") + "}\n");
  const std::string library = TempDir::Read(dir.File("libexample.so"));
  Cluster cluster(dir);
  cluster.AddWorkers(2);
  REQUIRE(Mrtrain("validate " + spec).exit_code == 0);
  // A cached file under the library's name whose bytes are something else must never load.
  const std::string digest = Sha256Hex(library);
  dir.Write("cache-w0/" + digest + ".so", "not a library");

  Output out = cluster.Submit(spec);
  INFO(out.text);
  REQUIRE(out.exit_code == 0);
  for (const char* cache : {"cache-master", "cache-w0", "cache-w1"}) {
    INFO(cache);
    CHECK(TempDir::Read(dir.File(std::string(cache) + "/" + digest + ".so")) == library);
  }
  // Trained as in local mode, byte for byte.
  Output local = Mrtrain("run " + spec + " --set output.dir=" + dir.File("huber-local"));
  REQUIRE(local.exit_code == 0);
  CHECK(TempDir::Read(dir.File("huber/model.mrt")) ==
        TempDir::Read(dir.File("huber-local/model.mrt")));
}

TEST_CASE("a worker with the wrong secret is refused and the master keeps serving",
          "[integration]") {
  TempDir dir;
  Cluster cluster(dir);
  // Mrtrain() sets the right secret in the environment; this worker reads a wrong one from a
  // file, which comes first.
  const std::string secret_file = dir.Write("wrong.secret", "not-the-cluster-secret\n");
  std::filesystem::permissions(
      secret_file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  Output refused =
      Mrtrain("worker --master " + cluster.address() + " --secret-file " + secret_file, 30);
  INFO(refused.text);
  CHECK(refused.exit_code == 1);
  CHECK(refused.text.find("cannot reach the master") != std::string::npos);
  cluster.AddWorkers(1);
  Output ok = cluster.Submit(WriteJob(dir, "after", "{type: logistic}", "{reducers: 1}"));
  INFO(ok.text);
  CHECK(ok.exit_code == 0);
}

// Sends `bytes` to `address` ("127.0.0.1:port") over a plain TCP socket and closes it.
void SendRaw(const std::string& address, const std::string& bytes) {
  const size_t colon = address.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  REQUIRE(inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr) == 1);
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    (void)!write(fd, bytes.data(), bytes.size());
  }
  close(fd);
}

TEST_CASE(
    "garbage, a wrong magic, an oversized length and a wrong secret on the master's and "
    "a worker's ports do not disturb a running job",
    "[integration]") {
  TempDir dir;
  const std::string mlp = "{type: mlp, hidden: [16], init: xavier, block_size: 8}";
  const std::string local = WriteJob(dir, "local", mlp, "{mode: hash, reducers: 2}");
  REQUIRE(Mrtrain("run " + local + " --set training.epochs=20").exit_code == 0);
  Cluster cluster(dir);
  cluster.AddWorkers(2);
  const std::string worker_data = cluster.Status()["workers"][0]["data_address"];
  auto submit = cluster.group().Spawn(
      {kBinary, "submit", WriteJob(dir, "attacked", mlp, "{mode: hash, reducers: 2}"), "--master",
       cluster.address(), "--progress", "lines", "--set", "training.epochs=20"},
      {kSecret}, dir.File("attacked.log"));
  REQUIRE(submit.ok());
  // A frame header claiming 4 GiB, one with the wrong magic, random bytes, an HTTP request.
  std::string oversized("MRTF\x01\x00\x01\x00\xff\xff\xff\xff\0\0\0\0", 16);
  std::string bad_magic("XXXX\x01\x00\x01\x00\x04\x00\x00\x00\0\0\0\0abcd", 20);
  std::string noise;
  for (int i = 0; i < 4096; ++i) noise += static_cast<char>((i * 7919) & 0xff);
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  int rounds = 0;
  while (!cluster.group().Poll(*submit)) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    for (const std::string& target : {cluster.address(), worker_data}) {
      SendRaw(target, oversized);
      SendRaw(target, bad_magic);
      SendRaw(target, noise);
      SendRaw(target, "GET / HTTP/1.0\r\n\r\n");
    }
    if (rounds++ % 5 == 0) {
      const std::string wrong = dir.Write("wrong.secret", "a-wrong-secret\n");
      std::filesystem::permissions(
          wrong, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
      CHECK(Mrtrain("status --master " + cluster.address() + " --secret-file " + wrong, 30)
                .exit_code == 1);
    }
    std::this_thread::sleep_for(20ms);
  }
  auto code = cluster.group().Wait(*submit, 1s);
  REQUIRE(code.ok());
  INFO(TempDir::Read(dir.File("attacked.log")));
  CHECK(*code == 0);
  CHECK(rounds > 3);
  CHECK(ModelBytes(dir, "attacked") == ModelBytes(dir, "local"));
  CHECK(cluster.Status()["workers"].size() == 2);
}

TEST_CASE("a master without a secret refuses to start unless --insecure", "[integration]") {
  const std::string cmd = std::string("env -u MRTRAIN_SECRET timeout 30 ") + kBinary +
                          " master --listen 127.0.0.1:0 2>&1";
  std::FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string text;
  char buf[1024];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) text.append(buf, n);
  const int status = pclose(pipe);
  INFO(text);
  CHECK(WEXITSTATUS(status) == 2);
  CHECK(text.find("--insecure") != std::string::npos);
}

TEST_CASE("Ctrl-C on submit cancels the job", "[integration]") {
  TempDir dir;
  Cluster cluster(dir);
  cluster.AddWorkers(1);
  const std::string spec = WriteJob(dir, "long", "{type: mlp, hidden: [64]}", "{reducers: 1}");
  auto submit = cluster.group().Spawn({kBinary, "submit", spec, "--master", cluster.address(),
                                       "--progress", "lines", "--set", "training.epochs=1000"},
                                      {kSecret}, dir.File("submit.log"));
  REQUIRE(submit.ok());
  // Wait until the job runs, then interrupt the client as a terminal would.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (true) {
    nlohmann::json jobs = cluster.Status()["jobs"];
    if (!jobs.empty() && jobs[0]["epochs_done"].get<int64_t>() >= 1) break;
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(100ms);
  }
  REQUIRE(kill(*submit, SIGINT) == 0);
  auto code = cluster.group().Wait(*submit, 30s);
  REQUIRE(code.ok());
  CHECK(*code == 130);
  const auto cancelled_by = std::chrono::steady_clock::now() + 30s;
  while (cluster.Status()["jobs"][0]["state"] == "running") {
    REQUIRE(std::chrono::steady_clock::now() < cancelled_by);
    std::this_thread::sleep_for(100ms);
  }
  nlohmann::json job = cluster.Status()["jobs"][0];
  CHECK(job["state"] == "cancelled");
  CHECK(job["error"].get<std::string>().find("cancelled") != std::string::npos);
}

// Our children that are still there (reaping the finished ones): with PR_SET_CHILD_SUBREAPER,
// orphans of the processes we started count too.
int LiveChildren() {
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }
  int live = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::ifstream stat(entry.path() / "stat");
    std::string pid, comm, state;
    pid_t ppid = 0;
    if (stat >> pid >> comm >> state >> ppid && ppid == getpid()) ++live;
  }
  return live;
}

TEST_CASE(
    "run --workers N trains on a local cluster and leaves no process behind, on exit "
    "and on a signal",
    "[integration]") {
  TempDir dir;
  // Orphans of the run become our children, so a leftover process would show up here.
  REQUIRE(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  const std::string mlp = "{type: mlp, hidden: [16], init: xavier, block_size: 8}";
  const std::string spec = WriteJob(dir, "multi", mlp, "{mode: hash, reducers: 3}");
  Output local = Mrtrain("run " + WriteJob(dir, "single", mlp, "{mode: hash, reducers: 3}"));
  REQUIRE(local.exit_code == 0);
  Output multi = Mrtrain("run " + spec + " --workers 3");
  INFO(multi.text);
  REQUIRE(multi.exit_code == 0);
  CHECK(ModelBytes(dir, "multi") == ModelBytes(dir, "single"));
  std::this_thread::sleep_for(200ms);
  CHECK(LiveChildren() == 0);

  // Interrupted mid-job, it stops its master and workers before it exits.
  {
    tools::ProcessGroup group;
    auto run = group.Spawn({kBinary, "run", spec, "--workers", "2", "--progress", "lines", "--set",
                            "training.epochs=1000", "--set", "output.dir=" + dir.File("long")},
                           {}, dir.File("long.log"));
    REQUIRE(run.ok());
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!std::filesystem::exists(dir.File("long/checkpoints/ckpt-000001.manifest"))) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      REQUIRE_FALSE(group.Poll(*run));
      std::this_thread::sleep_for(50ms);
    }
    REQUIRE(kill(*run, SIGTERM) == 0);
    auto code = group.Wait(*run, 30s);
    REQUIRE(code.ok());
    CHECK(*code == 128 + SIGTERM);
  }
  std::this_thread::sleep_for(200ms);
  CHECK(LiveChildren() == 0);
  REQUIRE(prctl(PR_SET_CHILD_SUBREAPER, 0) == 0);
}

TEST_CASE("a worker finds its master from MASTER_ADDR and MASTER_PORT", "[integration]") {
  TempDir dir;
  Cluster cluster(dir);
  const std::string& address = cluster.address();
  const size_t colon = address.rfind(':');
  auto worker = cluster.group().Spawn({kBinary, "worker", "--name", "from-env"},
                                      {kSecret, "MASTER_ADDR=" + address.substr(0, colon),
                                       "MASTER_PORT=" + address.substr(colon + 1)},
                                      dir.File("env-worker.log"));
  REQUIRE(worker.ok());
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (cluster.Status()["workers"].empty()) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    REQUIRE_FALSE(cluster.group().Poll(*worker));
    std::this_thread::sleep_for(50ms);
  }
  CHECK(cluster.Status()["workers"][0]["name"] == "from-env");
}

}  // namespace
}  // namespace mrtrain
