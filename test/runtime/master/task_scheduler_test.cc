#include "runtime/master/task_scheduler.h"

#include <catch2/catch.hpp>
#include <map>

namespace mrtrain::runtime {
namespace {

std::map<std::string, int> CountByWorker(const std::vector<TaskAssignment>& tasks) {
  std::map<std::string, int> n;
  for (const auto& t : tasks) n[t.worker]++;
  return n;
}

TEST_CASE("with fewer slots than partitions a round runs in waves", "[runtime]") {
  TaskScheduler s(5, 4);
  s.AddWorker("a", 1);
  s.AddWorker("b", 1);
  s.StartRound();
  auto wave1 = s.Assign();
  REQUIRE(wave1.size() == 2);
  CHECK(s.Assign().empty());  // no free slot
  for (const auto& t : wave1) CHECK(s.OnDone(t.partition, t.attempt, t.worker) ==
                                    TaskScheduler::Outcome::kAccepted);
  auto wave2 = s.Assign();
  CHECK(wave2.size() == 2);
  for (const auto& t : wave2) s.OnDone(t.partition, t.attempt, t.worker);
  auto wave3 = s.Assign();
  REQUIRE(wave3.size() == 1);
  CHECK(wave3[0].partition == 4);
  CHECK_FALSE(s.RoundDone());
  s.OnDone(4, wave3[0].attempt, wave3[0].worker);
  CHECK(s.RoundDone());
}

TEST_CASE("partitions stay on the worker that ran them in the last round", "[runtime]") {
  TaskScheduler s(6, 4);
  s.AddWorker("a", 3);
  s.AddWorker("b", 3);
  s.StartRound();
  std::map<int64_t, std::string> first;
  for (const auto& t : s.Assign()) {
    first[t.partition] = t.worker;
    s.OnDone(t.partition, t.attempt, t.worker);
  }
  CHECK(CountByWorker(s.Assign()).empty());
  for (int round = 0; round < 3; ++round) {
    s.StartRound();
    auto tasks = s.Assign();
    REQUIRE(tasks.size() == 6);
    for (const auto& t : tasks) {
      CHECK(t.worker == first[t.partition]);
      s.OnDone(t.partition, t.attempt, t.worker);
    }
  }
}

TEST_CASE("the first finished attempt wins and late results are dropped", "[runtime]") {
  TaskScheduler s(2, 4);
  s.AddWorker("a", 2);
  s.AddWorker("b", 2);
  s.StartRound();
  auto tasks = s.Assign();
  REQUIRE(tasks.size() == 2);
  const auto t = tasks[0];
  CHECK(s.OnDone(t.partition, t.attempt, t.worker) == TaskScheduler::Outcome::kAccepted);
  CHECK(s.OnDone(t.partition, t.attempt, t.worker) == TaskScheduler::Outcome::kDuplicate);
  CHECK(s.OnDone(tasks[1].partition, tasks[1].attempt + 7, tasks[1].worker) ==
        TaskScheduler::Outcome::kUnknown);
  CHECK(s.dropped_results() == 2);
}

TEST_CASE("a lost worker's tasks run again elsewhere with a new attempt", "[runtime]") {
  TaskScheduler s(4, 4);
  s.AddWorker("a", 2);
  s.AddWorker("b", 2);
  s.StartRound();
  auto tasks = s.Assign();
  REQUIRE(tasks.size() == 4);
  s.RemoveWorker("a");
  auto again = s.Assign();
  // b is full until its own tasks finish.
  CHECK(again.empty());
  for (const auto& t : tasks) {
    if (t.worker == "b") s.OnDone(t.partition, t.attempt, t.worker);
  }
  again = s.Assign();
  REQUIRE(again.size() == 2);
  for (const auto& t : again) {
    CHECK(t.worker == "b");
    CHECK(t.attempt == 1);
  }
  // The paused worker wakes up and reports its old attempt: dropped.
  for (const auto& t : tasks) {
    if (t.worker == "a") {
      CHECK(s.OnDone(t.partition, t.attempt, "a") == TaskScheduler::Outcome::kUnknown);
    }
  }
  for (const auto& t : again) s.OnDone(t.partition, t.attempt, t.worker);
  CHECK(s.RoundDone());
}

TEST_CASE("a task fails the round after max attempts, naming partition and worker",
          "[runtime]") {
  TaskScheduler s(1, 3);
  s.AddWorker("w1", 1);
  s.StartRound();
  Status last;
  for (int i = 0; i < 3; ++i) {
    auto tasks = s.Assign();
    REQUIRE(tasks.size() == 1);
    CHECK(tasks[0].attempt == i);
    last = s.OnFailed(0, tasks[0].attempt, "w1", CorruptionError("a.csv:7: expected a number"));
    if (i < 2) CHECK(last.ok());
  }
  REQUIRE_FALSE(last.ok());
  CHECK(last.code() == StatusCode::kCorruption);
  CHECK(last.message().find("partition 0 failed 3 times") != std::string::npos);
  CHECK(last.message().find("worker w1") != std::string::npos);
  CHECK(last.message().find("a.csv:7") != std::string::npos);
}

}  // namespace
}  // namespace mrtrain::runtime
