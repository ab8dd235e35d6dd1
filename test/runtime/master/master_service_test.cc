#include "runtime/master/master_service.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/base/log.h"
#include "runtime/transport/in_process_transport.h"
#include "test/runtime/master/fake_clock_transport.h"
#include "test/runtime/master/fake_worker.h"
#include "test/runtime/master/gated_transport.h"
#include "test/testing/captured_log.h"
#include "test/testing/temp_dir.h"

// MasterService driven through its transport by scripted fake workers (fake_worker.h): what a
// submitter and the workers see of placement, retries, lost workers, cancellation, timeouts and
// the status page. Every wait is bounded; a hang fails the test instead of the suite.
namespace mrtrain::runtime {
namespace {

using namespace std::chrono_literals;
using mrtrain::testing::CapturedLog;
using mrtrain::testing::DefaultMapStats;
using mrtrain::testing::FakeWorker;
using mrtrain::testing::FakeWorkerLog;
using mrtrain::testing::FakeWorkerOptions;
using mrtrain::testing::MapReply;
using Clock = std::chrono::steady_clock;

constexpr auto kJobBound = 10s;  // far above what any job here needs (well under a second)

// What the master tells a submitter.
class RecordingListener : public JobListener {
 public:
  void OnRound(int64_t epoch, int64_t round, int64_t, int64_t, double) override {
    std::lock_guard<std::mutex> lock(mu_);
    rounds_.emplace_back(epoch, round);
  }
  void OnEpoch(const EpochReport& report) override {
    std::lock_guard<std::mutex> lock(mu_);
    epochs_.push_back(report);
  }
  void OnFinished(const Status& status, const TrainingResult* result) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++finished_;
      status_ = status;
      if (result) result_ = *result;
      finished_at_ = Clock::now();
    }
    cv_.notify_all();
  }

  // Waits for OnFinished; false when `timeout` passes first.
  bool WaitFinished(std::chrono::milliseconds timeout = kJobBound) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return finished_ > 0; });
  }
  int finished() const {
    std::lock_guard<std::mutex> lock(mu_);
    return finished_;
  }
  Status status() const {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }
  std::optional<TrainingResult> result() const {
    std::lock_guard<std::mutex> lock(mu_);
    return result_;
  }
  std::vector<EpochReport> epochs() const {
    std::lock_guard<std::mutex> lock(mu_);
    return epochs_;
  }
  std::vector<std::pair<int64_t, int64_t>> rounds() const {
    std::lock_guard<std::mutex> lock(mu_);
    return rounds_;
  }
  Clock::time_point finished_at() const {
    std::lock_guard<std::mutex> lock(mu_);
    return finished_at_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int finished_ = 0;
  Status status_;
  std::optional<TrainingResult> result_;
  std::vector<EpochReport> epochs_;
  std::vector<std::pair<int64_t, int64_t>> rounds_;
  Clock::time_point finished_at_;
};

struct SpecOptions {
  std::string name = "fake_job";
  int64_t partitions = 4;
  int64_t test_partitions = 0;  // 0: no data.test
  int64_t epochs = 1;
  int64_t rounds = 1;
  int max_attempts = 4;
  int reducers = 1;
  std::string output = "out";
  int64_t staleness = 0;
};

// A logistic model on csv files in the job's working directory. The master only parses the
// spec and builds the model from the shape the fake workers report; nobody reads the files.
std::string SpecYaml(const SpecOptions& o) {
  std::ostringstream yaml;
  yaml << "name: " << o.name << "\n"
       << "data:\n"
       << "  train: {path: train.csv, format: csv, partitions: " << o.partitions << "}\n";
  if (o.test_partitions > 0) {
    yaml << "  test: {path: test.csv, format: csv, partitions: " << o.test_partitions << "}\n";
  }
  yaml << "model: {type: logistic}\n"
       << "update: {rule: sgd, learning_rate: 0.1}\n"
       << "training: {epochs: " << o.epochs << ", rounds_per_epoch: " << o.rounds
       << ", max_attempts: " << o.max_attempts << ", staleness: " << o.staleness << "}\n"
       << "shuffle: {reducers: " << o.reducers << "}\n"
       << "output: {dir: " << o.output << "}\n";
  return yaml.str();
}

// A master on an in-process transport, fake workers connected to it, and a working directory.
// Teardown order: the master stops (failing a running job), the fakes disconnect, the transport
// stops.
class Cluster {
 public:
  // With `fake_clock`, timers run on a clock the test moves (clock()->Advance).
  explicit Cluster(MasterOptions options = {}, bool fake_clock = false)
      : Cluster(options,
                fake_clock ? std::make_unique<testing::FakeClockTransport>(MakeInProcessTransport())
                           : MakeInProcessTransport(),
                fake_clock) {}
  Cluster(MasterOptions options, std::unique_ptr<Transport> transport, bool fake_clock = false)
      : transport_(std::move(transport)) {
    dir_.Write("train.csv", "1,0.5,0.25,0.125,1\n0,1,2,3,4\n");
    dir_.Write("test.csv", "1,0.5,0.25,0.125,1\n");
    options.listen_address = "inproc://";
    options.plugin_cache_dir = dir_.File("plugin-cache");
    // One map task per partition unless a test asks for nodes: placement, retries and speculation
    // are about tasks, however many partitions each covers.
    if (options.map_node_partitions == 0) options.map_node_partitions = 1;
    // Speculation's ticker is a timer too: tests on the fake clock count and drive timers.
    if (fake_clock) options.speculation_multiple = 0;
    master_ = std::make_unique<MasterService>(transport_.get(), options);
    Result<std::string> address = master_->Start();
    if (!address.ok()) FAIL(address.status().ToString());
    address_ = *address;
  }
  testing::FakeClockTransport* clock() {
    return dynamic_cast<testing::FakeClockTransport*>(transport_.get());
  }
  testing::GatedTransport* gated() {
    return dynamic_cast<testing::GatedTransport*>(transport_.get());
  }

  ~Cluster() {
    master_->Stop();
    workers_.clear();
    transport_->Stop();
  }

  // Connects a fake worker and waits until the master has registered it.
  FakeWorker& AddWorker(const std::string& name, uint32_t slots = 1,
                        int64_t extra_train_partitions = 0) {
    FakeWorkerOptions options;
    options.name = name;
    options.slots = slots;
    options.extra_train_partitions = extra_train_partitions;
    return AddWorker(options);
  }
  FakeWorker& AddWorker(FakeWorkerOptions options) {
    options.plugin_cache_dir = dir_.File("plugin-cache");
    workers_.push_back(std::make_unique<FakeWorker>(transport_.get(), options));
    Result<uint32_t> id = workers_.back()->Connect(address_);
    if (!id.ok()) FAIL(id.status().ToString());
    return *workers_.back();
  }

  uint64_t Submit(const SpecOptions& spec, std::shared_ptr<JobListener> listener,
                  const std::string& source = "job.yaml") {
    return master_->Submit(Text(spec, source), std::move(listener));
  }
  // What a submit client sends for `spec`.
  msg::JobSpecText Text(const SpecOptions& spec, const std::string& source = "job.yaml") const {
    msg::JobSpecText text;
    text.yaml = SpecYaml(spec);
    text.source = source;
    text.working_dir = dir_.path();
    return text;
  }
  Transport* transport() { return transport_.get(); }
  const std::string& address() const { return address_; }

