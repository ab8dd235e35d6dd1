// Multi-host tests of the distributed runtime: the master and each worker of the mrtrain binary
// in a Linux network namespace of its own, joined to a bridge by a veth pair, so a test can cut
// one host's link mid-job as a pulled cable or a dead switch port would: no FIN, no RST, the
// peer just goes silent. Needs root and iproute2 (`ip netns`); without them each test passes
// with a printed "skipped:" warning. Every wait is bounded, every process reaped (ProcessGroup),
// and the namespaces are deleted on every path out of a test (NetnsLab's destructor).
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "test/testing/temp_dir.h"
#include "tools/data/synthetic.h"
#include "tools/launch/process_group.h"

namespace mrtrain {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;
using tools::ProcessGroup;

const char kBinary[] = "tools/mrtrain/mrtrain";
const char kSecret[] = "MRTRAIN_SECRET=netns-test-secret-0123456789abcdef";

struct Output {
  int exit_code = -1;
  std::string text;  // stdout and stderr
};

// Runs `command` with /bin/sh to its end, bounded by `timeout_sec`, with the test's secret in
// the environment.
Output Shell(const std::string& command, int timeout_sec) {
  const std::string cmd =
      std::string(kSecret) + " timeout " + std::to_string(timeout_sec) + " " + command + " 2>&1";
  Output out;
  std::FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) {  // no REQUIRE: NetnsLab's destructor runs this too
    out.text = "popen failed: " + cmd;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.text.append(buf, n);
  const int status = pclose(pipe);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// iproute2's `ip`, found without PATH (a test's PATH may lack the sbin folders); "" if absent.
std::string FindIp() {
  for (const char* path : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (access(path, X_OK) == 0) return path;
  }
  return "";
}

// A small network of namespaces, one per host, all joined to a bridge in a hub namespace:
//
//                       hub namespace: bridge br0
//           v-m ---------- v-w1 ---------- v-w2 ---------- v-w3      hub ends of the veth pairs
//            |              |               |               |        (CutLink sets one down)
//          eth0           eth0            eth0            eth0
//       [ns m]         [ns w1]         [ns w2]         [ns w3]        10.77.0.0/24
//
// Namespace names carry the test's pid, so concurrent runs do not clash; every link and the
// bridge live inside namespaces it created, so deleting those (the destructor) removes all.
// The filesystem is shared: only the network is split. Not thread-safe.
class NetnsLab {
 public:
  explicit NetnsLab(std::string ip) : ip_(std::move(ip)) {}
  // Deletes the namespaces. Processes still inside keep theirs until they exit, so stop them
  // first: declare the ProcessGroup after the lab.
  ~NetnsLab() {
    for (auto it = namespaces_.rbegin(); it != namespaces_.rend(); ++it) {
      Output out = Shell(ip_ + " netns delete " + *it, 30);
      if (out.exit_code != 0) std::cerr << "cannot delete netns " << *it << ": " << out.text;
    }
  }
  NetnsLab(const NetnsLab&) = delete;
  NetnsLab& operator=(const NetnsLab&) = delete;

  // Builds the network for `hosts` (name, IPv4 address). Returns "" on success, else the
  // command that failed and its output: then the host cannot make namespaces or links (not
  // root, a restricted container, no veth or bridge support) and the caller skips.
  std::string Open(const std::vector<std::pair<std::string, std::string>>& hosts) {
    RemoveStale();
    const std::string hub = Namespace("hub");
    if (std::string error = Ip("netns add " + hub); !error.empty()) return error;
    namespaces_.push_back(hub);
    for (const std::string& args :
         {"-n " + hub + " link add br0 type bridge", "-n " + hub + " link set br0 up"}) {
      if (std::string error = Ip(args); !error.empty()) return error;
    }
    for (const auto& [host, address] : hosts) {
      const std::string ns = Namespace(host);
      if (std::string error = Ip("netns add " + ns); !error.empty()) return error;
      namespaces_.push_back(ns);
      const std::string veth = "v-" + host;
      for (const std::string& args :
           {"-n " + hub + " link add " + veth + " type veth peer name eth0 netns " + ns,
            "-n " + hub + " link set " + veth + " master br0 up",
            "-n " + ns + " addr add " + address + "/24 dev eth0", "-n " + ns + " link set eth0 up",
            "-n " + ns + " link set lo up"}) {
        if (std::string error = Ip(args); !error.empty()) return error;
      }
    }
    return "";
  }

  // The argv prefix that runs a program in `host`'s namespace (`ip netns exec` execs it, so
  // the pid ProcessGroup sees is the program's own).
  std::vector<std::string> In(const std::string& host) const {
    return {ip_, "netns", "exec", Namespace(host)};
  }
  // The same as a shell command prefix.
  std::string ShellIn(const std::string& host) const {
    return ip_ + " netns exec " + Namespace(host);
  }

  // Takes the hub end of `host`'s link down: the bridge drops its frames both ways, and
  // nothing on the host or its peers is told.
  void CutLink(const std::string& host) {
    const std::string error = Ip("-n " + Namespace("hub") + " link set v-" + host + " down");
    INFO(error);
    REQUIRE(error.empty());
  }

 private:
  std::string Namespace(const std::string& host) const {
    return "mrt" + std::to_string(getpid()) + "-" + host;
  }
  // Deletes the namespaces of earlier runs whose process is gone, as one killed by a timeout
  // leaves them (its children died with it: PR_SET_PDEATHSIG).
  void RemoveStale() {
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator("/run/netns", error)) {
      const std::string name = entry.path().filename().string();
      const size_t dash = name.find('-');
      if (name.rfind("mrt", 0) != 0 || dash == std::string::npos || dash == 3 ||
          name.find_first_not_of("0123456789", 3) != dash ||
          std::filesystem::exists("/proc/" + name.substr(3, dash - 3))) {
        continue;
      }
      const std::string failed = Ip("netns delete " + name);
      std::cerr << "stale netns " << name << (failed.empty() ? ": deleted" : ": " + failed) << "\n";
    }
  }
  // Runs `ip args`; "" on success, else the command and its output.
  std::string Ip(const std::string& args) {
    Output out = Shell(ip_ + " " + args, 30);
    return out.exit_code == 0 ? "" : "`ip " + args + "` failed: " + out.text;
  }

  const std::string ip_;
  std::vector<std::string> namespaces_;  // created so far, the hub first
};

// Prints why the test does not run; the test case then returns and passes.
void Skip(const std::string& why) {
  std::cerr << "skipped: needs root and ip netns: " << why << "\n";
  WARN("skipped: needs root and ip netns: " << why);
}

// An MLP for binary classification on synthetic libsvm data, 5 partitions, 2 reducer shards, long
// enough (about half a second an epoch) that a link cut just after epoch 1 lands in epoch 2.
std::string WriteJob(TempDir& dir) {
  tools::SyntheticSpec s;
  s.task = tools::SyntheticSpec::Task::kBinary;
  s.features = 8;
  s.rows = 100000;
  s.seed = 3;
  REQUIRE(tools::WriteSyntheticLibsvm(dir.File("train.svm"), s).ok());
  return dir.Write("job.yaml",
                   "data:\n"
                   "  train: {path: " +
                       dir.File("train.svm") +
                       ", format: libsvm, partitions: 5, features: 8}\n"
                       "model: {type: mlp, hidden: [64], init: xavier, block_size: 8}\n"
                       "update: {rule: adam, learning_rate: 0.05}\n"
                       "training: {epochs: 3, rounds_per_epoch: 10, seed: 7}\n"
                       "shuffle: {mode: hash, reducers: 2}\n"
                       "output: {dir: " +
                       dir.File("cluster") + "}\n");
}

// The last part of each process's log, for a failure message.
std::string Logs(TempDir& dir) {
  std::string all;
  for (const char* name : {"master", "w1", "w2", "w3", "submit"}) {
    std::string text = TempDir::Read(dir.File(std::string(name) + ".log"));
    if (text.size() > 12000) text = "[...]" + text.substr(text.size() - 12000);
    all += std::string("----- ") + name + ".log -----\n" + text;
  }
  return all;
}

// Polls `path` until it contains `needle`; fails the test after `timeout` or when `pid` exits.
void WaitForText(ProcessGroup& group, pid_t pid, const std::string& path, const std::string& needle,
                 std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (TempDir::Read(path).find(needle) == std::string::npos) {
    INFO("waiting for '" << needle << "' in " << path << "\n" << TempDir::Read(path));
    REQUIRE_FALSE(group.Poll(pid));
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(5ms);
  }
}

TEST_CASE(
    "a job whose worker's link is cut mid-epoch completes on the other hosts with the "
    "model of local mode",
    "[integration][netns]") {
  if (geteuid() != 0) return Skip("not running as root");
  const std::string ip = FindIp();
  if (ip.empty()) return Skip("iproute2's ip not found");

  TempDir dir;
  NetnsLab lab(ip);
  if (std::string why = lab.Open(
          {{"m", "10.77.0.1"}, {"w1", "10.77.0.2"}, {"w2", "10.77.0.3"}, {"w3", "10.77.0.4"}});
      !why.empty()) {
    return Skip(why);
  }
  const std::string binary = std::filesystem::absolute(kBinary).string();
  const std::string spec = WriteJob(dir);

  // Reference: local mode, one process (outside the namespaces: it needs no network).
  Output local = Shell(binary + " run " + spec + " --set output.dir=" + dir.File("local"), 120);
  INFO(local.text);
  REQUIRE(local.exit_code == 0);
  const std::string reference = TempDir::Read(dir.File("local/model.mrt"));
  REQUIRE(reference.size() > 100);

  // Workers register one at a time, so w1 is the first worker of the job and hosts reducer
  // shard 0, w2 hosts shard 1 and w3 none (shards are placed in registration order).
  std::string cut;
  bool cut_hosts_shard = false;
  SECTION("the worker hosting reducer shard 0") {
    cut = "w1";
    cut_hosts_shard = true;
  }
  SECTION("a worker hosting no reducer shard") { cut = "w3"; }

  ProcessGroup group;  // after the lab: its processes stop before the namespaces go
  auto spawn_in = [&](const std::string& host, std::vector<std::string> args,
                      const std::string& log) {
    std::vector<std::string> argv = lab.In(host);
    argv.push_back(binary);
    argv.insert(argv.end(), args.begin(), args.end());
    auto pid = group.Spawn(argv, {kSecret}, dir.File(log + ".log"));
    INFO(pid.status().ToString());
    REQUIRE(pid.ok());
    return *pid;
  };
  // Heartbeats every 200 ms and a worker silent for 1.5 s is lost, so a cut is noticed fast.
  const pid_t master =
      spawn_in("m",
               {"master", "--listen", "10.77.0.1:0", "--address-file", dir.File("master.address"),
                "--min-workers", "3", "--worker-wait", "60", "--heartbeat-ms", "200",
                "--heartbeat-timeout-ms", "1500", "--plugin-cache", dir.File("cache-m")},
               "master");
  auto address_or = group.WaitForFile(dir.File("master.address"), 30s, master);
  INFO(address_or.status().ToString());
  REQUIRE(address_or.ok());
  const std::string address = *address_or;
  INFO("master at " << address);

  auto status = [&] {
    Output out = Shell(lab.ShellIn("m") + " " + binary + " status --json --master " + address, 30);
    INFO(out.text);
    REQUIRE(out.exit_code == 0);
    return nlohmann::json::parse(out.text);
  };
  for (int i = 1; i <= 3; ++i) {
    const std::string name = "w" + std::to_string(i);
    const pid_t worker = spawn_in(
        name,
        {"worker", "--master", address, "--listen", "10.77.0." + std::to_string(i + 1) + ":0",
         "--slots", "1", "--name", name, "--plugin-cache", dir.File("cache-" + name)},
        name);
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (static_cast<int>(status()["workers"].size()) < i) {
      INFO(Logs(dir));
      REQUIRE_FALSE(group.Poll(worker));
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(50ms);
    }
  }
  const nlohmann::json workers = status()["workers"];
  for (int i = 0; i < 3; ++i) {
    // Each advertises its own namespace's address for the data plane.
    CHECK(workers[i]["name"] == "w" + std::to_string(i + 1));
    CHECK(workers[i]["data_address"].get<std::string>().rfind(
              "10.77.0." + std::to_string(i + 2) + ":", 0) == 0);
  }

  const pid_t submit =
      spawn_in("m", {"submit", spec, "--master", address, "--progress", "lines"}, "submit");
  WaitForText(group, submit, dir.File("submit.log"), "epoch 1/3", 120s);
  lab.CutLink(cut);
  const std::string at_cut = TempDir::Read(dir.File("submit.log"));
  INFO("submit output when " << cut << "'s link was cut:\n" << at_cut);
  REQUIRE(at_cut.find("epoch 2/3") == std::string::npos);  // the cut lands in epoch 2

  auto code = group.Wait(submit, 120s);
  const std::string master_log = TempDir::Read(dir.File("master.log"));
  INFO(Logs(dir));
  REQUIRE(code.ok());
  CHECK(*code == 0);
  CHECK(TempDir::Read(dir.File("submit.log")).find("epoch 3/3 train_loss=") != std::string::npos);
  CHECK(TempDir::Read(dir.File("cluster/model.mrt")) == reference);
  if (cut_hosts_shard) {
    // No round can finish without shard 0: the master must have declared its host lost and
    // restored the shards elsewhere from the checkpoint after epoch 1.
    CHECK(master_log.find("(" + cut + ") lost during job") != std::string::npos);
    CHECK(master_log.find("(" + cut + ") hosting reducer shard 0 was lost") != std::string::npos);
  } else {
    // Its work went elsewhere: backups of the attempts that hung on it or, when the job ran
    // past the heartbeat timeout, re-runs once it was lost. Which one is a matter of timing.
    const std::string id = std::to_string(workers[2]["id"].get<int64_t>());
    CHECK((master_log.find("on worker " + id + " has run") != std::string::npos ||
           master_log.find("(" + cut + ") lost during job") != std::string::npos));
  }
  const nlohmann::json after = status();
  INFO(after.dump(2));
  REQUIRE(after["jobs"].size() == 1);
  CHECK(after["jobs"][0]["state"] == "succeeded");
  if (cut_hosts_shard) CHECK(after["recoveries"].get<int64_t>() >= 1);
  // Silent since the cut, the worker leaves the master's list (bounded: heartbeat timeout).
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (status()["workers"].size() != 2) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(100ms);
  }
  // Kept in a variable: a range-for over a member of a temporary would outlive the temporary.
  const nlohmann::json left = status()["workers"];
  for (const auto& w : left) CHECK(w["name"] != cut);
}

}  // namespace
}  // namespace mrtrain
