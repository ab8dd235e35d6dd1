// Every mrtrain process stops within 2 s of SIGTERM or SIGINT, whatever it is doing: a worker
// that cannot reach its master or is registering again after losing it, a submitter waiting
// for its job, a master. Each test starts the real binary and times its exit.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "test/testing/child_process.h"
#include "test/testing/temp_dir.h"

namespace mrtrain {
namespace {

using testing::TempDir;
using Clock = testing::ChildProcess::Clock;
using namespace std::chrono_literals;

constexpr auto kStopBound = 2s;

// The binary, started with its output in `log`; killed on destruction if still running.
class Process : public testing::ChildProcess {
 public:
  Process(std::vector<std::string> args, const std::string& log)
      : ChildProcess(WithBinary(std::move(args)), log) {}

 private:
  static std::vector<std::string> WithBinary(std::vector<std::string> args) {
    args.insert(args.begin(), "tools/mrtrain/mrtrain");
    return args;
  }
};

using testing::WaitForText;
int FreePort() { return testing::FreeLoopbackPort(); }

// Checks the exit came within the bound, with `exit_code`, and prints the time for the report.
// A failure shows the end of the process's own output (`log`): why it exited as it did.
void CheckStopped(const std::optional<std::pair<int, Clock::duration>>& exited, int exit_code,
                  const std::string& what, const std::string& log) {
  const std::string output = TempDir::Read(log);
  INFO(what << " wrote, at its end:\n"
            << output.substr(output.size() > 4000 ? output.size() - 4000 : 0));
  REQUIRE(exited.has_value());
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(exited->second).count();
  std::printf("%s: signal to exit %lld ms\n", what.c_str(), static_cast<long long>(ms));
  CHECK(exited->second < kStopBound);
  INFO("ended by signal " << (WIFSIGNALED(exited->first) ? WTERMSIG(exited->first) : 0));
  REQUIRE(WIFEXITED(exited->first));
  CHECK(WEXITSTATUS(exited->first) == exit_code);
}

TEST_CASE("a worker that cannot reach its master stops within 2 s of SIGTERM or SIGINT",
          "[tools]") {
  TempDir dir;
  const int signo = GENERATE(SIGTERM, SIGINT);
  Process worker({"worker", "--insecure", "--master", "127.0.0.1:" + std::to_string(FreePort())},
                 dir.File("worker.log"));
  std::this_thread::sleep_for(800ms);  // retrying the master by now
  CheckStopped(worker.SignalAndWait(signo), 0, "worker retrying its first registration",
               dir.File("worker.log"));
}

TEST_CASE("a worker registering again after its master died stops within 2 s of SIGTERM",
          "[tools]") {
  TempDir dir;
  Process master(
      {"master", "--insecure", "--listen", "127.0.0.1:0", "--address-file", dir.File("address")},
      dir.File("master.log"));
  REQUIRE(WaitForText(dir.File("address"), ":"));
  Process worker({"worker", "--insecure", "--master", TempDir::Read(dir.File("address")),
                  "--reconnect-sec", "600"},
                 dir.File("worker.log"));
  REQUIRE(WaitForText(dir.File("worker.log"), "registered with"));
  master.Kill();
  REQUIRE(WaitForText(dir.File("worker.log"), "registering again"));
  std::this_thread::sleep_for(500ms);
  CheckStopped(worker.SignalAndWait(SIGTERM), 0, "worker re-registering", dir.File("worker.log"));
}

TEST_CASE("a submitter waiting for workers and its master stop within 2 s of SIGTERM", "[tools]") {
  TempDir dir;
  Process master({"master", "--insecure", "--listen", "127.0.0.1:0", "--address-file",
                  dir.File("address"), "--worker-wait", "600"},
                 dir.File("master.log"));
  REQUIRE(WaitForText(dir.File("address"), ":"));
  dir.Write("train.svm", "1 1:0.5\n0 2:0.5\n");
  const std::string spec =
      dir.Write("job.yaml", "data:\n  train: {path: " + dir.File("train.svm") +
                                ", format: libsvm, partitions: 1}\nmodel: {type: logistic}\n"
                                "update: {rule: sgd, learning_rate: 0.1}\ntraining: {epochs: 1}\n"
                                "output: {dir: " +
                                dir.File("out") + "}\n");
  Process submit({"submit", "--insecure", "--master", TempDir::Read(dir.File("address")),
                  "--progress", "lines", spec},
                 dir.File("submit.log"));
  REQUIRE(WaitForText(dir.File("master.log"), "job 1"));  // queued, waiting for a worker
  std::this_thread::sleep_for(300ms);
  CheckStopped(submit.SignalAndWait(SIGTERM), 128 + SIGTERM, "submit waiting for workers",
               dir.File("submit.log"));
  CheckStopped(master.SignalAndWait(SIGTERM), 0, "master", dir.File("master.log"));
}

// A job that runs for minutes: many small epochs over a tiny file.
std::string LongJob(const TempDir& dir) {
  std::string data;
  for (int i = 0; i < 200; ++i) data += i % 2 ? "1 1:0.5 3:0.25\n" : "0 2:0.75\n";
  dir.Write("train.svm", data);
  return dir.Write("job.yaml", "data:\n  train: {path: " + dir.File("train.svm") +
                                   ", format: libsvm, partitions: 2}\nmodel: {type: logistic}\n"
                                   "update: {rule: sgd, learning_rate: 0.1}\n"
                                   "training: {epochs: 100000, rounds_per_epoch: 2}\n"
                                   "output: {dir: " +
                                   dir.File("out") + "}\n");
}

TEST_CASE("a master running a job, and then its worker, stop within 2 s of SIGTERM", "[tools]") {
  TempDir dir;
  Process master(
      {"master", "--insecure", "--listen", "127.0.0.1:0", "--address-file", dir.File("address")},
      dir.File("master.log"));
  REQUIRE(WaitForText(dir.File("address"), ":"));
  const std::string address = TempDir::Read(dir.File("address"));
  Process worker({"worker", "--insecure", "--master", address, "--slots", "1"},
                 dir.File("worker.log"));
  Process submit({"submit", "--insecure", "--master", address, "--progress", "lines", LongJob(dir)},
                 dir.File("submit.log"));
  REQUIRE(WaitForText(dir.File("submit.log"), "epoch 2/"));
  CheckStopped(master.SignalAndWait(SIGTERM), 0, "master running a job", dir.File("master.log"));
  // The stopping master tells its workers to shut down: the worker may already be on its way
  // out (its own handlers restored, so a SIGTERM now would end it by the signal). It gets one
  // bound to stop by itself, then SIGTERM and another.
  auto worker_exit = worker.WaitForExit(kStopBound);
  if (!worker_exit) worker_exit = worker.SignalAndWait(SIGTERM);
  CheckStopped(worker_exit, 0, "worker after its master stopped", dir.File("worker.log"));
}

TEST_CASE("mrtrain run --workers stops its job and processes within 2 s of SIGTERM", "[tools]") {
  TempDir dir;
  Process run({"run", "--workers", "1", "--progress", "lines", LongJob(dir)}, dir.File("run.log"));
  REQUIRE(WaitForText(dir.File("run.log"), "epoch 2/"));
  CheckStopped(run.SignalAndWait(SIGTERM), 128 + SIGTERM, "run --workers 1 training",
               dir.File("run.log"));
}

}  // namespace
}  // namespace mrtrain