  nlohmann::json StatusJson() const { return nlohmann::json::parse(master_->StatusJson()); }
  // The status page's entry for job `id`; null when it is not listed.
  nlohmann::json JobStatus(uint64_t id) const {
    const nlohmann::json status = StatusJson();
    for (const auto& job : status["jobs"]) {
      if (job["id"].get<uint64_t>() == id) return job;
    }
    return nullptr;
  }

  MasterService& master() { return *master_; }

 private:
  mrtrain::testing::TempDir dir_;
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<MasterService> master_;
  std::string address_;
  std::vector<std::unique_ptr<FakeWorker>> workers_;
};

// `mrtrain submit` over the transport: sends a JobSpecText and collects the JobStatus replies.
class SubmitClient {
 public:
  SubmitClient(Transport* transport, const std::string& address)
      : state_(std::make_shared<State>()) {
    ConnectionHandler h;
    h.on_message = [state = state_](const std::shared_ptr<Connection>&, MessageType type,
                                    std::string payload) {
      if (type != MessageType::kJobStatus) return;
      auto m = msg::DecodeAs<msg::JobStatus>(payload);
      {
        std::lock_guard<std::mutex> lock(state->mu);
        if (m.ok()) state->states.push_back(m->state);
      }
      state->cv.notify_all();
    };
    std::promise<Result<std::shared_ptr<Connection>>> connected;
    auto future = connected.get_future();
    transport->Connect(address, h, [&connected](Result<std::shared_ptr<Connection>> c) {
      connected.set_value(std::move(c));
    });
    Result<std::shared_ptr<Connection>> c = future.get();
    if (!c.ok()) FAIL(c.status().ToString());
    connection_ = *c;
  }
  ~SubmitClient() { Close(); }
  SubmitClient(const SubmitClient&) = delete;
  SubmitClient& operator=(const SubmitClient&) = delete;

  Status Submit(const msg::JobSpecText& text) { return SendMessage(*connection_, text); }
  // Waits for a JobStatus in `state`; false when `timeout` passes first.
  bool WaitFor(msg::JobState state, std::chrono::milliseconds timeout = kJobBound) {
    std::unique_lock<std::mutex> lock(state_->mu);
    return state_->cv.wait_for(lock, timeout, [&] {
      return std::find(state_->states.begin(), state_->states.end(), state) != state_->states.end();
    });
  }
  void Close() { connection_->Close(); }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<msg::JobState> states;
  };
  std::shared_ptr<State> state_;
  std::shared_ptr<Connection> connection_;
};

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The fakes never failed to do what the master asked (decode, build a layout, write a shard).
void CheckNoProblems(const FakeWorker& w) {
  const FakeWorkerLog log = w.log();
  for (const std::string& p : log.problems) FAIL_CHECK(p);
}

std::set<int64_t> Partitions(const std::vector<msg::RunMapTask>& tasks) {
  std::set<int64_t> out;
  for (const auto& t : tasks) out.insert(t.partition);
  return out;
}

// Checks `done` every few milliseconds until it holds (true) or `timeout` passes (false): for
// conditions over several fakes, whose own waits each see only their own changes.
bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------

TEST_CASE("map tasks run in waves of two per slot, each on the worker that loaded its partition",
          "[runtime][master]") {
  Cluster cluster;
  FakeWorker& a = cluster.AddWorker("fake-a");
  FakeWorker& b = cluster.AddWorker("fake-b");
  // Losses whose float sum depends on the order (the tree order's differs from left to right),
  // answered later for lower partitions, so answers arrive out of partition order.
  const std::vector<double> losses = {1.8, 0.2, 2.6, 1.1, 0.6, 1.1};
  // Scripts run on the transport thread, possibly past a failed REQUIRE: they capture by value.
  auto stats_of = [losses](int64_t p) { return api::MapStats{losses[p], 10 + p, p}; };
  auto script = [stats_of](const msg::RunMapTask& t) {
    return MapReply::Done(stats_of(t.partition), std::chrono::milliseconds(4 * (6 - t.partition)));
  };
  const std::vector<api::MapStats> eval = {{0.3, 5, 4}, {0.9, 7, 6}};
  for (FakeWorker* w : {&a, &b}) {
    w->set_map_script(script);
    w->set_eval_stats([eval](const msg::EvaluateTask& t) { return eval[t.partition]; });
  }
  SpecOptions spec;
  spec.partitions = 6;
  spec.test_partitions = 2;
  spec.epochs = 2;
  spec.rounds = 2;
  auto listener = std::make_shared<RecordingListener>();
  cluster.Submit(spec, listener);
  REQUIRE(listener->WaitFinished());
  REQUIRE(listener->status().ToString() == "OK");
  const FakeWorkerLog la = a.log();
  const FakeWorkerLog lb = b.log();

  // Each partition is loaded once, spread evenly; its tasks then stay where it was loaded.
  std::map<std::pair<msg::DataSet, int64_t>, const FakeWorkerLog*> owner;
  for (const FakeWorkerLog* log : {&la, &lb}) {
    for (const auto& load : log->loads) {
      CHECK(load.attempt == 0);
      CHECK(owner.emplace(std::make_pair(load.set, load.partition), log).second);
    }
  }
  CHECK(owner.size() == 8);
  CHECK(la.loads.size() == 4);  // 3 train + 1 test partition each
  CHECK(lb.loads.size() == 4);
  std::map<std::pair<int64_t, int64_t>, std::multiset<int64_t>> by_round;
  for (const FakeWorkerLog* log : {&la, &lb}) {
    CHECK(log->map_tasks.size() == 12);  // its 3 partitions x 2 epochs x 2 rounds
    for (const auto& t : log->map_tasks) {
      INFO("epoch " << t.epoch << " round " << t.round << " partition " << t.partition);
      CHECK(owner[{msg::DataSet::kTrain, t.partition}] == log);
      CHECK(t.attempt == 0);
      CHECK(t.learning_rate == 0.1);
      CHECK(t.step == t.epoch * 2 + t.round + 1);
      by_round[{t.epoch, t.round}].insert(t.partition);
    }
    for (const auto& e : log->evaluations) CHECK(owner[{e.set, e.partition}] == log);
    // Two tasks per slot: the second waits in the worker's queue, never a third.
    CHECK(log->max_unanswered_map_tasks == 2);
  }
  CHECK(by_round.size() == 4);
  for (const auto& [round, partitions] : by_round) {
    CHECK(partitions == std::multiset<int64_t>{0, 1, 2, 3, 4, 5});
  }

  // The submitter's figures are the workers' numbers summed in the partitions' tree order.
  api::MapStats round_total;
  round_total.loss_sum =
      ((losses[0] + losses[1]) + (losses[2] + losses[3])) + (losses[4] + losses[5]);
  for (int64_t p = 0; p < 6; ++p) {
    round_total.examples += 10 + p;
    round_total.correct += p;
  }
  api::MapStats epoch_total;
  for (int r = 0; r < 2; ++r) {
    epoch_total.loss_sum += round_total.loss_sum;
    epoch_total.examples += round_total.examples;
    epoch_total.correct += round_total.correct;
  }
  const double test_loss = (0.0 + 0.3 + 0.9) / 12;
  const auto epochs = listener->epochs();
  REQUIRE(epochs.size() == 2);
  for (int e = 0; e < 2; ++e) {
    CHECK(epochs[e].epoch == e + 1);
    CHECK(epochs[e].epochs == 2);
    CHECK(epochs[e].examples == 150);
    CHECK(epochs[e].train_loss == epoch_total.loss_sum / 150);
    CHECK(epochs[e].train_accuracy == 30.0 / 150);
    REQUIRE(epochs[e].test_loss.has_value());
    CHECK(*epochs[e].test_loss == test_loss);
    CHECK(*epochs[e].test_accuracy == 10.0 / 12);
  }
  CHECK(listener->rounds() ==
        std::vector<std::pair<int64_t, int64_t>>{{0, 0}, {0, 1}, {1, 0}, {1, 1}});

  // The one reducer shard lives on the first worker and gets each round's example count.
  REQUIRE(la.reduces.size() == 4);
  CHECK(lb.reduces.empty());
  for (size_t i = 0; i < la.reduces.size(); ++i) {
    CHECK(la.reduces[i].step == static_cast<int64_t>(i) + 1);
    CHECK(la.reduces[i].example_count == 75);
  }
  CHECK(la.saves.size() == 2);  // a checkpoint after each epoch
  const auto result = listener->result();
  REQUIRE(result.has_value());
  CHECK(std::filesystem::exists(result->model_path));
  CheckNoProblems(a);
  CheckNoProblems(b);
}

