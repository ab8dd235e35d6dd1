#include "runtime/master/master_metrics.h"

#include <catch2/catch.hpp>

#include "test/testing/prometheus_parser.h"

namespace mrtrain::runtime {
namespace {

using Clock = MasterMetrics::Clock;

// A map task launched at t0 and done `seconds` later.
void Task(MasterMetrics& m, uint64_t job, const std::string& worker, int64_t partition,
          double seconds, int64_t examples, int64_t bytes) {
  const Clock::time_point t0 = Clock::now();
  m.OnMapTaskLaunched(job, partition, 0, t0);
  m.OnMapTaskDone(
      job, worker, partition, 0,
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds)),
      examples, bytes);
}

EpochReport Report(int64_t epoch, double train_loss, double test_accuracy) {
  EpochReport r;
  r.epoch = epoch;
  r.epochs = 3;
  r.examples = 100;
  r.train_loss = train_loss;
  r.train_accuracy = 0.5;
  r.test_loss = train_loss + 0.1;
  r.test_accuracy = test_accuracy;
  r.examples_per_sec = 1000;
  r.elapsed_sec = static_cast<double>(epoch);
  r.eta_sec = 3.0 - static_cast<double>(epoch);
  return r;
}

TEST_CASE("a job's live figures follow its rounds, tasks and epochs") {
  MasterMetrics m;
  m.OnJobStarted(4, "mnist");
  m.OnRound(4, 0, 0, 2, 3, 1.0);  // epoch 1 round 1 of 3 x 2 rounds, 1 s in
  Task(m, 4, "w0", 0, 0.003, 60, 1000);
  Task(m, 4, "w1", 0, 0.2, 40, 500);
  m.OnBackupAttempt(4, "w1");
  m.OnRecovery(4);
  nlohmann::json entry;
  m.AddJobStatus(4, &entry);
  CHECK(entry["epoch"] == 1);
  CHECK(entry["round"] == 1);
  CHECK(entry["rounds_per_epoch"] == 2);
  CHECK(entry["rounds"] == 1);
  CHECK(entry["eta_sec"] == 5.0);  // 5 rounds left at 1 s each
  CHECK(entry["examples"] == 100);
  CHECK(entry["examples_per_sec"] == 100.0);  // before any epoch ended: examples / elapsed
  CHECK(entry["bytes_shuffled"] == 1500);
  CHECK(entry["backup_attempts"] == 1);
  CHECK(entry["recoveries"] == 1);

  m.OnEpoch(4, Report(1, 0.7, 0.6));
  m.OnEpoch(4, Report(2, 0.5, 0.8));
  entry = nlohmann::json::object();
  m.AddJobStatus(4, &entry);
  CHECK(entry["epoch"] == 2);
  CHECK(entry["eta_sec"] == 1.0);
  CHECK(entry["examples_per_sec"] == 1000.0);
  CHECK(entry["train_loss"] == 0.5);
  CHECK(entry["test_accuracy"] == 0.8);

  auto history = m.History(4);
  REQUIRE(history);
  CHECK((*history)["job"] == 4);
  CHECK((*history)["name"] == "mnist");
  REQUIRE((*history)["epochs"].size() == 2);
  CHECK((*history)["epochs"][0]["epoch"] == 1);
  CHECK((*history)["epochs"][1]["test_loss"] == 0.6);
  CHECK(!m.History(5));

  // Unknown jobs (a late result of a job that is gone) are ignored.
  Task(m, 9, "w0", 0, 1, 1, 1);
  m.OnRecovery(9);
  nlohmann::json none = nlohmann::json::object();
  m.AddJobStatus(9, &none);
  CHECK(none.empty());
}

TEST_CASE("the Prometheus families parse, with per-worker counters and histograms") {
  MasterMetrics m;
  m.OnJobStarted(1, "a \"quoted\"\nname\\");
  const std::string hostile = "w\"1\n";
  m.OnRound(1, 0, 0, 1, 1, 0.5);
  Task(m, 1, hostile, 0, 0.003, 60, 1000);
  Task(m, 1, hostile, 0, 0.2, 40, 500);
  Task(m, 1, hostile, 0, 1000, 1, 1);  // past the last bound
  m.OnBackupAttempt(1, "w2");
  m.OnEpoch(1, Report(1, 0.25, 0.75));
  PrometheusText text;
  m.WritePrometheus(&text);
  const auto e = testing::ParsePrometheus(text.text());
  INFO(text.text());
  INFO(e.error);
  REQUIRE(e.error.empty());
  CHECK(e.types.at("mrtrain_map_task_duration_seconds") == "histogram");
  CHECK(e.types.at("mrtrain_rounds_total") == "counter");
  CHECK(e.Value("mrtrain_job_info", {{"job", "1"}, {"name", "a \"quoted\"\nname\\"}}) == 1);
  CHECK(e.Value("mrtrain_rounds_total", {{"job", "1"}}) == 1);
  CHECK(e.Value("mrtrain_job_test_accuracy", {{"job", "1"}}) == 0.75);
  CHECK(e.Value("mrtrain_examples_total", {{"job", "1"}, {"worker", hostile}}) == 101);
  CHECK(e.Value("mrtrain_shuffle_bytes_total", {{"job", "1"}, {"worker", hostile}}) == 1501);
  CHECK(e.Value("mrtrain_backup_attempts_total", {{"job", "1"}, {"worker", "w2"}}) == 1);
  CHECK(e.Value("mrtrain_backup_attempts_total", {{"job", "1"}, {"worker", hostile}}) == 0);
  const std::map<std::string, std::string> w = {{"job", "1"}, {"worker", hostile}};
  auto bucket = [&](const std::string& le) {
    auto labels = w;
    labels["le"] = le;
    return e.Value("mrtrain_map_task_duration_seconds_bucket", labels);
  };
  CHECK(bucket("0.001") == std::nullopt);
  CHECK(bucket("0.005") == 1);
  CHECK(bucket("0.1") == 1);
  CHECK(bucket("0.25") == 2);
  CHECK(bucket("300") == 2);
  CHECK(bucket("+Inf") == 3);
  CHECK(e.Value("mrtrain_map_task_duration_seconds_count", w) == 3);
  CHECK(e.Value("mrtrain_map_task_duration_seconds_sum", w) == Approx(1000.203));
  // A worker with a backup attempt and no finished task has no histogram.
  CHECK(!e.Value("mrtrain_map_task_duration_seconds_count", {{"job", "1"}, {"worker", "w2"}}));
}

TEST_CASE("a long-lived master keeps the newest jobs only") {
  MasterMetrics m;
  for (uint64_t job = 1; job <= MasterMetrics::kJobsKept + 5; ++job) {
    m.OnJobStarted(job, "j");
  }
  CHECK(!m.History(5));
  CHECK(m.History(6));
  CHECK(m.History(MasterMetrics::kJobsKept + 5));
}

}  // namespace
}  // namespace mrtrain::runtime
