#include "test/integration/cluster_harness.h"

#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include <catch2/catch.hpp>

#include "tools/data/synthetic.h"

namespace mrtrain::testing {

using namespace std::chrono_literals;

Output Mrtrain(const std::string& args, int timeout_sec) {
  const std::string cmd = std::string(kSecret) + " timeout " + std::to_string(timeout_sec) +
                          " " + kBinary + " " + args + " 2>&1";
  Output out;
  std::FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.text.append(buf, n);
  const int status = pclose(pipe);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

Cluster::Cluster(TempDir& dir, int min_workers, const std::vector<std::string>& master_flags)
    : dir_(dir) {
  const std::string address_file = dir.File("master.address");
  std::filesystem::remove(address_file);
  std::vector<std::string> argv = {kBinary,         "master",
                                   "--listen",      "127.0.0.1:0",
                                   "--address-file", address_file,
                                   "--min-workers", std::to_string(min_workers),
                                   "--worker-wait", "60",
                                   "--plugin-cache", dir.File("cache-master")};
  argv.insert(argv.end(), master_flags.begin(), master_flags.end());
  auto master = group_.Spawn(argv, {kSecret}, dir.File("master.log"));
  REQUIRE(master.ok());
  master_ = *master;
  auto address = group_.WaitForFile(address_file, 30s, master_);
  INFO(address.status().ToString());
  REQUIRE(address.ok());
  address_ = *address;
}

std::vector<pid_t> Cluster::AddWorkers(int n, const std::vector<std::string>& extra,
                                       const std::string& via) {
  std::vector<pid_t> pids;
  for (int i = 0; i < n; ++i) {
    const std::string name = "w" + std::to_string(workers_++);
    std::vector<std::string> argv = {kBinary,  "worker", "--master",  via.empty() ? address_ : via,
                                     "--slots", "1",     "--name",         name,
                                     "--plugin-cache",   dir_.File("cache-" + name)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto pid = group_.Spawn(argv, {kSecret}, dir_.File(name + ".log"));
    REQUIRE(pid.ok());
    pids.push_back(*pid);
    // One at a time, so worker w<i> registers i-th (and hosts the shards placed i-th).
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (true) {
      const nlohmann::json status = Status();
      int named = 0;
      for (const auto& w : status["workers"]) named += w["name"] == name ? 1 : 0;
      if (named > 0) break;
      INFO(status.dump() << "\n" << TempDir::Read(dir_.File(name + ".log")));
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(20ms);
    }
  }
  return pids;
}

nlohmann::json Cluster::Status() {
  Output out = Mrtrain("status --json --master " + address_, 30);
  INFO(out.text);
  REQUIRE(out.exit_code == 0);
  return nlohmann::json::parse(out.text);
}

Output Cluster::Submit(const std::string& spec, const std::string& extra) {
  return Mrtrain("submit " + spec + " --master " + address_ + " " + extra);
}

pid_t Cluster::SubmitAsync(const std::string& spec, const std::string& log,
                           const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {kBinary, "submit", spec, "--master", address_,
                                   "--progress", "lines"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto pid = group_.Spawn(argv, {kSecret}, log);
  REQUIRE(pid.ok());
  return *pid;
}

std::string WriteJob(TempDir& dir, const std::string& name, const std::string& model,
                     const std::string& shuffle, const std::string& training) {
  if (!std::filesystem::exists(dir.File("train.svm"))) {
    tools::SyntheticSpec s;
    s.task = tools::SyntheticSpec::Task::kBinary;
    s.features = 8;
    s.rows = 3000;
    s.seed = 3;
    REQUIRE(tools::WriteSyntheticLibsvm(dir.File("train.svm"), s).ok());
  }
  return dir.Write(name + ".yaml",
                   "data:\n"
                   "  train: {path: " + dir.File("train.svm") +
                       ", format: libsvm, partitions: 5, features: 8}\n"
                       "  test: {path: " + dir.File("train.svm") +
                       ", format: libsvm, partitions: 2, features: 8}\n"
                       "model: " + model + "\n"
                       "update: {rule: adam, learning_rate: 0.05}\n"
                       "training: " + training + "\n"
                       "shuffle: " + shuffle + "\n"
                       "output: {dir: " + dir.File(name) + "}\n");
}

std::string ModelBytes(TempDir& dir, const std::string& name) {
  return TempDir::Read(dir.File(name + "/model.mrt"));
}

}  // namespace mrtrain::testing