TEST_CASE("map tasks cover nodes of the partitions' tree, planned where their partitions load",
          "[runtime][master]") {
  MasterOptions options;
  options.map_node_partitions = 2;
  Cluster cluster(options);
  FakeWorker& a = cluster.AddWorker("fake-a");
  FakeWorker& b = cluster.AddWorker("fake-b");
  // A node's statistics, as its worker summed them; the master adds the nodes in tree order:
  // (node 0 + node 1) + node 2, which these losses tell from the other orders.
  const std::vector<double> losses = {1e17, -1e17, 1.0};
  auto script = [losses](const msg::RunMapTask& t) {
    return MapReply::Done(api::MapStats{losses[t.partition / 2], 10, 1});
  };
  a.set_map_script(script);
  b.set_map_script(script);
  SpecOptions spec;
  spec.partitions = 6;
  spec.epochs = 1;
  spec.rounds = 2;
  auto listener = std::make_shared<RecordingListener>();
  cluster.Submit(spec, listener);
  REQUIRE(listener->WaitFinished());
  REQUIRE(listener->status().ToString() == "OK");
  const FakeWorkerLog la = a.log();
  const FakeWorkerLog lb = b.log();
  std::map<int64_t, const FakeWorkerLog*> loaded_on;
  for (const FakeWorkerLog* log : {&la, &lb}) {
    for (const auto& load : log->loads) loaded_on[load.partition] = log;
  }
  REQUIRE(loaded_on.size() == 6);
  std::map<int64_t, std::multiset<int64_t>> by_round;
  for (const FakeWorkerLog* log : {&la, &lb}) {
    for (const auto& t : log->map_tasks) {
      INFO("round " << t.round << " partition " << t.partition);
      CHECK(t.partition_count == 2);
      // Task i runs on job worker i mod 2, which loaded both of its partitions.
      CHECK(log == (t.partition / 2 % 2 == 0 ? &la : &lb));
      CHECK(loaded_on[t.partition] == log);
      CHECK(loaded_on[t.partition + 1] == log);
      by_round[t.round].insert(t.partition);
    }
  }
  CHECK(by_round == std::map<int64_t, std::multiset<int64_t>>{{0, {0, 2, 4}}, {1, {0, 2, 4}}});
  const auto epochs = listener->epochs();
  REQUIRE(epochs.size() == 1);
  CHECK(epochs[0].examples == 60);
  CHECK(epochs[0].train_loss == 2 * ((1e17 + -1e17) + 1.0) / 60);
  CheckNoProblems(a);
  CheckNoProblems(b);
}

TEST_CASE(
    "the peaks of memory workers report with their map tasks reach each epoch's report, "
    "metrics.jsonl and the log at the job's end",
    "[runtime][master]") {
  Cluster cluster;
  FakeWorker& a = cluster.AddWorker("fake-a");
  FakeWorker& b = cluster.AddWorker("fake-b");
  constexpr int64_t kMiB = 1 << 20;
  // [worker][epoch]: b's peak falls in epoch 2, and its report keeps the highest.
  const int64_t peaks[2][2] = {{100 * kMiB, 300 * kMiB}, {200 * kMiB, 150 * kMiB}};
  for (int w = 0; w < 2; ++w) {
    (w == 0 ? a : b).set_map_script([peak = peaks[w]](const msg::RunMapTask& t) {
      MapReply r = MapReply::Done(DefaultMapStats(t.partition));
      r.peak_rss_bytes = peak[t.epoch] + t.partition;  // the last task's is not the highest
      return r;
    });
  }
  SpecOptions spec;
  spec.epochs = 2;
  auto listener = std::make_shared<RecordingListener>();
  std::string log_text;
  {
    CapturedLog log("master");
    cluster.Submit(spec, listener);
    REQUIRE(listener->WaitFinished());
    log_text = log.text();
  }
  REQUIRE(listener->status().ToString() == "OK");

  const auto epochs = listener->epochs();
  REQUIRE(epochs.size() == 2);
  for (int e = 0; e < 2; ++e) {
    INFO("epoch " << e + 1);
    const JobPeakRss& peak = epochs[e].peak_rss;
    CHECK(peak.master_bytes > kMiB);
    REQUIRE(peak.workers.size() == 2);
    // The highest task's peak (partitions 0..3 spread over the two workers).
    CHECK(peak.workers[0].name == "fake-a");
    CHECK(peak.workers[1].name == "fake-b");
    CHECK(peak.workers[0].bytes / kMiB == (e == 0 ? 100 : 300));
    CHECK(peak.workers[1].bytes / kMiB == 200);
  }
  // metrics.jsonl: the same figures on each epoch's line, beside the fields it always had.
  std::ifstream metrics(std::filesystem::path(listener->result()->model_path).parent_path() /
                        "metrics.jsonl");
  std::string line;
  std::vector<nlohmann::json> lines;
  while (std::getline(metrics, line)) lines.push_back(nlohmann::json::parse(line));
  REQUIRE(lines.size() == 2);
  CHECK(lines[1]["train_loss"].is_number());
  CHECK(lines[1]["master_peak_rss_bytes"].get<int64_t>() > kMiB);
  CHECK(lines[0]["worker_peak_rss_bytes"]["fake-a"].get<int64_t>() / kMiB == 100);
  CHECK(lines[1]["worker_peak_rss_bytes"]["fake-a"].get<int64_t>() / kMiB == 300);
  CHECK(lines[1]["worker_peak_rss_bytes"]["fake-b"].get<int64_t>() / kMiB == 200);
  CHECK(lines[1]["max_worker_peak_rss_bytes"].get<int64_t>() / kMiB == 300);
  // The line read back (how a submit client gets it) keeps the figures.
  Result<EpochReport> read = EpochReport::FromJson(lines[1].dump());
  REQUIRE(read.ok());
  CHECK(read->peak_rss.workers.size() == 2);

  // The master's own figure varies: the line is checked around it.
  const size_t at = log_text.find("job 1 (fake_job) peak RSS: master ");
  REQUIRE(at != std::string::npos);
  const std::string rest = log_text.substr(at, log_text.find('\n', at) - at);
  CHECK_THAT(rest, Catch::Matches("job 1 \\(fake_job\\) peak RSS: master [0-9]+ MiB, "
                                  "worker 1 \\(fake-a\\) 300 MiB, worker 2 \\(fake-b\\) 200 MiB"));
  CheckNoProblems(a);
  CheckNoProblems(b);
}

