#include "runtime/worker/worker_service.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/base/log.h"
#include "runtime/protocol/messages.h"
#include "runtime/transport/in_process_transport.h"
#include "test/testing/captured_log.h"
#include "test/testing/temp_dir.h"

// WorkerService driven by a scripted master over the in-process transport.
namespace mrtrain::runtime {
namespace {

using namespace std::chrono_literals;
using mrtrain::testing::CapturedLog;

// The master's side of the control connection: welcomes the worker and records what it sends.
class ScriptedMaster {
 public:
  explicit ScriptedMaster(Transport* transport) : state_(std::make_shared<State>()) {
    ConnectionHandler h;
    // Weakly: the state keeps the worker's connection, which keeps this handler.
    h.on_message = [weak = std::weak_ptr<State>(state_)](const std::shared_ptr<Connection>& c,
                                                         MessageType type, std::string payload) {
      std::shared_ptr<State> state = weak.lock();
      if (!state) return;
      if (type == MessageType::kHello) {
        (void)SendMessage(*c, msg::Welcome{1, /*heartbeat_interval_ms=*/0});
      }
      {
        std::lock_guard<std::mutex> lock(state->mu);
        state->worker = c;
        state->received.emplace_back(type, std::move(payload));
      }
      state->cv.notify_all();
    };
    Result<std::string> address = transport->Listen("inproc://", h);
    if (!address.ok()) FAIL(address.status().ToString());
    address_ = *address;
  }

  const std::string& address() const { return address_; }

  template <typename M>
  Status Send(const M& m) {
    std::shared_ptr<Connection> c;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      c = state_->worker;
    }
    if (!c) return UnavailableError("no worker connected");
    return SendMessage(*c, m);
  }

  // Waits for the worker's next message of `type`, skipping others; the decoded message, or
  // kDeadlineExceeded.
  template <typename M>
  Result<M> Await(std::chrono::milliseconds timeout = 5s) {
    std::unique_lock<std::mutex> lock(state_->mu);
    std::string payload;
    const bool arrived = state_->cv.wait_for(lock, timeout, [&] {
      for (size_t& i = state_->next[M::kType]; i < state_->received.size(); ++i) {
        if (state_->received[i].first == M::kType) {
          payload = state_->received[i++].second;
          return true;
        }
      }
      return false;
    });
    if (!arrived) return DeadlineExceededError("no message of the awaited type");
    return msg::DecodeAs<M>(payload);
  }

  // How many messages of `type` the worker has sent.
  size_t Count(MessageType type) const {
    std::lock_guard<std::mutex> lock(state_->mu);
    return static_cast<size_t>(std::count_if(state_->received.begin(), state_->received.end(),
                                             [&](const auto& m) { return m.first == type; }));
  }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::shared_ptr<Connection> worker;
    std::vector<std::pair<MessageType, std::string>> received;
    std::map<MessageType, size_t> next;  // Await's position, by type
  };
  std::shared_ptr<State> state_;
  std::string address_;
};

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

msg::JobSpecText Spec(uint64_t job_id, const testing::TempDir& dir) {
  msg::JobSpecText text;
  text.job_id = job_id;
  text.source = "job.yaml";
  text.working_dir = dir.path();
  text.yaml =
      "name: ended\n"
      "data:\n"
      "  train: {path: train.csv, format: csv, partitions: 1}\n"
      "model: {type: logistic}\n"
      "update: {rule: sgd, learning_rate: 0.1}\n"
      "training: {epochs: 1}\n"
      "output: {dir: out}\n";
  return text;
}

TEST_CASE("a task of a job that ended on the worker is dropped quietly, not reported as failed",
          "[runtime][worker]") {
  testing::TempDir dir;
  dir.Write("train.csv", "1,0.5,0.25\n0,1,2\n");
  std::string log;
  {
    CapturedLog captured("worker", spdlog::level::debug);
    {
      auto transport = MakeInProcessTransport();
      ScriptedMaster master(transport.get());
      WorkerOptions options;
      options.master_address = master.address();
      options.data_address = "inproc://";
      options.name = "w";
      options.slots = 1;  // one compute thread: its tasks run in arrival order
      options.plugin_cache_dir = dir.File("plugin-cache");
      options.spill_dir = dir.File("spill");
      WorkerService worker(transport.get(), options);
      REQUIRE(worker.Start().ok());
      for (uint64_t job : {1, 2}) {
        REQUIRE(master.Send(Spec(job, dir)).ok());
        Result<msg::JobReady> ready = master.Await<msg::JobReady>();
        INFO(ready.status().ToString());
        REQUIRE(ready.ok());
        CHECK(ready->job_id == job);
      }
      // Job 1 failed on the master, which ends it while a task of it is still queued here.
      REQUIRE(master.Send(msg::EndJob{1}).ok());
      REQUIRE(master.Send(msg::RunMapTask{1, 0, 0, 0, 0, 1, 0.1}).ok());
      REQUIRE(master.Send(msg::LoadPartition{1, msg::DataSet::kTrain, 0, 0}).ok());
      // Job 2's load runs after them on the one compute thread: once it is answered, they ran.
      REQUIRE(master.Send(msg::LoadPartition{2, msg::DataSet::kTrain, 0, 0}).ok());
      Result<msg::PartitionLoaded> loaded = master.Await<msg::PartitionLoaded>();
      INFO(loaded.status().ToString());
      REQUIRE(loaded.ok());
      CHECK(loaded->job_id == 2);
      CHECK(loaded->rows == 2);
      CHECK(master.Count(MessageType::kTaskFailed) == 0);
      worker.Stop();
      transport->Stop();
    }
    log = captured.text();
  }
  INFO(log);
  CHECK_FALSE(Contains(log, "task failed"));
  CHECK_FALSE(Contains(log, "warning"));
  CHECK(Contains(log,
                 "debug dropping a task of job 1, which is not running here: NotFound: "
                 "job 1 is not set up here"));
}

}  // namespace
}  // namespace mrtrain::runtime
