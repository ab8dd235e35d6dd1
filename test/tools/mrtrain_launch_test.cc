// `mrtrain launch`: every process of a launch started with the launcher's environment (faked
// Slurm, faked Kubernetes, and Debian's real mpirun), the job trained to the same bytes as in
// one process, and every rank exiting with the job's status.
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "test/testing/child_process.h"
#include "test/testing/temp_dir.h"

namespace mrtrain {
namespace {

using testing::ChildProcess;
using testing::TempDir;
using namespace std::chrono_literals;

constexpr char kBinary[] = "tools/mrtrain/mrtrain";

// A small job writing its model under `out`; `data` is its training set (libsvm).
std::string Job(const TempDir& dir, const std::string& out, const std::string& data) {
  dir.Write(out + ".svm", data);
  return dir.Write(out + ".yaml", "data:\n  train: {path: " + dir.File(out + ".svm") +
                                      ", format: libsvm, partitions: 4}\n"
                                      "model: {type: logistic}\n"
                                      "update: {rule: adagrad, learning_rate: 0.1}\n"
                                      "training: {epochs: 3, rounds_per_epoch: 5}\n"
                                      "output: {dir: " +
                                      dir.File(out) + "}\n");
}

std::string GoodData() {
  std::string data;
  for (int i = 0; i < 400; ++i) {
    data += (i % 3 == 0 ? "1 1:0.5 3:" : "0 2:0.75 3:") + std::to_string((i % 7) * 0.125) + "\n";
  }
  return data;
}

// Exit status of a child that exited (fails the test if it was killed or hung).
int ExitCode(ChildProcess& p, const std::string& log, std::chrono::seconds bound = 90s) {
  auto exited = p.WaitForExit(bound);
  INFO(log << ":\n" << TempDir::Read(log));
  REQUIRE(exited.has_value());
  REQUIRE(WIFEXITED(exited->first));
  return WEXITSTATUS(exited->first);
}

// The model a one-process run of the same job writes.
std::string LocalModel(const TempDir& dir) {
  const std::string spec = Job(dir, "local", GoodData());
  ChildProcess run({kBinary, "run", "--progress", "lines", spec}, dir.File("local.log"));
  REQUIRE(ExitCode(run, dir.File("local.log")) == 0);
  return TempDir::Read(dir.File("local/model.npz"));
}

// Starts `size` ranks of `mrtrain launch` with `env_of(rank)` and `flags`; returns their exit
// codes, in rank order.
template <typename EnvOf>
std::vector<int> LaunchAll(const TempDir& dir, int size, const std::string& spec,
                           const std::vector<std::string>& flags, EnvOf env_of) {
  std::vector<std::unique_ptr<ChildProcess>> ranks;
  for (int r = 0; r < size; ++r) {
    std::vector<std::string> argv = {kBinary, "launch", spec, "--insecure"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    ranks.push_back(std::make_unique<ChildProcess>(
        argv, dir.File("rank" + std::to_string(r) + ".log"), env_of(r)));
  }
  std::vector<int> codes;
  for (int r = 0; r < size; ++r) {
    codes.push_back(ExitCode(*ranks[r], dir.File("rank" + std::to_string(r) + ".log")));
  }
  return codes;
}

TEST_CASE("a faked Slurm launch trains the job to the bytes of a one-process run",
          "[launch][integration]") {
  TempDir dir;
  const std::string local = LocalModel(dir);
  const int port = testing::FreeLoopbackPort();
  const std::vector<int> codes = LaunchAll(
      dir, 3, Job(dir, "out", GoodData()), {"--port", std::to_string(port)}, [](int rank) {
        return std::vector<std::string>{"SLURM_PROCID=" + std::to_string(rank), "SLURM_NTASKS=3",
                                        "SLURM_STEP_NODELIST=127.0.0.1"};
      });
  CHECK(codes == std::vector<int>{0, 0, 0});
  CHECK(TempDir::Read(dir.File("rank0.log"))
            .find("mrtrain launch (slurm, 3 processes): master on 127.0.0.1:" +
                  std::to_string(port)) != std::string::npos);
  CHECK(TempDir::Read(dir.File("rank1.log")).find("slurm-1") != std::string::npos);
  const std::string launched = TempDir::Read(dir.File("out/model.npz"));
  REQUIRE_FALSE(launched.empty());
  CHECK(launched == local);
}

TEST_CASE("a failed job ends every rank with its status", "[launch][integration]") {
  TempDir dir;
  // A label that is not a number: the workers fail the job when they load the partition.
  std::string data = GoodData();
  data += "yes 1:0.5\n";
  const std::vector<int> codes =
      LaunchAll(dir, 3, Job(dir, "bad", data),
                {"--port", std::to_string(testing::FreeLoopbackPort())}, [](int rank) {
                  return std::vector<std::string>{"JOB_COMPLETION_INDEX=" + std::to_string(rank),
                                                  "MRTRAIN_WORLD_SIZE=3", "MASTER_ADDR=127.0.0.1"};
                });
  CHECK(codes == std::vector<int>{1, 1, 1});
  CHECK(TempDir::Read(dir.File("rank0.log")).find("bad.svm:401") != std::string::npos);
}

TEST_CASE("rank 0 refuses a rendezvous folder an earlier launch left its address in", "[launch]") {
  TempDir dir;
  dir.Write("rdv/master.address", "127.0.0.1:1");
  ChildProcess rank0({kBinary, "launch", Job(dir, "out", GoodData()), "--insecure", "--rendezvous",
                      dir.File("rdv"), "--port", "0"},
                     dir.File("rank0.log"), {"OMPI_COMM_WORLD_RANK=0", "OMPI_COMM_WORLD_SIZE=2"});
  CHECK(ExitCode(rank0, dir.File("rank0.log"), 30s) == 2);
  CHECK(TempDir::Read(dir.File("rank0.log"))
            .find("master.address exists, left by an earlier launch") != std::string::npos);
}

TEST_CASE("mpirun -np 3 runs the master and two workers", "[launch][integration]") {
  const char* mpirun = "/usr/bin/mpirun";
  if (!std::filesystem::exists(mpirun)) {
    WARN("skipped: " << mpirun << " is not installed (apt-get install openmpi-bin)");
    return;
  }
  TempDir dir;
  const std::string local = LocalModel(dir);
  std::filesystem::create_directories(dir.File("rdv"));
  // As root (CI), mpirun needs to be told that is meant; --oversubscribe: 3 ranks on 2 cores;
  // plm isolated: start them on this machine without looking for ssh.
  ChildProcess launch(
      {mpirun, "--allow-run-as-root", "--oversubscribe", "--mca", "plm", "isolated", "-np", "3",
       kBinary, "launch", Job(dir, "out", GoodData()), "--insecure", "--master-host", "127.0.0.1",
       "--port", "0", "--rendezvous", dir.File("rdv")},
      dir.File("mpirun.log"));
  CHECK(ExitCode(launch, dir.File("mpirun.log"), 120s) == 0);
  CHECK(TempDir::Read(dir.File("mpirun.log")).find("(openmpi, 3 processes)") != std::string::npos);
  CHECK(TempDir::Read(dir.File("out/model.npz")) == local);
  // Rank 0 takes its address back at the end: the folder can serve the next launch.
  CHECK_FALSE(std::filesystem::exists(dir.File("rdv/master.address")));
}

}  // namespace
}  // namespace mrtrain
