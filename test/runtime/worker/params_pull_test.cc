// Parameter pulls of shards too large for one message: the host answers in parts, and when it
// cannot send a reply at all the puller fails at once with the cause. Each test runs a real
// master and two workers over the in-process transport, with the workers' reply part size and
// the transport's frame limit lowered so a small model shows the behaviour of a 2^26-float one.
// The one reducer shard lives on one worker; the other pulls it over the transport (a worker
// reads a shard it hosts itself in place, without messages).
#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include "jobs/spec/job_spec.h"
#include "runtime/job/shipped_job.h"
#include "runtime/master/master_service.h"
#include "runtime/transport/in_process_transport.h"
#include "runtime/worker/worker_service.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::runtime {
namespace {

using testing::TempDir;
using Clock = std::chrono::steady_clock;

class Outcome : public JobListener {
 public:
  void OnFinished(const Status& status, const TrainingResult* result) override {
    if (status.ok()) {
      promise_.set_value(*result);
    } else {
      promise_.set_value(status);
    }
  }
  std::future<Result<TrainingResult>> future() { return promise_.get_future(); }

 private:
  std::promise<Result<TrainingResult>> promise_;
};

// The repro, scaled down: 200 lines, one of which names feature 70000, so the model
// has 70,001 weights in blocks of 1024 floats, of which each push touches two.
std::string WriteJob(const TempDir& dir, const std::string& out) {
  std::string data;
  for (int i = 0; i < 199; ++i) data += i % 2 ? "1 1:0.5 3:0.25\n" : "0 2:0.75\n";
  data += "1 2:0.3 70000:0.5\n";
  const std::string train = dir.Write("train.svm", data);
  return "data:\n  train: {path: " + train +
         ", format: libsvm, partitions: 2}\n"
         "model: {type: logistic, block_size: 1024}\n"
         "update: {rule: sgd, learning_rate: 0.5}\n"
         "training: {epochs: 2, rounds_per_epoch: 2, seed: 1, threads: 2}\n"
         "output: {dir: " +
         dir.File(out) + "}\n";
}

Result<TrainingResult> Train(const std::string& yaml, uint64_t reply_part_values,
                             uint32_t max_frame_payload_bytes) {
  auto spec = jobs::ParseJobSpec(yaml, "job.yaml", {});
  REQUIRE(spec.ok());
  InProcessOptions transport_options;
  transport_options.limits.max_frame_payload_bytes = max_frame_payload_bytes;
  std::unique_ptr<Transport> transport = MakeInProcessTransport(transport_options);
  MasterOptions master_options;
  master_options.listen_address = "inproc://";
  master_options.min_workers = 2;
  MasterService master(transport.get(), master_options);
  auto address = master.Start();
  REQUIRE(address.ok());
  WorkerOptions worker_options;
  worker_options.master_address = *address;
  worker_options.data_address = "inproc://";
  worker_options.keep_map_output = false;
  worker_options.reply_part_values = reply_part_values;
  worker_options.slots = 1;
  WorkerService worker(transport.get(), worker_options);
  REQUIRE(worker.Start().ok());
  WorkerService other(transport.get(), worker_options);
  REQUIRE(other.Start().ok());
  auto outcome = std::make_shared<Outcome>();
  auto future = outcome->future();
  master.Submit(JobTextOf(*spec, std::filesystem::current_path().string(), false), outcome);
  Result<TrainingResult> result = future.get();
  master.Stop(/*shutdown_workers=*/true);
  worker.Stop();
  other.Stop();
  transport->Stop();
  return result;
}

TEST_CASE("a shard larger than one reply is pulled in parts and trains the same model",
          "[runtime][worker]") {
  TempDir dir;
  // 4 blocks (16 KiB of floats) a part: the 70,001 weights travel in 18 parts, each under a
  // 64 KiB frame limit that the whole (280 KB) would break.
  Result<TrainingResult> parts = Train(WriteJob(dir, "parts"), 4096, 64 << 10);
  REQUIRE(parts.ok());
  Result<TrainingResult> whole =
      Train(WriteJob(dir, "whole"), kReplyPartValues, kDefaultMaxFramePayloadBytes);
  REQUIRE(whole.ok());
  const std::string model = TempDir::Read(parts->model_path);
  CHECK(model.size() > 70000 * sizeof(float));
  CHECK(model == TempDir::Read(whole->model_path));
}

TEST_CASE("a reply the host cannot send fails the pull at once, naming the limit",
          "[runtime][worker]") {
  TempDir dir;
  // One part of 70,001 floats (280 KB) over a 64 KiB frame limit: before, the host only logged
  // it and every map task waited 2 minutes for a reply that never came.
  const auto start = Clock::now();
  Result<TrainingResult> result = Train(WriteJob(dir, "out"), kReplyPartValues, 64 << 10);
  REQUIRE_FALSE(result.ok());
  CHECK(Clock::now() - start < std::chrono::seconds(30));
  INFO(result.status().ToString());
  CHECK_THAT(result.status().message(),
             Catch::Contains("the shard host could not send the parameters") &&
                 Catch::Contains("over the frame limit of 65536"));
}

}  // namespace
}  // namespace mrtrain::runtime
