#include "runtime/master/step_tracker.h"

#include <catch2/catch.hpp>

namespace mrtrain::runtime {
namespace {

constexpr WorkerId kA{1};
constexpr WorkerId kB{2};

// The transport's clock as the master passes it in; tests move it by hand.
struct FakeClock {
  int64_t now_ms = 0;
  int64_t Advance(int64_t ms) { return now_ms += ms; }
};

// A map step of job 7 over `tasks` tasks on workers A and B (one slot each).
struct MapStep {
  explicit MapStep(int64_t tasks, int64_t epoch = 0, int64_t round = 0)
      : scheduler(tasks, /*max_attempts=*/2) {
    scheduler.AddWorker(kA.ToString(), 1);
    scheduler.AddWorker(kB.ToString(), 1);
    scheduler.StartRound();
    step.kind = StepKind::kMap;
    step.what = "epoch 1 round 1: map tasks";
    step.job = 7;
    step.epoch = epoch;
    step.round = round;
    step.scheduler = &scheduler;
    step.stats.resize(tasks);
  }
  StepKey Report(int64_t epoch, int64_t round) const {
    StepKey k = step.Key();
    k.epoch = epoch;
    k.round = round;
    return k;
  }
  TaskScheduler scheduler;
  TrackedStep step;
};

// A reduce of job 7 committing update `update` over two shards hosted by A and B.
TrackedStep ReduceStep(int64_t epoch, int64_t round, int64_t update) {
  TrackedStep s;
  s.kind = StepKind::kReduce;
  s.what = "epoch 1 round 1: reduce";
  s.job = 7;
  s.epoch = epoch;
  s.round = round;
  s.update = update;
  s.waiting = {{0, kA}, {1, kB}};
  return s;
}

int Count(const StepActions& actions, StepAction::Type type) {
  int n = 0;
  for (const StepAction& a : actions) n += a.type == type;
  return n;
}

std::string Describe(const TrackedStep&, int64_t index, int attempt) {
  return attempt < 0
             ? "target " + std::to_string(index)
             : "task " + std::to_string(index) + " (attempt " + std::to_string(attempt) + ")";
}

TEST_CASE("a step's first tasks go to free slots, and it finishes when all are done", "[runtime]") {
  FakeClock clock;
  MapStep map(2);
  StepTracker tracker;
  tracker.Begin({&map.step});
  StepActions first = tracker.Launch(map.step, clock.now_ms);
  REQUIRE(first.size() == 2);
  for (const StepAction& a : first) CHECK(a.type == StepAction::Type::kSendTask);
  bool accepted = false;
  CHECK(
      tracker.OnTaskDone(map.step, first[0].index, 0, first[0].worker, clock.Advance(5), &accepted)
          .empty());
  CHECK(accepted);
  CHECK_FALSE(map.step.finished);
  StepActions last =
      tracker.OnTaskDone(map.step, first[1].index, 0, first[1].worker, clock.Advance(5), &accepted);
  REQUIRE(last.size() == 1);
  CHECK(last[0].type == StepAction::Type::kFinish);
  CHECK(last[0].status.ok());
  CHECK(map.step.finished);
}

TEST_CASE("a result for another step, placement, shard host or attempt is ignored", "[runtime]") {
  FakeClock clock;
  MapStep map(2, /*epoch=*/1, /*round=*/4);
  TrackedStep reduce = ReduceStep(1, 3, /*update=*/13);
  TrackedStep start;
  start.kind = StepKind::kStart;
  start.job = 7;
  start.placement = 2;
  start.waiting = {{kA.value, kA}};
  StepTracker tracker;
  tracker.Begin({&reduce, &map.step});
  (void)tracker.Launch(map.step, clock.now_ms);

  CHECK(tracker.Match(map.Report(1, 4)) == &map.step);
  CHECK(tracker.Match(map.Report(1, 3)) == nullptr);  // the round before
  CHECK(tracker.Match(map.Report(0, 4)) == nullptr);  // another epoch
  StepKey other_job = map.Report(1, 4);
  other_job.job = 8;
  CHECK(tracker.Match(other_job) == nullptr);

  StepKey commit = reduce.Key();
  CHECK(tracker.Match(commit) == &reduce);
  commit.update = 12;  // a commit of an earlier update
  CHECK(tracker.Match(commit) == nullptr);
  commit.update = -1;  // failures do not say the update
  CHECK(tracker.Match(commit) == &reduce);

  bool accepted = true;
  // Shard 0 answered by B, which does not host it (it moved): ignored.
  CHECK(tracker.OnTargetDone(reduce, 0, kB, &accepted).empty());
  CHECK_FALSE(accepted);
  CHECK(reduce.waiting.size() == 2);
  // An attempt the scheduler never handed out.
  CHECK(tracker.OnTaskDone(map.step, 0, 5, kA, clock.Advance(1), &accepted).empty());
  CHECK_FALSE(accepted);

  tracker.End();
  tracker.Begin({&start});
  StepKey earlier = start.Key();
  earlier.placement = 1;  // an answer to the placement before a recovery
  CHECK(tracker.Match(earlier) == nullptr);
  CHECK(tracker.Match(start.Key()) == &start);
  CHECK(tracker.Match(map.Report(1, 4)) == nullptr);  // no map step runs now
  CHECK(tracker.dropped() == 8);
}

TEST_CASE("late duplicates of a task or a shard's commit are ignored", "[runtime]") {
  FakeClock clock;
  MapStep map(3);
  TrackedStep reduce = ReduceStep(0, 0, 1);
  StepTracker tracker;
  tracker.Begin({&reduce, &map.step});
  StepActions sent = tracker.Launch(map.step, clock.now_ms);
  REQUIRE(sent.size() == 2);
  bool accepted = false;
  StepActions next =
      tracker.OnTaskDone(map.step, sent[0].index, 0, sent[0].worker, clock.Advance(3), &accepted);
  CHECK(accepted);
  REQUIRE(Count(next, StepAction::Type::kSendTask) == 1);  // the third task, to the free slot
  CHECK(tracker.OnTaskDone(map.step, sent[0].index, 0, sent[0].worker, clock.Advance(3), &accepted)
            .empty());
  CHECK_FALSE(accepted);

  CHECK(tracker.OnTargetDone(reduce, 0, kA, &accepted).empty());
  CHECK(accepted);
  CHECK(tracker.OnTargetDone(reduce, 0, kA, &accepted).empty());
  CHECK_FALSE(accepted);
  StepActions done = tracker.OnTargetDone(reduce, 1, kB, &accepted);
  REQUIRE(done.size() == 1);
  CHECK(done[0].type == StepAction::Type::kFinish);
  CHECK(done[0].step == &reduce);
  CHECK_FALSE(map.step.finished);  // a reduce that succeeds leaves the map step running
  CHECK(tracker.dropped() == 2);
}

TEST_CASE("overlapped map and reduce steps fail together", "[runtime]") {
  FakeClock clock;
  MapStep map(2);
  TrackedStep reduce = ReduceStep(0, 0, 1);
  StepTracker tracker;
  tracker.Begin({&reduce, &map.step});
  (void)tracker.Launch(reduce, clock.now_ms);
  StepActions sent = tracker.Launch(map.step, clock.now_ms);
  REQUIRE(sent.size() == 2);

  SECTION("a reduce that fails ends the map step") {
    StepActions failed =
        tracker.OnTargetFailed(reduce, 1, InternalError("shard 1: disk full"), /*retries=*/4);
    REQUIRE(Count(failed, StepAction::Type::kFinish) == 2);
    CHECK(map.step.finished);
    CHECK(map.step.status.message() == "shard 1: disk full");
    // The map step's tasks finishing afterwards launch nothing.
    bool accepted = false;
    CHECK(
        tracker.OnTaskDone(map.step, sent[0].index, 0, sent[0].worker, clock.Advance(1), &accepted)
            .empty());
  }
  SECTION("a map task out of attempts ends the reduce") {
    const StepAction& t = sent[0];
    StepActions again = tracker.OnTaskFailed(map.step, t.index, 0, t.worker,
                                             InternalError("bad row"), true, "data.train", 1);
    REQUIRE(again.size() == 1);  // its second attempt
    CHECK(again[0].attempt == 1);
    StepActions failed = tracker.OnTaskFailed(map.step, t.index, 1, again[0].worker,
                                              InternalError("bad row"), true, "data.train", 2);
    CHECK(Count(failed, StepAction::Type::kFinish) == 2);
    CHECK(reduce.finished);
    CHECK_FALSE(reduce.status.ok());
    CHECK(reduce.status.message() == map.step.status.message());
  }
  SECTION("a lost shard host fails both") {
    StepActions failed = tracker.FailAll(UnavailableError("worker 2 hosting shard 1 was lost"));
    CHECK(Count(failed, StepAction::Type::kFinish) == 2);
    CHECK(reduce.status.code() == StatusCode::kUnavailable);
    CHECK(map.step.status.code() == StatusCode::kUnavailable);
  }
}

TEST_CASE(
    "a step past its bound drops the stuck worker, its task runs again elsewhere, and "
    "then the step fails",
    "[runtime]") {
  FakeClock clock;
  MapStep map(1);
  StepTracker tracker;
  tracker.Begin({&map.step});
  StepActions sent = tracker.Launch(map.step, clock.now_ms);
  REQUIRE(sent.size() == 1);
  const WorkerId stuck = sent[0].worker;
  const WorkerId other = stuck == kA ? kB : kA;

  clock.Advance(60000);
  StepActions first = tracker.OnTimeout(map.step, false, "60000 ms", Describe);
  REQUIRE(first.size() == 1);
  CHECK(first[0].type == StepAction::Type::kDropWorker);
  CHECK(first[0].worker == stuck);
  CHECK(first[0].why ==
        "stuck on task 0 (attempt 0) in epoch 1 round 1: map tasks for over "
        "60000 ms");
  // The master drops it: the task's next attempt (a backup of the lost one) goes to the other.
  map.scheduler.RemoveWorker(stuck.ToString());
  StepActions backup = tracker.OnWorkerLost(stuck, /*in_job=*/true, clock.now_ms);
  REQUIRE(backup.size() == 1);
  CHECK(backup[0].type == StepAction::Type::kSendTask);
  CHECK(backup[0].worker == other);
  CHECK(backup[0].attempt == 1);
  CHECK(tracker.AnyUnfinished());

  // The job has failed meanwhile (its shard host was lost elsewhere): the bound fails the step.
  clock.Advance(60000);
  StepActions second = tracker.OnTimeout(map.step, /*job_failed=*/true, "60000 ms", Describe);
  REQUIRE(second.size() == 1);
  CHECK(second[0].type == StepAction::Type::kFinish);
  CHECK(second[0].status.code() == StatusCode::kDeadlineExceeded);
  CHECK(second[0].status.message() == "epoch 1 round 1: map tasks did not finish within 60000 ms");
  CHECK_FALSE(tracker.AnyUnfinished());
  // The late result of the dropped attempt is ignored.
  bool accepted = true;
  CHECK(tracker.OnTaskDone(map.step, 0, 0, stuck, clock.Advance(1), &accepted).empty());
  CHECK_FALSE(accepted);
}

TEST_CASE("a slow task gets a backup attempt; the first to finish wins", "[runtime]") {
  FakeClock clock;
  MapStep map(3);
  StepTracker tracker;
  tracker.Begin({&map.step});
  StepActions sent = tracker.Launch(map.step, clock.now_ms);
  REQUIRE(sent.size() == 2);
  bool accepted = false;
  // Task 0 finishes in 10 ms; task 1 hangs; task 2 follows on the free slot and takes 10 ms.
  StepActions third =
      tracker.OnTaskDone(map.step, sent[0].index, 0, sent[0].worker, clock.Advance(10), &accepted);
  REQUIRE(third.size() == 1);
  CHECK(
      tracker.OnTaskDone(map.step, third[0].index, 0, third[0].worker, clock.Advance(10), &accepted)
          .empty());
  CHECK(tracker.Speculate(clock.Advance(5), /*multiple=*/3, /*min_ms=*/20).empty());  // 25 ms
  StepActions backups = tracker.Speculate(clock.Advance(20), 3, 20);  // 45 ms > 3 x 10 ms
  REQUIRE(backups.size() == 1);
  CHECK(backups[0].type == StepAction::Type::kSendTask);
  CHECK(backups[0].index == sent[1].index);
  CHECK(backups[0].attempt == 1);
  CHECK(backups[0].worker != sent[1].worker);
  REQUIRE(backups[0].backup_of.has_value());
  CHECK(backups[0].backup_of->slow.worker == sent[1].worker.ToString());

  StepActions done = tracker.OnTaskDone(map.step, sent[1].index, 1, backups[0].worker,
                                        clock.Advance(5), &accepted);
  CHECK(accepted);
  REQUIRE(Count(done, StepAction::Type::kFinish) == 1);
  CHECK(done[0].status.ok());
  // The slow attempt finishing late is a duplicate.
  CHECK(tracker.OnTaskDone(map.step, sent[1].index, 0, sent[1].worker, clock.Advance(5), &accepted)
            .empty());
  CHECK_FALSE(accepted);
}

TEST_CASE("steps of setup: joiners lost or refusing are left out; a save is written again",
          "[runtime]") {
  TrackedStep setup;
  setup.kind = StepKind::kSpec;
  setup.admitting = true;
  setup.job = 7;
  setup.waiting = {{kA.value, kA}, {kB.value, kB}};
  StepTracker tracker;
  tracker.Begin({&setup});
  CHECK(Count(tracker.Launch(setup, 0), StepAction::Type::kSendTarget) == 2);
  CHECK(tracker.OnWorkerLost(kA, /*in_job=*/false, 0).empty());
  StepActions done = tracker.OnTargetFailed(setup, kB.value, InternalError("no data"), 4);
  REQUIRE(done.size() == 1);
  CHECK(done[0].type == StepAction::Type::kFinish);
  CHECK(done[0].status.ok());

  TrackedStep save;
  save.kind = StepKind::kSave;
  save.waiting = {{0, kA}};
  tracker.End();
  tracker.Begin({&save});
  StepActions again = tracker.OnTargetFailed(save, 0, InternalError("short write"), 2);
  REQUIRE(again.size() == 1);
  CHECK(again[0].type == StepAction::Type::kSendTarget);
  CHECK(again[0].worker == kA);
  StepActions failed = tracker.OnTargetFailed(save, 0, InternalError("short write"), 2);
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].status.message() == "short write");
}

TEST_CASE("worker ids order and hash by their number", "[runtime]") {
  CHECK(WorkerId{3} < WorkerId{10});  // not as the strings "10" < "3"
  CHECK(WorkerId::FromString(WorkerId{42}.ToString()) == WorkerId{42});
  CHECK(std::hash<WorkerId>()(WorkerId{5}) == std::hash<WorkerId>()(WorkerId{5}));
}

}  // namespace
}  // namespace mrtrain::runtime
