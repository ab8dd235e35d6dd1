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

// Four partitions on workers a and b with two slots each: a runs 0 and 2, b runs 1 and 3, all
// started at t=0. Partitions 0, 1 and 2 finish at t=10 (median 10 ms); 3 is still running on b.
void RunUntilOneStraggler(TaskScheduler* s) {
  s->AddWorker("a", 2);
  s->AddWorker("b", 2);
  s->StartRound();
  const std::vector<TaskAssignment> tasks = s->Assign(0);
  REQUIRE(tasks.size() == 4);
  std::map<int64_t, std::string> where;
  for (const auto& t : tasks) {
    CHECK(t.attempt == 0);
    where[t.partition] = t.worker;
  }
  REQUIRE(where == std::map<int64_t, std::string>{{0, "a"}, {1, "b"}, {2, "a"}, {3, "b"}});
  for (int64_t p = 0; p < 3; ++p) {
    REQUIRE(s->OnDone(p, 0, where[p], 10) == TaskScheduler::Outcome::kAccepted);
  }
}

// The one backup RunUntilOneStraggler's straggler gets at t=25 with multiple 2 and no minimum.
BackupTask BackUpStraggler(TaskScheduler* s) {
  const std::vector<BackupTask> backups = s->Speculate(25, 2.0, 0);
  REQUIRE(backups.size() == 1);
  return backups[0];
}

bool IsRunning(const TaskScheduler& s, int64_t partition, int attempt, const std::string& worker) {
  for (const RunningTask& r : s.Running()) {
    if (r.partition == partition && r.attempt == attempt && r.worker == worker) return true;
  }
  return false;
}

TEST_CASE("no backup is started before a task of the first round has finished", "[runtime]") {
  TaskScheduler s(4, 3);
  s.AddWorker("a", 4);
  s.AddWorker("b", 4);
  s.StartRound();
  REQUIRE(s.Assign(0).size() == 4);
  CHECK(s.Speculate(1000000, 2.0, 0).empty());
  CHECK(s.Speculate(1000000, 1.0, 0).empty());
  CHECK(s.backups_started() == 0);
  CHECK(s.Running().size() == 4);
}

TEST_CASE("a task running past the multiple of the median gets one backup on another worker",
          "[runtime]") {
  TaskScheduler s(4, 3);
  RunUntilOneStraggler(&s);
  CHECK(s.Speculate(20, 2.0, 0).empty());  // 20 ms is not longer than 2 x 10 ms
  const BackupTask b = BackUpStraggler(&s);
  CHECK(b.slow.partition == 3);
  CHECK(b.slow.attempt == 0);
  CHECK(b.slow.worker == "b");
  CHECK(b.slow.started_ms == 0);
  CHECK(b.median_ms == 10);
  CHECK(b.backup.partition == 3);
  CHECK(b.backup.worker == "a");
  CHECK(b.backup.attempt == 1);
  CHECK(s.backups_started() == 1);
  CHECK(s.num_running() == 1);
  CHECK(s.Running().size() == 2);
  CHECK(IsRunning(s, 3, 0, "b"));
  CHECK(IsRunning(s, 3, 1, "a"));
  // Only one backup per task, however long it keeps running.
  CHECK(s.Speculate(100, 2.0, 0).empty());
  CHECK(s.Speculate(100000, 2.0, 0).empty());
  CHECK(s.backups_started() == 1);
  CHECK(s.Assign(100).empty());
}

TEST_CASE("the first of the original and its backup to finish wins and becomes sticky",
          "[runtime]") {
  TaskScheduler s(4, 3);
  RunUntilOneStraggler(&s);
  const BackupTask b = BackUpStraggler(&s);
  std::string winner;
  SECTION("the backup finishes first") {
    CHECK(s.OnDone(3, b.backup.attempt, "a", 30) == TaskScheduler::Outcome::kAccepted);
    CHECK(s.OnDone(3, 0, "b", 40) == TaskScheduler::Outcome::kDuplicate);
    winner = "a";
  }
  SECTION("the original finishes first") {
    CHECK(s.OnDone(3, 0, "b", 30) == TaskScheduler::Outcome::kAccepted);
    CHECK(s.OnDone(3, b.backup.attempt, "a", 31) == TaskScheduler::Outcome::kDuplicate);
    winner = "b";
  }
  CHECK(s.RoundDone());
  CHECK(s.dropped_results() == 1);
  CHECK(s.Running().empty());
  CHECK(s.StickyWorker(3) == winner);

  // The next round runs partition 3 on the winner, waiting for a free slot there if need be.
  s.StartRound();
  std::map<int64_t, TaskAssignment> placed;
  for (int wave = 0; wave < 3 && placed.size() < 4; ++wave) {
    for (const auto& t : s.Assign(100 + wave)) placed[t.partition] = t;
    for (const auto& [p, t] : placed) s.OnDone(p, t.attempt, t.worker, 100 + wave);
  }
  REQUIRE(placed.count(3));
  CHECK(placed[3].worker == winner);
  CHECK(placed[3].attempt == 0);
}

