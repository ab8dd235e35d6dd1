#include "tools/mrtrain/submit_client.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "jobs/spec/job_spec.h"
#include "runtime/job/shipped_job.h"

namespace mrtrain::tools {
namespace {

using namespace std::chrono_literals;
namespace msg = runtime::msg;

// A connection to the master whose replies land in promises the caller waits on. A signal
// seen by `interrupt` (may be null) ends the wait with kAborted: connecting is bounded, but by
// seconds, and a signalled process must stop sooner.
Result<std::shared_ptr<runtime::Connection>> Connect(runtime::Transport& transport,
                                                     const std::string& address,
                                                     runtime::ConnectionHandler handler,
                                                     const ScopedSignalForwarding* interrupt) {
  // Shared with the callback, which may run after an interrupted wait has returned.
  auto connected = std::make_shared<std::promise<Result<std::shared_ptr<runtime::Connection>>>>();
  auto future = connected->get_future();
  transport.Connect(address, std::move(handler),
                    [connected](Result<std::shared_ptr<runtime::Connection>> c) {
                      connected->set_value(std::move(c));
                    });
  while (future.wait_for(50ms) != std::future_status::ready) {
    if (interrupt && interrupt->received_signal() != 0) {
      return AbortedError("interrupted while connecting to the master at " + address);
    }
  }
  Result<std::shared_ptr<runtime::Connection>> c = future.get();
  if (!c.ok()) return c.status().WithContext("cannot reach the master at " + address);
  return c;
}

}  // namespace

Result<msg::JobSpecText> ReadJob(const std::string& path, const std::vector<std::string>& overrides,
                                 bool resume) {
  // Parsed here first, so a bad spec fails before it travels, with the same file:line errors.
  MRTRAIN_ASSIGN_OR_RETURN(jobs::JobSpec spec, jobs::LoadJobSpec(path, overrides));
  // The plugin libraries travel with it: the cluster's nodes need not see this machine's files.
  return runtime::PackJob(spec, std::filesystem::current_path().string(), resume);
}

JobOutcome FollowJob(runtime::Transport& transport, const std::string& address,
                     msg::JobSpecText job, runtime::TrainingObserver& observer,
                     const ScopedSignalForwarding* interrupt) {
  struct Shared {
    std::mutex mu;
    uint64_t job_id = 0;
    std::promise<JobOutcome> outcome;
    bool done = false;
    void Finish(JobOutcome o) {
      std::lock_guard<std::mutex> lock(mu);
      if (done) return;
      done = true;
      outcome.set_value(std::move(o));
    }
  };
  auto shared = std::make_shared<Shared>();
  runtime::ConnectionHandler handler;
  handler.on_message = [shared, &observer](const std::shared_ptr<runtime::Connection>&,
                                           runtime::MessageType type, std::string payload) {
    switch (type) {
      case runtime::MessageType::kRoundProgress: {
        auto m = msg::DecodeAs<msg::RoundProgress>(payload);
        if (m.ok())
          observer.OnRound(m->epoch, m->round, m->rounds_per_epoch, m->epochs, m->elapsed_sec);
        return;
      }
      case runtime::MessageType::kEpochReport: {
        auto m = msg::DecodeAs<msg::EpochReport>(payload);
        if (!m.ok()) return;
        auto report = runtime::EpochReport::FromJson(m->json_line);
        if (report.ok()) observer.OnEpoch(*report);
        return;
      }
      case runtime::MessageType::kJobStatus: {
        auto m = msg::DecodeAs<msg::JobStatus>(payload);
        if (!m.ok())
          return shared->Finish({1, "bad status from the master: " + m.status().ToString()});
        auto j = nlohmann::json::parse(m->json, nullptr, false);
        if (m->state == msg::JobState::kQueued) {
          std::lock_guard<std::mutex> lock(shared->mu);
          shared->job_id = m->job_id;
          return;
        }
        if (m->state == msg::JobState::kSucceeded && j.contains("predicted")) {
          const nlohmann::json& p = j["predicted"];
          runtime::PredictTotals totals;
          totals.out_dir = p.value("out_dir", std::string("?"));
          totals.rows = p.value("rows", int64_t{0});
          totals.correct = p.value("correct", int64_t{0});
          totals.classifier = p.value("classifier", false);
          totals.rmse = p.value("rmse", 0.0);
          totals.skipped_records = p.value("skipped_records", int64_t{0});
          return shared->Finish({0, runtime::DescribePredicted(totals)});
        }
        if (m->state == msg::JobState::kSucceeded) {
          std::string summary = "model: " + j.value("model", std::string("?")) +
                                " (NumPy: " + j.value("npz", std::string("?")) + ")";
          if (j.value("finished_before", false)) {
            summary = "the job had already finished all epochs; " + summary;
          }
          return shared->Finish({0, summary});
        }
        if (m->state == msg::JobState::kFailed) {
          return shared->Finish({1, "job failed: " + j.value("error", m->json)});
        }
        return;
      }
      default:
        return;
    }
  };
  handler.on_closed = [shared](const std::shared_ptr<runtime::Connection>&, const Status& s) {
    shared->Finish({1, "lost the connection to the master: " + s.ToString()});
  };
  auto connection = Connect(transport, address, handler, interrupt);
  if (!connection.ok()) {
    const int signo = interrupt ? interrupt->received_signal() : 0;
    return {signo != 0 ? 128 + signo : 1, connection.status().ToString()};
  }
  Status sent = runtime::SendMessage(**connection, job);
  if (!sent.ok()) return {1, "cannot submit: " + sent.ToString()};

  std::future<JobOutcome> outcome = shared->outcome.get_future();
  while (outcome.wait_for(100ms) != std::future_status::ready) {
    const int signo = interrupt ? interrupt->received_signal() : 0;
    if (signo == 0) continue;
    uint64_t id;
    {
      std::lock_guard<std::mutex> lock(shared->mu);
      id = shared->job_id;
    }
    if (id != 0) (void)runtime::SendMessage(**connection, msg::CancelJob{id});
    // The master fails the job at its next step; give it a moment to say so, then go: a
    // signalled process must be gone within 2 s.
    outcome.wait_for(1s);
    (*connection)->Close();
    return {128 + signo, "interrupted: job " + std::to_string(id) + " cancelled"};
  }
  (*connection)->Close();
  return outcome.get();
}

Result<std::string> QueryStatus(runtime::Transport& transport, const std::string& address) {
  auto reply = std::make_shared<std::promise<Result<std::string>>>();
  auto replied = std::make_shared<std::once_flag>();
  runtime::ConnectionHandler handler;
  handler.on_message = [reply, replied](const std::shared_ptr<runtime::Connection>&,
                                        runtime::MessageType type, std::string payload) {
    if (type != runtime::MessageType::kJobStatus) return;
    auto m = msg::DecodeAs<msg::JobStatus>(payload);
    std::call_once(*replied, [&] {
      reply->set_value(m.ok() ? Result<std::string>(m->json) : Result<std::string>(m.status()));
    });
  };
  handler.on_closed = [reply, replied](const std::shared_ptr<runtime::Connection>&,
                                       const Status& s) {
    std::call_once(*replied, [&] {
      reply->set_value(UnavailableError("the master closed the connection: " + s.ToString()));
    });
  };
  MRTRAIN_ASSIGN_OR_RETURN(auto connection, Connect(transport, address, handler, nullptr));
  MRTRAIN_RETURN_IF_ERROR(runtime::SendMessage(*connection, msg::StatusRequest{}));
  auto future = reply->get_future();
  if (future.wait_for(10s) != std::future_status::ready) {
    connection->Close();
    return DeadlineExceededError("the master at " + address + " did not answer within 10 s");
  }
  connection->Close();
  return future.get();
}

}  // namespace mrtrain::tools