TEST_CASE("a failed map task is retried with the next attempt; max_attempts failures fail the job",
          "[runtime][master]") {
  Cluster cluster;
  FakeWorker& a = cluster.AddWorker("fake-a");
  FakeWorker& b = cluster.AddWorker("fake-b");
  SpecOptions spec;
  spec.max_attempts = 2;
  auto listener = std::make_shared<RecordingListener>();
  const Status boom = PluginError("mapper 'logistic' threw: bad row 7");

  SECTION("one failure: the retry's result counts, the failed attempt's does not") {
    auto script = [boom](const msg::RunMapTask& t) {
      if (t.partition == 2 && t.attempt == 0) return MapReply::Fail(boom);
      return MapReply::Done(DefaultMapStats(t.partition));
    };
    a.set_map_script(script);
    b.set_map_script(script);
    cluster.Submit(spec, listener);
    REQUIRE(listener->WaitFinished());
    REQUIRE(listener->status().ToString() == "OK");
    std::vector<msg::RunMapTask> p2;
    for (const FakeWorker* w : {&a, &b}) {
      for (const auto& t : w->log().map_tasks) {
        if (t.partition == 2) p2.push_back(t);
      }
    }
    // Both attempts on the same worker (it holds the partition), attempt numbers 0 then 1.
    REQUIRE(p2.size() == 2);
    CHECK(p2[0].attempt == 0);
    CHECK(p2[1].attempt == 1);
    CHECK(Partitions(a.log().map_tasks).count(2) + Partitions(b.log().map_tasks).count(2) == 1);
    const auto epochs = listener->epochs();
    REQUIRE(epochs.size() == 1);
    CHECK(epochs[0].examples == 10 + 11 + 12 + 13);
    CHECK(cluster.JobStatus(1)["state"] == "succeeded");
  }

  SECTION("max_attempts failures: the job fails naming the partition, the step and the cause") {
    auto script = [boom](const msg::RunMapTask& t) {
      if (t.partition == 2) return MapReply::Fail(boom);
      return MapReply::Done(DefaultMapStats(t.partition));
    };
    a.set_map_script(script);
    b.set_map_script(script);
    cluster.Submit(spec, listener);
    REQUIRE(listener->WaitFinished());
    const Status s = listener->status();
    INFO(s.ToString());
    CHECK(s.code() == StatusCode::kPluginError);
    CHECK(Contains(s.message(), "partition 2 failed 2 times"));
    CHECK(Contains(s.message(), "epoch 1 round 1: map tasks"));
    CHECK(Contains(s.message(), "bad row 7"));
    CHECK_FALSE(listener->result().has_value());
    int attempts = 0;
    for (const FakeWorker* w : {&a, &b}) {
      for (const auto& t : w->log().map_tasks) attempts += t.partition == 2 ? 1 : 0;
    }
    CHECK(attempts == 2);
    const auto job = cluster.JobStatus(1);
    CHECK(job["state"] == "failed");
    CHECK(Contains(job["error"].get<std::string>(), "partition 2"));
  }
  CHECK(listener->finished() == 1);
  CheckNoProblems(a);
  CheckNoProblems(b);
}

TEST_CASE("a job whose error quotes bytes that are not UTF-8 still shows on the status page",
          "[runtime][master]") {
  Cluster cluster;
  FakeWorker& a = cluster.AddWorker("fake-a");
  SpecOptions spec;
  spec.max_attempts = 1;
  // What a csv reader says of a field holding Latin-1 text: its bytes, quoted.
  const Status bad = CorruptionError("t.csv:3: column 2: expected a number, got '\xff\xfe'");
  a.set_map_script([bad](const msg::RunMapTask& t) { return MapReply::Fail(bad); });
  auto listener = std::make_shared<RecordingListener>();
  cluster.Submit(spec, listener);
  REQUIRE(listener->WaitFinished());
  const auto job = cluster.JobStatus(1);  // threw json type_error.316 before
  CHECK(job["state"] == "failed");
  CHECK(Contains(job["error"].get<std::string>(), "got '\xEF\xBF\xBD\xEF\xBF\xBD'"));
}

TEST_CASE("a worker lost mid-round hands its tasks to the others; its late result is dropped",
          "[runtime][master]") {
  Cluster cluster;
  FakeWorker& a = cluster.AddWorker("fake-a");  // registers first: hosts reducer shard 0
  FakeWorker& b = cluster.AddWorker("fake-b");  // hosts no shard
  // a answers its own tasks and holds the ones it takes over; b holds everything, then dies.
  a.set_map_script([](const msg::RunMapTask& t) {
    return t.attempt == 0 ? MapReply::Done(DefaultMapStats(t.partition)) : MapReply::Hold();
  });
  b.set_map_script([](const msg::RunMapTask&) { return MapReply::Hold(); });
  auto listener = std::make_shared<RecordingListener>();
  const uint64_t job = cluster.Submit(SpecOptions{}, listener);

  REQUIRE(b.WaitUntil([](const FakeWorkerLog& log) { return log.held.size() == 2; }));
  REQUIRE(a.WaitUntil([](const FakeWorkerLog& log) {
    return log.map_tasks.size() == 2 && log.unanswered_map_tasks == 0;
  }));
  const std::set<int64_t> lost = Partitions(b.log().held);
  b.Disconnect();

  // b's tasks go to a with the next attempt number.
  REQUIRE(a.WaitUntil([](const FakeWorkerLog& log) { return log.held.size() == 2; }));
  const auto taken_over = a.log().held;
  CHECK(Partitions(taken_over) == lost);
  for (const auto& t : taken_over) {
    CHECK(t.attempt == 1);
    CHECK(t.epoch == 0);
    CHECK(t.round == 0);
  }

  // b comes back as a new worker and reports its old attempt, with numbers that would show.
  FakeWorker& b_again = cluster.AddWorker("fake-b-again");
  const int64_t dropped_before = cluster.StatusJson()["dropped_results"].get<int64_t>();
  REQUIRE(b_again.Send(msg::MapTaskDone{job, 0, 0, *lost.begin(), 0, 1000.0, 1000, 1000, 0}).ok());
  a.AnswerHeld(
      [](const msg::RunMapTask& t) { return MapReply::Done(DefaultMapStats(t.partition)); });

  REQUIRE(listener->WaitFinished());
  REQUIRE(listener->status().ToString() == "OK");
  CHECK(cluster.StatusJson()["dropped_results"].get<int64_t>() == dropped_before + 1);
  const auto epochs = listener->epochs();
  REQUIRE(epochs.size() == 1);
  CHECK(epochs[0].examples == 10 + 11 + 12 + 13);
  CHECK(epochs[0].train_loss == (0.0 + 0.5 + 1.0 + 1.5 + 2.0) / 46);
  const FakeWorkerLog la = a.log();
  REQUIRE(la.reduces.size() == 1);
  CHECK(la.reduces[0].example_count == 46);
  CHECK(b_again.log().map_tasks.empty());  // joined after the job started: not part of it
  CheckNoProblems(a);
  CheckNoProblems(b_again);
}

