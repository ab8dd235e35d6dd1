// mrtrain predict --master: batch inference on a cluster writes one part per partition and a
// manifest, with the rows local predict writes, and the same bytes when a worker dies mid-job.
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include <catch2/catch.hpp>

#include "test/integration/cluster_harness.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::testing {
namespace {

// Fast detection of the lost worker, as in fault_test.
const std::vector<std::string> kMasterFlags = {
    "--heartbeat-ms", "100", "--heartbeat-timeout-ms", "1000", "--step-timeout-ms", "4000"};

// The text after the first line.
std::string Body(const std::string& csv) { return csv.substr(csv.find('\n') + 1); }

// Every file of an output folder, by name.
std::map<std::string, std::string> Files(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    files[e.path().filename().string()] = TempDir::Read(e.path().string());
  }
  return files;
}

TEST_CASE(
    "predict --master writes local predict's rows as parts and a manifest, the same bytes "
    "after a worker is killed mid-job",
    "[integration]") {
  TempDir dir;
  const std::string spec = WriteJob(dir, "job", "{type: logistic}", "{mode: hash}",
                                    "{epochs: 1, rounds_per_epoch: 3, seed: 7}");
  Output trained = Mrtrain("run " + spec);
  INFO(trained.text);
  REQUIRE(trained.exit_code == 0);
  const std::string common = "predict --model " + dir.File("job/model.mrt") + " --data " +
                             dir.File("train.svm") + " --format libsvm --features 8 --partitions 5";
  Output local = Mrtrain(common + " --out " + dir.File("local.csv"));
  INFO(local.text);
  REQUIRE(local.exit_code == 0);
  const std::string local_csv = TempDir::Read(dir.File("local.csv"));

  Cluster cluster(dir, 2, kMasterFlags);
  cluster.AddWorkers(1, {"--reconnect-sec", "0"});
  // w1 crashes right after writing the first part it scores, before reporting it.
  cluster.AddWorkers(1, {"--failpoints", "predict-after-write=crash(9)@attempt=0,times=1"});
  Output faulty =
      Mrtrain(common + " --master " + cluster.address() + " --out-dir " + dir.File("faulty.d"));
  INFO(faulty.text);
  REQUIRE(faulty.exit_code == 0);
  CHECK(faulty.text.find("predicted 3000 rows into " + dir.File("faulty.d") +
                         " (accuracy against the data's labels: ") != std::string::npos);
  // Its summary is local predict's.
  const std::string summary = local.text.substr(local.text.find(" (accuracy"));
  CHECK(faulty.text.find(summary.substr(0, summary.find('\n'))) != std::string::npos);

  CHECK(cluster.Status()["workers"].size() == 1);  // the failpoint fired: w1 is gone
  // Undisturbed: the survivor and a new worker.
  cluster.AddWorkers(1);
  Output clean =
      Mrtrain(common + " --master " + cluster.address() + " --out-dir " + dir.File("clean.d"));
  INFO(clean.text);
  REQUIRE(clean.exit_code == 0);

  const auto clean_files = Files(dir.File("clean.d"));
  const auto faulty_files = Files(dir.File("faulty.d"));
  REQUIRE(clean_files.size() == 6);  // 5 parts and the manifest, no temporary files left
  CHECK(faulty_files == clean_files);
  std::string joined;
  for (int p = 0; p < 5; ++p) {
    const std::string name = "part-0000" + std::to_string(p) + ".csv";
    REQUIRE(clean_files.count(name));
    joined += Body(clean_files.at(name));
  }
  CHECK(joined == Body(local_csv));
  const auto manifest = nlohmann::json::parse(clean_files.at("manifest.json"));
  CHECK(manifest["rows"] == 3000);
  CHECK(manifest["partitions"] == 5);
  CHECK(manifest["model"]["bytes"] == TempDir::Read(dir.File("job/model.mrt")).size());
}

TEST_CASE("predict --master with a model the workers cannot read fails naming it",
          "[integration]") {
  TempDir dir;
  WriteJob(dir, "job", "{type: logistic}", "{mode: hash}");
  Cluster cluster(dir, 1, kMasterFlags);
  cluster.AddWorkers(1);
  Output out =
      Mrtrain("predict --master " + cluster.address() + " --model " + dir.File("missing.mrt") +
              " --data " + dir.File("train.svm") +
              " --format libsvm --features 8 --partitions 2 --out-dir " + dir.File("out.d"));
  INFO(out.text);
  CHECK(out.exit_code == 1);
  CHECK(out.text.find("job failed: ") != std::string::npos);
  CHECK(out.text.find(dir.File("missing.mrt")) != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.File("out.d/manifest.json")));
}

TEST_CASE("predict --master needs --out-dir", "[integration]") {
  Output out = Mrtrain("predict --master 127.0.0.1:1 --model m.mrt --data d.svm --out x.csv");
  CHECK(out.exit_code == 2);
  CHECK(out.text.find("--master writes one part per partition: give --out-dir DIR instead of "
                      "--out") != std::string::npos);
}

}  // namespace
}  // namespace mrtrain::testing
