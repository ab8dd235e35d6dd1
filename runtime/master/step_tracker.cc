#include "runtime/master/step_tracker.h"

namespace mrtrain::runtime {

namespace {

// Whether a report keyed `report` is about `step`: the fields that tell steps of its kind apart
// agree (see StepKey).
bool SameStep(const TrackedStep& step, const StepKey& report) {
  if (step.kind != report.kind || step.job != report.job) return false;
  switch (step.kind) {
    case StepKind::kSpec:
      return true;
    case StepKind::kStart:
      return step.placement == report.placement;
    case StepKind::kLoad:
    case StepKind::kPredict:
      return step.set == report.set;
    case StepKind::kEvaluate:
      return step.set == report.set && step.round == report.round;
    case StepKind::kMap:
      return step.set == report.set && step.epoch == report.epoch && step.round == report.round;
    case StepKind::kReduce:
      return step.epoch == report.epoch && step.round == report.round &&
             (report.update < 0 || step.update == report.update);
    case StepKind::kSave:
      return step.epoch == report.epoch;
  }
  return false;
}

StepAction Send(TrackedStep& step, int64_t index, int attempt, WorkerId worker) {
  StepAction a;
  a.type = step.scheduler ? StepAction::Type::kSendTask : StepAction::Type::kSendTarget;
  a.step = &step;
  a.index = index;
  a.attempt = attempt;
  a.worker = worker;
  return a;
}

}  // namespace

TrackedStep* StepTracker::Running(StepKind kind) const {
  for (TrackedStep* step : running_) {
    if (step->kind == kind) return step;
  }
  return nullptr;
}

TrackedStep* StepTracker::Match(const StepKey& report) {
  // A finished step still matches until its RunSteps ends: a late result of it is then a
  // duplicate, which its scheduler or waiting set tells.
  TrackedStep* step = Running(report.kind);
  if (step && SameStep(*step, report)) return step;
  ++dropped_;
  return nullptr;
}

StepActions StepTracker::Launch(TrackedStep& step, int64_t now_ms) {
  if (step.scheduler) return Pump(step, now_ms);
  StepActions out;
  for (const auto& [target, worker] : step.waiting) out.push_back(Send(step, target, 0, worker));
  if (step.waiting.empty()) FinishInto(step, Status::Ok(), &out);
  return out;
}

StepActions StepTracker::Pump(TrackedStep& step, int64_t now_ms) {
  StepActions out;
  if (step.finished || !step.scheduler) return out;  // a failed step's tasks are not wanted
  for (const TaskAssignment& a : step.scheduler->Assign(now_ms)) {
    out.push_back(Send(step, a.partition, a.attempt, WorkerId::FromString(a.worker)));
  }
  return out;
}

StepActions StepTracker::OnTaskDone(TrackedStep& step, int64_t task, int attempt, WorkerId worker,
                                    int64_t now_ms, bool* accepted) {
  *accepted = step.scheduler->OnDone(task, attempt, worker.ToString(), now_ms) ==
              TaskScheduler::Outcome::kAccepted;
  if (!*accepted) {
    ++dropped_;  // a duplicate, or an attempt taken back from a lost worker
    return {};
  }
  if (!step.scheduler->RoundDone()) return Pump(step, now_ms);
  StepActions out;
  FinishInto(step, Status::Ok(), &out);
  return out;
}

bool StepTracker::Awaits(const TrackedStep& step, int64_t target, WorkerId worker) const {
  auto it = step.waiting.find(target);
  return it != step.waiting.end() && it->second == worker;
}

StepActions StepTracker::OnTargetDone(TrackedStep& step, int64_t target, WorkerId worker,
                                      bool* accepted) {
  *accepted = Awaits(step, target, worker);
  StepActions out;
  if (!*accepted) {
    ++dropped_;
    return out;
  }
  step.waiting.erase(target);
  if (step.waiting.empty()) FinishInto(step, Status::Ok(), &out);
  return out;
}

StepActions StepTracker::OnTaskFailed(TrackedStep& step, int64_t task, int attempt, WorkerId worker,
                                      const Status& cause, bool counts, const std::string& context,
                                      int64_t now_ms) {
  Status failed = step.scheduler->OnFailed(task, attempt, worker.ToString(), cause, counts);
  if (failed.ok()) return Pump(step, now_ms);
  StepActions out;
  FinishInto(step, failed.WithContext(context), &out);
  return out;
}

StepActions StepTracker::OnTargetFailed(TrackedStep& step, int64_t target, const Status& error,
                                        int retries) {
  StepActions out;
  if (step.admitting) {
    step.waiting.erase(target);
    if (step.waiting.empty()) FinishInto(step, Status::Ok(), &out);
  } else if (step.kind == StepKind::kSave && ++step.failures[target] < retries) {
    out.push_back(Send(step, target, step.failures[target], step.waiting.at(target)));
  } else {
    FinishInto(step, error, &out);
  }
  return out;
}

StepActions StepTracker::OnSendFailed(TrackedStep& step, int64_t target, const Status& error) {
  StepActions out;
  if (!step.admitting) {
    FinishInto(step, error.WithContext(step.what), &out);
    return out;
  }
  // A joiner gone before it was asked is left out, as one lost while it answers would be.
  step.waiting.erase(target);
  if (step.waiting.empty()) FinishInto(step, Status::Ok(), &out);
  return out;
}

StepActions StepTracker::OnWorkerLost(WorkerId worker, bool in_job, int64_t now_ms) {
  StepActions out;
  for (TrackedStep* step : running_) {
    if (step->finished) continue;
    if (!in_job) {
      // A joiner lost while being set up is not in the job yet, but the step admitting it
      // waits for its answer: without this it would wait (and time out) for ever.
      if (step->admitting && step->waiting.erase(worker.value) && step->waiting.empty()) {
        FinishInto(*step, Status::Ok(), &out);
      }
    } else if (step->scheduler) {
      StepActions sends = Pump(*step, now_ms);  // its tasks go elsewhere
      out.insert(out.end(), sends.begin(), sends.end());
    } else if ((step->kind == StepKind::kSpec || step->kind == StepKind::kStart) &&
               step->waiting.erase(worker.value) && step->waiting.empty()) {
      FinishInto(*step, Status::Ok(), &out);  // the job goes on without it
    }
  }
  return out;
}

StepActions StepTracker::FailAll(const Status& error) {
  StepActions out;
  for (TrackedStep* step : running_) FinishInto(*step, error, &out);
  return out;
}

void StepTracker::FinishInto(TrackedStep& step, const Status& status, StepActions* out) {
  if (step.finished) return;
  step.finished = true;
  step.status = status;
  StepAction a;
  a.type = StepAction::Type::kFinish;
  a.step = &step;
  a.status = status;
  out->push_back(std::move(a));
  // Steps that run together (a map step beside the previous round's reduce) fail together: the
  // job recovers or ends either way, and RunSteps returns only once every one is finished.
  if (!status.ok()) {
    for (TrackedStep* other : running_) FinishInto(*other, status, out);
  }
}

StepActions StepTracker::OnTimeout(TrackedStep& step, bool job_failed, const std::string& limit,
                                   const Describe& describe) {
  StepActions out;
  if (step.finished) return out;
  std::map<WorkerId, std::string> culprits;  // worker -> what it holds, "; "-separated
  auto blame = [&culprits](WorkerId worker, const std::string& what) {
    std::string& list = culprits[worker];
    list += (list.empty() ? "" : "; ") + what;
  };
  if (step.scheduler) {
    for (const RunningTask& t : step.scheduler->Running()) {
      blame(WorkerId::FromString(t.worker), describe(step, t.partition, t.attempt));
    }
  } else {
    for (const auto& [target, worker] : step.waiting) blame(worker, describe(step, target, -1));
  }
  if (culprits.empty() || job_failed) {
    FinishInto(step, DeadlineExceededError(step.what + " did not finish within " + limit), &out);
    return out;
  }
  for (const auto& [worker, what] : culprits) {
    StepAction a;
    a.type = StepAction::Type::kDropWorker;
    a.step = &step;
    a.worker = worker;
    a.why = "stuck on " + what + " in " + step.what + " for over " + limit;
    out.push_back(std::move(a));
  }
  return out;
}

bool StepTracker::AnyUnfinished() const {
  for (const TrackedStep* step : running_) {
    if (!step->finished) return true;
  }
  return false;
}

StepActions StepTracker::Speculate(int64_t now_ms, double multiple, int64_t min_ms) {
  StepActions out;
  TrackedStep* step = nullptr;
  for (TrackedStep* s : running_) {
    if (s->scheduler) step = s;  // at most one step of tasks runs at a time
  }
  if (!step || step->finished) return out;
  for (const BackupTask& b : step->scheduler->Speculate(now_ms, multiple, min_ms)) {
    StepAction a =
        Send(*step, b.backup.partition, b.backup.attempt, WorkerId::FromString(b.backup.worker));
    a.backup_of = b;
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace mrtrain::runtime
