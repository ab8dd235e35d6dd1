#include "runtime/local/local_job.h"

#include <filesystem>
#include <future>

#include "runtime/job/shipped_job.h"
#include "runtime/master/master_service.h"
#include "runtime/transport/in_process_transport.h"
#include "runtime/worker/worker_service.h"

namespace mrtrain::runtime {
namespace {

// Forwards the job's progress to the caller's observer and hands its outcome back.
class LocalListener : public JobListener {
 public:
  explicit LocalListener(TrainingObserver* observer) : observer_(observer) {}

  void OnRound(int64_t epoch, int64_t round, int64_t rounds_per_epoch, int64_t total_epochs,
               double elapsed_sec) override {
    if (observer_) observer_->OnRound(epoch, round, rounds_per_epoch, total_epochs, elapsed_sec);
  }
  void OnEpoch(const EpochReport& report) override {
    if (observer_) observer_->OnEpoch(report);
  }
  void OnFinished(const Status& status, const TrainingResult* result) override {
    if (status.ok()) {
      outcome_.set_value(*result);
    } else {
      outcome_.set_value(status);
    }
  }
  std::future<Result<TrainingResult>> outcome() { return outcome_.get_future(); }

 private:
  TrainingObserver* const observer_;
  std::promise<Result<TrainingResult>> outcome_;
};

}  // namespace

Result<TrainingResult> RunLocalJob(const jobs::JobSpec& spec, const LocalRunOptions& options,
                                   TrainingObserver* observer) {
  if (spec.text.empty()) {
    return InvalidArgumentError("RunLocalJob needs a spec parsed from text (ParseJobSpec)");
  }
  // Declared first so it is destroyed last: the services use it until they stop.
  std::unique_ptr<Transport> transport = MakeInProcessTransport();
  MasterOptions master_options;
  master_options.listen_address = "inproc://";
  master_options.workers_in_process = true;
  MasterService master(transport.get(), master_options);
  MRTRAIN_ASSIGN_OR_RETURN(std::string address, master.Start());

  WorkerOptions worker_options;
  worker_options.master_address = address;
  worker_options.data_address = "inproc://";
  worker_options.name = "local";
  worker_options.slots = spec.threads;  // 0: the number of cores
  // One process: a lost shard host is a lost job, so there is nothing to replay.
  worker_options.keep_map_output = false;
  worker_options.spill_dir = options.spill_dir;
  worker_options.memory_budget_bytes = options.memory_budget_bytes;
  WorkerService worker(transport.get(), worker_options);
  MRTRAIN_RETURN_IF_ERROR(worker.Start());

  auto listener = std::make_shared<LocalListener>(observer);
  auto outcome = listener->outcome();
  master.Submit(JobTextOf(spec, std::filesystem::current_path().string(), options.resume),
                listener);
  // The master bounds every step of the job, so this wait ends.
  Result<TrainingResult> result = outcome.get();
  master.Stop(/*shutdown_workers=*/true);
  worker.Stop();
  transport->Stop();
  return result;
}

}  // namespace mrtrain::runtime