TEST_CASE(
    "losing the worker that hosts a reducer shard places the shards again and replays "
    "from the last checkpoint",
    "[runtime][master]") {
  Cluster cluster;
  FakeWorker& a = cluster.AddWorker("fake-a");  // worker 1, shard 0
  FakeWorker& b = cluster.AddWorker("fake-b");  // worker 2, shard 1
  b.set_map_script([](const msg::RunMapTask&) { return MapReply::Hold(); });
  SpecOptions spec;
  spec.reducers = 2;
  spec.epochs = 2;
  auto listener = std::make_shared<RecordingListener>();
  cluster.Submit(spec, listener);
  REQUIRE(b.WaitUntil([](const FakeWorkerLog& log) { return log.held.size() == 2; }));
  REQUIRE(b.log().starts.size() == 1);
  CHECK(b.log().starts[0].hosted_shards == std::vector<int64_t>{1});

  b.Disconnect();
  REQUIRE(listener->WaitFinished(5s));
  const Status s = listener->status();
  INFO(s.ToString());
  REQUIRE(s.ok());
  // Worker 1 built the model again, now hosting both shards, restored from where the job
  // started (no checkpoint was committed yet), and ran every partition of the replayed round.
  const FakeWorkerLog la = a.log();
  REQUIRE(la.starts.size() == 2);
  CHECK(la.starts[1].hosted_shards == std::vector<int64_t>({0, 1}));
  CHECK(la.starts[1].resume_epochs == 0);
  CHECK(la.starts[1].step == 0);
  CHECK(la.starts[1].shard_addresses.size() == 2);
  CHECK(la.starts[1].placement == la.starts[0].placement + 1);  // answers to the first now stale
  int64_t first_round_tasks = 0;
  for (const msg::RunMapTask& t : la.map_tasks) first_round_tasks += t.step == 1 ? 1 : 0;
  CHECK(first_round_tasks >= 4);
  CHECK(cluster.StatusJson()["recoveries"] == 1);
  CheckNoProblems(a);
}

TEST_CASE("a recovery restores from the last committed checkpoint, not the job's start",
          "[runtime][master]") {
  Cluster cluster;
  FakeWorker& a = cluster.AddWorker("fake-a");  // worker 1, shard 0
  FakeWorker& b = cluster.AddWorker("fake-b");  // worker 2, shard 1
  // Epoch 2's map tasks on b never finish; b is then lost.
  b.set_map_script([](const msg::RunMapTask& t) {
    return t.epoch == 1 ? MapReply::Hold() : MapReply::Done(DefaultMapStats(t.partition));
  });
  SpecOptions spec;
  spec.reducers = 2;
  spec.epochs = 3;
  auto listener = std::make_shared<RecordingListener>();
  cluster.Submit(spec, listener);
  REQUIRE(b.WaitUntil([](const FakeWorkerLog& log) { return !log.held.empty(); }));
  b.Disconnect();
  REQUIRE(listener->WaitFinished(5s));
  INFO(listener->status().ToString());
  REQUIRE(listener->status().ok());
  const FakeWorkerLog la = a.log();
  REQUIRE(la.starts.size() == 2);
  CHECK(la.starts[1].resume_epochs == 1);             // the checkpoint after epoch 1
  CHECK(la.starts[1].step == la.starts[0].step + 1);  // one round per epoch
  CheckNoProblems(a);
}

TEST_CASE("a worker that joins mid-job is set up and takes over its share of the partitions",
          "[runtime][master]") {
  Cluster cluster;
  FakeWorker& a = cluster.AddWorker("fake-a");
  // Epoch 1's tasks wait until the second worker has registered.
  std::atomic<bool> release{false};
  a.set_map_script([&](const msg::RunMapTask& t) {
    return t.epoch == 0 && !release ? MapReply::Hold()
                                    : MapReply::Done(DefaultMapStats(t.partition));
  });
  SpecOptions spec;
  spec.epochs = 3;
  auto listener = std::make_shared<RecordingListener>();
  cluster.Submit(spec, listener);
  REQUIRE(a.WaitUntil([](const FakeWorkerLog& log) { return log.held.size() == 2; }));
  FakeWorker& late = cluster.AddWorker("fake-late");
  release = true;
  a.AnswerHeld(
      [](const msg::RunMapTask& t) { return MapReply::Done(DefaultMapStats(t.partition)); });
  REQUIRE(listener->WaitFinished(5s));
  INFO(listener->status().ToString());
  REQUIRE(listener->status().ok());
  const FakeWorkerLog ll = late.log();
  CHECK(ll.specs.size() == 1);
  REQUIRE(ll.starts.size() == 1);
  CHECK(ll.starts[0].hosted_shards.empty());
  // 4 partitions over 2 workers: the late one runs 2 of them in every round after it joined.
  CHECK(ll.map_tasks.size() >= 4);
  CheckNoProblems(a);
  CheckNoProblems(late);
}

TEST_CASE(
    "a joiner that dies or goes quiet during its setup is left out; the job finishes on "
    "the others",
    "[runtime][master]") {
  MasterOptions options;
  options.step_timeout = std::chrono::hours(1);
  options.heartbeat_timeout = 0ms;  // the fake workers send none
  Cluster cluster(options, /*fake_clock=*/true);
  FakeWorker& a = cluster.AddWorker("fake-a");
  std::atomic<bool> release{false};
  a.set_map_script([&](const msg::RunMapTask& t) {
    return t.epoch == 0 && !release ? MapReply::Hold()
                                    : MapReply::Done(DefaultMapStats(t.partition));
  });
  SpecOptions spec;
  spec.epochs = 3;
  auto listener = std::make_shared<RecordingListener>();
  cluster.Submit(spec, listener);
  REQUIRE(a.WaitUntil([](const FakeWorkerLog& log) { return log.held.size() == 2; }));
  FakeWorkerOptions quiet;
  quiet.name = "fake-joiner";
  quiet.answer_specs = false;
  FakeWorker& joiner = cluster.AddWorker(quiet);
  release = true;
  a.AnswerHeld(
      [](const msg::RunMapTask& t) { return MapReply::Done(DefaultMapStats(t.partition)); });
  // Epoch 2's round sets the job up on the joiner first; the step's bound is armed by then.
  REQUIRE(joiner.WaitUntil([](const FakeWorkerLog& log) { return log.specs.size() == 1; }));
  SECTION("it dies right after registering") { joiner.Disconnect(); }
  SECTION("it never answers its setup") { cluster.clock()->Advance(std::chrono::hours(1)); }
  // Before the fix the lost joiner stayed in the set the step waited for: the job hung, and
  // every later bound declared the same worker lost again.
  REQUIRE(listener->WaitFinished(5s));
  INFO(listener->status().ToString());
  REQUIRE(listener->status().ok());
  const std::vector<EpochReport> epochs = listener->epochs();
  REQUIRE(epochs.size() == 3);
  for (const EpochReport& e : epochs) {
    CHECK(e.examples == 10 + 11 + 12 + 13);  // DefaultMapStats of partitions 0..3
    CHECK(e.train_loss == Approx(0.5 * (1 + 2 + 3 + 4) / 46.0));
  }
  const FakeWorkerLog la = a.log();
  CHECK(la.map_tasks.size() == 12);  // every partition of every epoch ran on the one left
  CHECK(Partitions(la.map_tasks) == std::set<int64_t>{0, 1, 2, 3});
  const FakeWorkerLog lj = joiner.log();
  CHECK(lj.closed);
  CHECK(lj.starts.empty());
  CHECK(lj.map_tasks.empty());
  CHECK(cluster.StatusJson()["workers"].size() == 1);
  CheckNoProblems(a);
}