TEST_CASE("backups wait for the minimum duration", "[runtime]") {
  TaskScheduler s(4, 3);
  RunUntilOneStraggler(&s);
  CHECK(s.Speculate(25, 2.0, 50).empty());
  CHECK(s.Speculate(50, 2.0, 50).empty());
  const std::vector<BackupTask> backups = s.Speculate(51, 2.0, 50);
  REQUIRE(backups.size() == 1);
  CHECK(backups[0].backup.worker == "a");
  CHECK(backups[0].median_ms == 10);
}

TEST_CASE("a round's backups are measured against the previous round until a task finishes",
          "[runtime]") {
  TaskScheduler s(3, 3);
  s.AddWorker("a", 3);
  s.AddWorker("b", 3);
  s.StartRound();
  // Round one: 0 and 2 on a, 1 on b; durations 10, 20 and 60 ms, median 20.
  for (const auto& t : s.Assign(0)) {
    const int64_t done_at = t.partition == 0 ? 10 : t.partition == 1 ? 20 : 60;
    REQUIRE(s.OnDone(t.partition, t.attempt, t.worker, done_at) ==
            TaskScheduler::Outcome::kAccepted);
  }
  REQUIRE(s.RoundDone());

  s.StartRound();
  REQUIRE(s.Assign(100).size() == 3);
  SECTION("no task of this round finished: the previous median") {
    CHECK(s.Speculate(140, 2.0, 0).empty());
    const std::vector<BackupTask> backups = s.Speculate(141, 2.0, 0);
    REQUIRE(backups.size() == 3);
    for (const BackupTask& b : backups) {
      CHECK(b.median_ms == 20);
      CHECK(b.backup.worker != b.slow.worker);
      CHECK(b.backup.attempt == 1);
    }
  }
  SECTION("a task of this round finished: this round's median") {
    REQUIRE(s.OnDone(0, 0, *s.StickyWorker(0), 105) == TaskScheduler::Outcome::kAccepted);
    CHECK(s.Speculate(110, 2.0, 0).empty());
    const std::vector<BackupTask> backups = s.Speculate(111, 2.0, 0);
    REQUIRE(backups.size() == 2);
    for (const BackupTask& b : backups) CHECK(b.median_ms == 5);
  }
}

TEST_CASE("a failed backup leaves the original running and may not count as a failure",
          "[runtime]") {
  TaskScheduler s(4, 2);
  RunUntilOneStraggler(&s);
  const BackupTask b = BackUpStraggler(&s);
  REQUIRE(s.OnFailed(3, b.backup.attempt, "a", UnavailableError("shard host 2 unreachable"),
                     /*counts=*/false)
              .ok());
  CHECK(s.num_running() == 1);
  CHECK(s.Running().size() == 1);
  CHECK(IsRunning(s, 3, 0, "b"));
  CHECK(s.Assign(30).empty());  // not pending again: its original still runs

  SECTION("the original still finishes the task") {
    CHECK(s.OnDone(3, 0, "b", 40) == TaskScheduler::Outcome::kAccepted);
    CHECK(s.RoundDone());
  }
  SECTION("the uncounted failure leaves the task its max_attempts") {
    // max_attempts is 2: the original's failure is the first that counts, not the second.
    REQUIRE(s.OnFailed(3, 0, "b", CorruptionError("x.csv:3: bad"), true).ok());
    const std::vector<TaskAssignment> retry = s.Assign(50);
    REQUIRE(retry.size() == 1);
    CHECK(retry[0].partition == 3);
    CHECK(retry[0].attempt == 2);
    const Status failed =
        s.OnFailed(3, retry[0].attempt, retry[0].worker, CorruptionError("x.csv:3: bad"), true);
    REQUIRE_FALSE(failed.ok());
    CHECK(failed.code() == StatusCode::kCorruption);
    CHECK(failed.message().find("partition 3 failed 2 times") != std::string::npos);
  }
}

TEST_CASE("failures that are not the task's fault never fail it", "[runtime]") {
  TaskScheduler s(1, 3);
  s.AddWorker("w1", 1);
  s.StartRound();
  for (int i = 0; i < 10; ++i) {
    const std::vector<TaskAssignment> tasks = s.Assign(i);
    REQUIRE(tasks.size() == 1);
    CHECK(tasks[0].attempt == i);
    CHECK(s.OnFailed(0, tasks[0].attempt, "w1", UnavailableError("shard host gone"), false).ok());
  }
  // Counted failures still fail it after max_attempts.
  Status last;
  for (int i = 0; i < 3; ++i) {
    const std::vector<TaskAssignment> tasks = s.Assign(100 + i);
    REQUIRE(tasks.size() == 1);
    last = s.OnFailed(0, tasks[0].attempt, "w1", CorruptionError("a.csv:1: bad"), true);
    if (i < 2) CHECK(last.ok());
  }
  REQUIRE_FALSE(last.ok());
  CHECK(last.message().find("partition 0 failed 3 times") != std::string::npos);
}

