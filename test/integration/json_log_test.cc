// --log-format json across a real cluster: every line the master and a worker log is one JSON
// object, the master's job-thread lines name the job, epoch and round, a worker's its name.
// The format reaches the processes through MRTRAIN_LOG_FORMAT, as with `run --workers N`.
#include <stdlib.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include <catch2/catch.hpp>

#include "test/integration/cluster_harness.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::testing {
namespace {

// The JSON lines of a process's log (lines its code printed to stdout are not log lines).
std::vector<nlohmann::json> LogLines(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::vector<nlohmann::json> lines;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '{') continue;
    INFO(path << ": " << line);
    nlohmann::json parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    CHECK_FALSE(parsed.is_discarded());
    if (!parsed.is_discarded()) lines.push_back(std::move(parsed));
  }
  return lines;
}

TEST_CASE("--log-format json: master and worker lines are JSON with their context",
          "[integration]") {
  REQUIRE(setenv("MRTRAIN_LOG_FORMAT", "json", 1) == 0);
  TempDir dir;
  Cluster cluster(dir, 1);
  cluster.AddWorkers(1);
  REQUIRE(unsetenv("MRTRAIN_LOG_FORMAT") == 0);
  // A tiny shuffle buffer makes a map task spill, which its worker logs from the task's thread.
  const std::string spec =
      WriteJob(dir, "logged", "{type: logistic, block_size: 2}", "{reducers: 1, buffer_bytes: 12}",
               "{epochs: 2, rounds_per_epoch: 3, seed: 7}");
  Output out = cluster.Submit(spec);
  INFO(out.text);
  REQUIRE(out.exit_code == 0);
  REQUIRE(cluster.group().StopAll(std::chrono::seconds(10)).ok());

  const auto master = LogLines(dir.File("master.log"));
  REQUIRE(!master.empty());
  bool job_line = false;
  for (const auto& line : master) {
    CHECK(line["process"] == "master");
    CHECK(line.contains("time"));
    CHECK(line.contains("level"));
    CHECK(line.contains("logger"));
    const std::string msg = line["msg"];
    if (msg.find("succeeded") != std::string::npos) {
      job_line = true;
      CHECK(line["job"] == 1);
      CHECK(line["epoch"] == 2);
      CHECK(line["round"] == 3);
    }
  }
  CHECK(job_line);
  const auto worker = LogLines(dir.File("w0.log"));
  REQUIRE(!worker.empty());
  bool task_line = false;
  for (const auto& line : worker) {
    CHECK(line["process"] == "worker");
    CHECK(line["worker"] == "w0");
    const std::string msg = line["msg"];
    if (msg.find("the map task of") != std::string::npos) {
      task_line = true;  // the first spill, logged by its map task's thread: job, epoch, round
      CHECK(line.value("job", 0) == 1);
      CHECK(line.value("epoch", 0) == 1);
      CHECK(line.value("round", 0) == 1);
    }
  }
  CHECK(task_line);
}

}  // namespace
}  // namespace mrtrain::testing