TEST_CASE(
    "a submitter leaving after its job ended cancels nothing and is no news; one leaving "
    "mid-job cancels its job",
    "[runtime][master]") {
  const bool mid_job = GENERATE(false, true);
  CapturedLog captured("master");
  {
    Cluster cluster;
    FakeWorker& a = cluster.AddWorker("fake-a");
    if (mid_job) a.set_map_script([](const msg::RunMapTask&) { return MapReply::Hold(); });
    SubmitClient client(cluster.transport(), cluster.address());
    REQUIRE(client.Submit(cluster.Text(SpecOptions{})).ok());
    if (mid_job) {
      REQUIRE(a.WaitUntil([](const FakeWorkerLog& log) { return log.held.size() == 2; }));
      client.Close();
      REQUIRE(WaitFor([&] { return cluster.JobStatus(1)["state"] == "cancelled"; }));
    } else {
      REQUIRE(client.WaitFor(msg::JobState::kSucceeded));
      client.Close();
      // The next job runs whenever the first one's submitter goes.
      auto listener = std::make_shared<RecordingListener>();
      cluster.Submit(SpecOptions{}, listener);
      REQUIRE(listener->WaitFinished());
      CHECK(listener->status().ok());
      CHECK(cluster.JobStatus(1)["state"] == "succeeded");
    }
  }  // the cluster's end runs every connection's close callback
  CHECK(Contains(captured.text(), "the submitter of job 1 went away; cancelling it") == mid_job);
}

TEST_CASE(
    "workers that see different datasets fail the job naming both; a joiner that does "
    "is left out",
    "[runtime][master]") {
  SECTION("at the job's start") {
    Cluster cluster;
    FakeWorker& a = cluster.AddWorker("fake-a");
    cluster.AddWorker("fake-b", 1, /*extra_train_partitions=*/1);
    auto listener = std::make_shared<RecordingListener>();
    cluster.Submit(SpecOptions{}, listener);
    REQUIRE(listener->WaitFinished(5s));
    const Status s = listener->status();
    INFO(s.ToString());
    CHECK(s.code() == StatusCode::kFailedPrecondition);
    CHECK(Contains(s.message(), "train partitions 4 on worker 1, 5 on worker 2"));
    CHECK(a.log().map_tasks.empty());
  }
  SECTION("when joining mid-job") {
    Cluster cluster;
    FakeWorker& a = cluster.AddWorker("fake-a");
    std::atomic<bool> release{false};
    a.set_map_script([&](const msg::RunMapTask& t) {
      return t.epoch == 0 && !release ? MapReply::Hold()
                                      : MapReply::Done(DefaultMapStats(t.partition));
    });
    SpecOptions spec;
    spec.epochs = 2;
    auto listener = std::make_shared<RecordingListener>();
    cluster.Submit(spec, listener);
    REQUIRE(a.WaitUntil([](const FakeWorkerLog& log) { return log.held.size() == 2; }));
    FakeWorker& odd = cluster.AddWorker("fake-odd", 1, /*extra_train_partitions=*/1);
    release = true;
    a.AnswerHeld(
        [](const msg::RunMapTask& t) { return MapReply::Done(DefaultMapStats(t.partition)); });
    REQUIRE(listener->WaitFinished(5s));
    INFO(listener->status().ToString());
    REQUIRE(listener->status().ok());
    CHECK(odd.log().specs.size() == 1);  // it was asked, answered, and left out
    CHECK(odd.log().starts.empty());
    CHECK(odd.log().map_tasks.empty());
  }
}

TEST_CASE("a job cancelled mid-round fails with kAborted and the queued job then runs",
          "[runtime][master]") {
  Cluster cluster;
  FakeWorker& a = cluster.AddWorker("fake-a");
  FakeWorker& b = cluster.AddWorker("fake-b");
  // Job 1's map tasks never finish; job 2's do.
  auto script = [](const msg::RunMapTask& t) {
    return t.job_id == 1 ? MapReply::Hold() : MapReply::Done(DefaultMapStats(t.partition));
  };
  a.set_map_script(script);
  b.set_map_script(script);
  auto first = std::make_shared<RecordingListener>();
  auto second = std::make_shared<RecordingListener>();
  SpecOptions spec1;
  spec1.name = "first";
  SpecOptions spec2;
  spec2.name = "second";
  spec2.output = "out2";
  REQUIRE(cluster.Submit(spec1, first) == 1);
  for (FakeWorker* w : {&a, &b}) {
    REQUIRE(w->WaitUntil([](const FakeWorkerLog& log) { return log.held.size() == 2; }));
  }
  REQUIRE(cluster.Submit(spec2, second) == 2);
  CHECK(cluster.JobStatus(1)["state"] == "running");
  CHECK(cluster.JobStatus(2)["state"] == "queued");

  const auto cancelled_at = Clock::now();
  cluster.master().Cancel(1);
  REQUIRE(first->WaitFinished(2s));
  CHECK(first->finished_at() - cancelled_at < 1s);
  const Status s = first->status();
  CHECK(s.code() == StatusCode::kAborted);
  CHECK(Contains(s.message(), "cancelled"));

  REQUIRE(second->WaitFinished());
  CHECK(second->status().ToString() == "OK");
  // The same workers ran the next job, after being told to drop the first.
  for (FakeWorker* w : {&a, &b}) {
    REQUIRE(w->WaitUntil([](const FakeWorkerLog& log) { return log.ended_jobs.size() == 2; }));
    const FakeWorkerLog log = w->log();
    CHECK(log.ended_jobs == std::vector<uint64_t>{1, 2});
    int second_tasks = 0;
    for (const auto& t : log.map_tasks) second_tasks += t.job_id == 2 ? 1 : 0;
    CHECK(second_tasks == 2);
  }
  const auto status = cluster.StatusJson();
  CHECK(status["workers"].size() == 2);
  CHECK(cluster.JobStatus(1)["state"] == "cancelled");
  CHECK(Contains(cluster.JobStatus(1)["error"].get<std::string>(), "cancelled"));
  CHECK(cluster.JobStatus(2)["state"] == "succeeded");
  CheckNoProblems(a);
  CheckNoProblems(b);
}