// Runs one round of `partitions` tasks over the workers already added and finishes all of them,
// then returns who each partition is sticky to.
std::map<int64_t, std::string> RunRound(TaskScheduler* s, int64_t partitions) {
  s->StartRound();
  for (int wave = 0; wave < 10 && !s->RoundDone(); ++wave) {
    for (const auto& t : s->Assign(wave)) s->OnDone(t.partition, t.attempt, t.worker, wave);
  }
  REQUIRE(s->RoundDone());
  std::map<int64_t, std::string> sticky;
  for (int64_t p = 0; p < partitions; ++p) sticky[p] = s->StickyWorker(p).value_or("");
  return sticky;
}

TEST_CASE("a worker added after a round takes its share from the most loaded workers",
          "[runtime]") {
  SECTION("6 partitions, 2 workers become 3: two each") {
    TaskScheduler s(6, 3);
    s.AddWorker("a", 3);
    s.AddWorker("b", 3);
    REQUIRE(RunRound(&s, 6) == std::map<int64_t, std::string>{
                                   {0, "a"}, {1, "b"}, {2, "a"}, {3, "b"}, {4, "a"}, {5, "b"}});
    s.AddWorker("c", 3);
    // a and b hold 3 each (a first by name): a gives up 4, then b, now the most loaded, 5.
    CHECK(RunRound(&s, 6) == std::map<int64_t, std::string>{
                                 {0, "a"}, {1, "b"}, {2, "a"}, {3, "b"}, {4, "c"}, {5, "c"}});
  }
  SECTION("7 partitions, 2 workers become 3: floor(7/3) = 2 for the new one") {
    TaskScheduler s(7, 3);
    s.AddWorker("a", 4);
    s.AddWorker("b", 4);
    REQUIRE(RunRound(&s, 7) ==
            std::map<int64_t, std::string>{
                {0, "a"}, {1, "b"}, {2, "a"}, {3, "b"}, {4, "a"}, {5, "b"}, {6, "a"}});
    s.AddWorker("c", 4);
    // a holds 4 and gives up 6; then a and b hold 3 each and a gives up 4.
    CHECK(RunRound(&s, 7) ==
          std::map<int64_t, std::string>{
              {0, "a"}, {1, "b"}, {2, "a"}, {3, "b"}, {4, "c"}, {5, "b"}, {6, "c"}});
  }
  SECTION("the new worker's tasks go to it in the next round") {
    TaskScheduler s(4, 3);
    s.AddWorker("a", 2);
    s.AddWorker("b", 2);
    RunRound(&s, 4);
    s.AddWorker("c", 2);
    s.StartRound();
    std::map<std::string, std::vector<int64_t>> by_worker;
    for (const auto& t : s.Assign(0)) by_worker[t.worker].push_back(t.partition);
    // floor(4/3) = 1: a (ahead of b by name) gives up its highest, 2.
    CHECK(by_worker ==
          std::map<std::string, std::vector<int64_t>>{{"a", {0}}, {"b", {1, 3}}, {"c", {2}}});
  }
  SECTION("the same history gives the same plan") {
    auto plan = [] {
      TaskScheduler s(9, 3);
      s.AddWorker("b", 5);
      s.AddWorker("a", 5);
      RunRound(&s, 9);
      s.AddWorker("d", 5);
      s.AddWorker("c", 5);
      return RunRound(&s, 9);
    };
    const std::map<int64_t, std::string> first = plan();
    CHECK(first == plan());
    // d takes floor(9/3) = 3: 8 and 6 from a, then 7 from b; c takes floor(9/4) = 2: 4 from a,
    // then 5 from b (a, b and d hold 3 each; ties go by name).
    CHECK(first == std::map<int64_t, std::string>{{0, "a"},
                                                  {1, "b"},
                                                  {2, "a"},
                                                  {3, "b"},
                                                  {4, "c"},
                                                  {5, "c"},
                                                  {6, "d"},
                                                  {7, "d"},
                                                  {8, "d"}});
  }
}

TEST_CASE("losing the original's worker while its backup runs keeps the task running",
          "[runtime]") {
  TaskScheduler s(4, 3);
  RunUntilOneStraggler(&s);
  const BackupTask b = BackUpStraggler(&s);
  s.RemoveWorker("b");
  CHECK(s.num_running() == 1);
  CHECK(s.Running().size() == 1);
  CHECK(IsRunning(s, 3, b.backup.attempt, "a"));
  CHECK(s.Assign(30).empty());  // not pending: no third attempt
  CHECK(s.OnDone(3, b.backup.attempt, "a", 40) == TaskScheduler::Outcome::kAccepted);
  CHECK(s.RoundDone());
  CHECK(s.StickyWorker(3) == "a");
}

}  // namespace
}  // namespace mrtrain::runtime