TEST_CASE("the status JSON lists the workers with their slots and every job with its state",
          "[runtime][master]") {
  Cluster cluster;
  FakeWorker& a = cluster.AddWorker("fake-a", 1);
  FakeWorker& b = cluster.AddWorker("fake-b", 3);
  auto status = cluster.StatusJson();
  REQUIRE(status["workers"].size() == 2);
  CHECK(status["workers"][0]["name"] == "fake-a");
  CHECK(status["workers"][0]["slots"] == 1);
  CHECK(status["workers"][1]["name"] == "fake-b");
  CHECK(status["workers"][1]["slots"] == 3);
  CHECK(status["jobs"].empty());
  CHECK(status["dropped_results"] == 0);

  for (FakeWorker* w : {&a, &b}) {
    w->set_map_script([](const msg::RunMapTask&) { return MapReply::Hold(); });
  }
  SpecOptions one;
  one.name = "status_one";
  one.epochs = 2;
  SpecOptions two;
  two.name = "status_two";
  two.output = "out2";
  auto l1 = std::make_shared<RecordingListener>();
  auto l2 = std::make_shared<RecordingListener>();
  auto l3 = std::make_shared<RecordingListener>();
  cluster.Submit(one, l1, "one.yaml");
  cluster.Submit(two, l2, "two.yaml");
  cluster.Submit(two, l3, "three.yaml");
  REQUIRE(WaitFor([&] { return a.log().held.size() + b.log().held.size() == 4; }));
  cluster.master().Cancel(3);
  REQUIRE(l3->WaitFinished(2s));
  CHECK(l3->status().code() == StatusCode::kAborted);

  auto j1 = cluster.JobStatus(1);
  CHECK(j1["name"] == "status_one");  // the spec's name once it is parsed
  CHECK(j1["state"] == "running");
  CHECK(j1["epochs"] == 2);
  CHECK(j1["epochs_done"] == 0);
  CHECK(cluster.JobStatus(2)["name"] == "two.yaml");  // its source until it runs
  CHECK(cluster.JobStatus(2)["state"] == "queued");
  CHECK(cluster.JobStatus(3)["state"] == "cancelled");

  auto done = [](const msg::RunMapTask& t) { return MapReply::Done(DefaultMapStats(t.partition)); };
  for (FakeWorker* w : {&a, &b}) {
    w->set_map_script(done);
    w->AnswerHeld(done);
  }
  REQUIRE(l1->WaitFinished());
  REQUIRE(l2->WaitFinished());
  CHECK(l1->status().ToString() == "OK");
  CHECK(l2->status().ToString() == "OK");
  j1 = cluster.JobStatus(1);
  CHECK(j1["state"] == "succeeded");
  CHECK(j1["epochs_done"] == 2);
  CHECK_FALSE(j1.contains("error"));
  CHECK(cluster.JobStatus(2)["name"] == "status_two");
  CHECK(cluster.JobStatus(2)["state"] == "succeeded");
  CHECK(cluster.JobStatus(2)["epochs_done"] == 1);
  CHECK(cluster.StatusJson()["jobs"].size() == 3);
  CheckNoProblems(a);
  CheckNoProblems(b);
}

TEST_CASE("a worker stuck past the step's bound is named and declared lost; alone, the job fails",
          "[runtime][master]") {
  MasterOptions options;
  options.step_timeout = 300ms;
  options.worker_wait = 300ms;  // for a worker to replace it
  options.speculation_multiple = 0;
  Cluster cluster(options);
  FakeWorker& a = cluster.AddWorker("fake-a");
  std::string step, outstanding;

  SECTION("map tasks that never finish") {
    a.set_map_script([](const msg::RunMapTask&) { return MapReply::Hold(); });
    step = "epoch 1 round 1: map tasks";
    outstanding = "stuck on task for data.train partition 0, rows [0, 8) (attempt 0)";
  }
  SECTION("a reduce that never commits") {
    a.set_hold_reduce([](const msg::ReduceRound&) { return true; });
    step = "epoch 1 round 1: reduce";
    outstanding = "stuck on reducer shard 0 (tensor 0 block 0, tensor 1 block 0)";
  }
  auto listener = std::make_shared<RecordingListener>();
  const auto submitted = Clock::now();
  cluster.Submit(SpecOptions{}, listener);
  REQUIRE(listener->WaitFinished(3s));
  const auto took = listener->finished_at() - submitted;
  CHECK(took >= 600ms);  // the step's bound, then the wait for another worker
  CHECK(took < 2500ms);
  const Status s = listener->status();
  INFO(s.ToString());
  CHECK(s.code() == StatusCode::kUnavailable);
  CHECK(Contains(s.message(), "worker 1 (fake-a)"));
  CHECK(Contains(s.message(), outstanding));
  CHECK(Contains(s.message(), " in " + step + " for over 300 ms"));
  CheckNoProblems(a);
}

TEST_CASE("a send that waits for a slow peer holds no lock: the master keeps answering",
          "[runtime][master]") {
  MasterOptions options;
  options.speculation_multiple = 0;
  Cluster cluster(options, std::make_unique<testing::GatedTransport>(MakeInProcessTransport()));
  FakeWorker& a = cluster.AddWorker("fake-a");
  // The worker's connection is full: the first map task's send waits (on the job thread).
  cluster.gated()->Close(MessageType::kRunMapTask);
  auto listener = std::make_shared<RecordingListener>();
  cluster.Submit(SpecOptions{}, listener);
  REQUIRE(WaitFor([&] { return cluster.gated()->waiting() == 1; }));
  // Meanwhile the master's lock is free (before, the send held it: the status page, and the
  // transport thread with every message, waited for the slow peer).
  auto status = std::async(std::launch::async, [&] { return cluster.StatusJson(); });
  const bool answered = status.wait_for(2s) == std::future_status::ready;
  cluster.gated()->Open();
  CHECK(answered);
  CHECK(status.get()["workers"].size() == 1);
  REQUIRE(listener->WaitFinished());
  INFO(listener->status().ToString());
  CHECK(listener->status().ok());
  CHECK(a.log().map_tasks.size() == 4);
}

TEST_CASE("a step times out on the transport's clock: not before its bound, at once after it",
          "[runtime][master]") {
  MasterOptions options;
  options.step_timeout = std::chrono::hours(1);
  options.heartbeat_timeout = std::chrono::milliseconds(0);  // the fake workers send none
  options.worker_wait = 10ms;  // for a worker to replace the stuck one (a real wait)
  Cluster cluster(options, /*fake_clock=*/true);
  FakeWorker& a = cluster.AddWorker("fake-a");
  a.set_map_script([](const msg::RunMapTask&) { return MapReply::Hold(); });
  auto listener = std::make_shared<RecordingListener>();
  cluster.Submit(SpecOptions{}, listener);
  // The round's map tasks are out and held: the job waits on the step's timer.
  const auto deadline = Clock::now() + 5s;
  while (a.log().unanswered_map_tasks < 2) {
    REQUIRE(Clock::now() < deadline);
    std::this_thread::sleep_for(5ms);
  }
  cluster.clock()->Advance(std::chrono::minutes(59));
  CHECK_FALSE(listener->WaitFinished(200ms));
  cluster.clock()->Advance(std::chrono::minutes(1));
  REQUIRE(listener->WaitFinished(2s));
  const Status s = listener->status();
  INFO(s.ToString());
  CHECK(s.code() == StatusCode::kUnavailable);
  CHECK(Contains(s.message(), "in epoch 1 round 1: map tasks for over 3600000 ms"));
  CHECK(Contains(s.message(), "partition 1, rows [8, 16) (attempt 0)"));
}

TEST_CASE("a worker silent for the heartbeat timeout is declared lost; one that talks stays",
          "[runtime][master]") {
  MasterOptions options;
  options.heartbeat_interval = std::chrono::seconds(1);
  options.heartbeat_timeout = std::chrono::seconds(5);
  Cluster cluster(options, /*fake_clock=*/true);
  FakeWorker& silent = cluster.AddWorker("silent");
  FakeWorker& talking = cluster.AddWorker("talking");
  for (int second = 1; second <= 7; ++second) {
    // The in-process transport delivers in Send order and runs due timers after what is
    // queued, so the master hears this heartbeat before the clock moves on.
    REQUIRE(talking.Send(msg::Heartbeat{2, static_cast<uint64_t>(second), 0}).ok());
    cluster.clock()->Advance(std::chrono::seconds(1));
    // The check ran once it has set its next timer (the only timer: no job runs).
    const auto deadline = Clock::now() + 2s;
    while (cluster.clock()->pending_timers() == 0) {
      REQUIRE(Clock::now() < deadline);
      std::this_thread::sleep_for(1ms);
    }
    if (second <= 5) CHECK(cluster.StatusJson()["workers"].size() == 2);
  }
  REQUIRE(silent.WaitUntil([](const FakeWorkerLog& log) { return log.closed; }));
  const auto workers = cluster.StatusJson()["workers"];
  REQUIRE(workers.size() == 1);
  CHECK(workers[0]["name"] == "talking");
  CHECK_FALSE(talking.log().closed);
}

TEST_CASE("the master's control traffic does not grow with the model's size", "[runtime][master]") {
  Cluster cluster;
  FakeWorker& a = cluster.AddWorker("fake-a");
  FakeWorker& b = cluster.AddWorker("fake-b");
  SpecOptions spec;
  spec.reducers = 2;
  spec.epochs = 2;
  spec.rounds = 2;

  auto run = [&](int64_t num_cols, const std::string& output) -> std::pair<int64_t, std::string> {
    a.set_num_cols(num_cols);
    b.set_num_cols(num_cols);
    spec.output = output;
    const int64_t before = cluster.master().control_bytes();
    auto listener = std::make_shared<RecordingListener>();
    cluster.Submit(spec, listener);
    REQUIRE(listener->WaitFinished());
    REQUIRE(listener->status().ToString() == "OK");
    return {cluster.master().control_bytes() - before, listener->result()->model_path};
  };
  const auto [small_bytes, small_model] = run(100, "out-1");    // 101 parameters
  const auto [large_bytes, large_model] = run(10000, "out-2");  // 10001 parameters
  REQUIRE(a.log().starts.size() == 2);
  CHECK(a.log().starts[1].num_features == 10000);
  // The models really differ by ~40 KB of floats...
  CHECK(std::filesystem::file_size(large_model) > std::filesystem::file_size(small_model) + 30000);
  // ... and the master's messages do not.
  INFO("control bytes: " << small_bytes << " then " << large_bytes);
  CHECK(small_bytes > 0);
  CHECK(std::abs(large_bytes - small_bytes) <= small_bytes / 20);
  CHECK(large_bytes < 40000);
  CheckNoProblems(a);
  CheckNoProblems(b);
}

// Cancel() must wake a job waiting for min_workers, not leave it to worker_wait (60 s).
TEST_CASE("a job cancelled while it waits for workers ends at once", "[runtime][master]") {
  MasterOptions options;
  options.min_workers = 2;
  options.worker_wait = 3s;
  Cluster cluster(options);
  FakeWorker& a = cluster.AddWorker("fake-a");
  auto listener = std::make_shared<RecordingListener>();
  const uint64_t job = cluster.Submit(SpecOptions{}, listener);
  // The job thread takes the job at once; give it a moment to reach the wait for workers.
  REQUIRE(WaitFor([&] { return cluster.JobStatus(job)["state"] == "running"; }));
  std::this_thread::sleep_for(100ms);

  const auto cancelled_at = Clock::now();
  cluster.master().Cancel(job);
  REQUIRE(listener->WaitFinished(5s));
  CHECK(listener->status().code() == StatusCode::kAborted);
  CHECK(listener->finished_at() - cancelled_at < 1s);
  CHECK(a.log().specs.empty());  // it never got as far as the workers
}

}  // namespace
}  // namespace mrtrain::runtime

namespace mrtrain::runtime {
namespace {

// A ShardCommitted matches the running reduce by epoch, round and step: with one round per
// epoch, a duplicate commit of epoch 1's update must not complete epoch 2's reduce (the master
// would checkpoint parameters one step behind).
TEST_CASE("a shard's commit of an earlier step does not complete a later reduce",
          "[runtime][master]") {
  Cluster cluster;
  FakeWorker& a = cluster.AddWorker("fake-a");
  a.set_hold_reduce([](const msg::ReduceRound& m) { return m.step == 2; });
  SpecOptions spec;
  spec.epochs = 2;  // one round per epoch: every reduce is round 0 of its epoch
  auto listener = std::make_shared<RecordingListener>();
  const uint64_t job = cluster.Submit(spec, listener);
  REQUIRE(a.WaitUntil([](const FakeWorkerLog& log) { return log.held_reduces.size() == 1; }));
  const int64_t dropped_before = cluster.StatusJson()["dropped_results"].get<int64_t>();

  // A repeat of epoch 1's commit (step 1), as a repeated ReduceRound would get.
  REQUIRE(a.Send(msg::ShardCommitted{job, 0, 0, 0, 1}).ok());
  // The master goes on waiting for step 2: it asks for no checkpoint of epoch 2 yet.
  CHECK_FALSE(a.WaitUntil([](const FakeWorkerLog& log) { return log.saves.size() == 2; }, 300ms));
  CHECK(cluster.StatusJson()["dropped_results"].get<int64_t>() == dropped_before + 1);

  a.CommitHeldReduces();
  REQUIRE(listener->WaitFinished());
  CHECK(listener->status().ToString() == "OK");
}

TEST_CASE(
    "with staleness 1 a round's map tasks run while the round before is reduced, never "
    "across an epoch's start",
    "[runtime][master]") {
  Cluster cluster;
  FakeWorker& a = cluster.AddWorker("fake-a");
  a.set_hold_reduce([](const msg::ReduceRound&) { return true; });
  SpecOptions spec;
  spec.partitions = 1;
  spec.epochs = 2;
  spec.rounds = 3;
  spec.staleness = 1;
  auto listener = std::make_shared<RecordingListener>();
  cluster.Submit(spec, listener);
  // The map steps (by update step) the fake has seen, and the reduces it holds.
  auto steps = [](const FakeWorkerLog& log) {
    std::vector<int64_t> out;
    for (const msg::RunMapTask& t : log.map_tasks) out.push_back(t.step);
    return out;
  };
  auto held = [](size_t n) {
    return [n](const FakeWorkerLog& log) { return log.held_reduces.size() == n; };
  };
  // Round 1's reduce is held while round 2's map task has run; round 3's waits for it.
  REQUIRE(a.WaitUntil(held(1)));
  REQUIRE(a.WaitUntil([&](const FakeWorkerLog& log) { return steps(log).size() == 2; }));
  CHECK(a.log().held_reduces[0].step == 1);
  CHECK_FALSE(a.WaitUntil([&](const FakeWorkerLog& log) { return steps(log).size() > 2; }, 200ms));
  a.CommitHeldReduces();
  REQUIRE(a.WaitUntil(held(1)));  // step 2's, beside step 3's map task
  REQUIRE(a.WaitUntil([&](const FakeWorkerLog& log) { return steps(log).size() == 3; }));
  CHECK(a.log().held_reduces[0].step == 2);
  a.CommitHeldReduces();
  // Step 3 is the epoch's last: its reduce runs alone, and epoch 2's first map task (step 4)
  // waits until it is committed (and the checkpoint written).
  REQUIRE(a.WaitUntil(held(1)));
  CHECK(a.log().held_reduces[0].step == 3);
  CHECK_FALSE(a.WaitUntil([&](const FakeWorkerLog& log) { return steps(log).size() > 3; }, 200ms));
  a.CommitHeldReduces();
  for (int64_t step = 4; step <= 6; ++step) {
    REQUIRE(a.WaitUntil(held(1)));
    a.CommitHeldReduces();
  }
  REQUIRE(listener->WaitFinished());
  CHECK(listener->status().ToString() == "OK");
  CHECK(steps(a.log()) == std::vector<int64_t>{1, 2, 3, 4, 5, 6});
}

}  // namespace
}  // namespace mrtrain::runtime
