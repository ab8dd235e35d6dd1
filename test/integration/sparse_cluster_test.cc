// Row-sparse models on a real cluster: a logistic regression over 2^30 hashed features (a whole
// weight vector would be 4 GiB, so nothing may allocate one) and an fm over 2^25, each trained in
// local mode and on 1 and 2 workers with 1 and 3 reducers and hash and sort shuffle, ending with
// the same model bytes.
#include <signal.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/api/random.h"
#include "test/integration/cluster_harness.h"
#include "test/testing/temp_dir.h"

namespace mrtrain {
namespace {

using testing::Cluster;
using testing::ModelBytes;
using testing::Mrtrain;
using testing::Output;
using testing::TempDir;

// 1200 rows of 12 to 30 binary features with ids below 2^40 (hashed by the job), the label a
// fixed function of a few of them.
void WriteSparseData(TempDir& dir) {
  api::RandomStream random(11, 5);
  std::string text;
  for (int r = 0; r < 1200; ++r) {
    const int nnz = 12 + static_cast<int>(random.Below(19));
    std::set<uint64_t> ids;  // libsvm wants them ascending
    for (int i = 0; i < nnz; ++i) {
      // Half the features from a small vocabulary (so rows share them), half anywhere.
      ids.insert(i % 2 == 0 ? 1 + random.Below(500) : 1 + random.Below(uint64_t{1} << 40));
    }
    std::string features;
    int score = 0;
    for (uint64_t id : ids) {
      if (id <= 500) score += id % 3 == 0 ? 1 : -1;
      features += " " + std::to_string(id) + ":1";
    }
    text += (score > 0 ? "1" : "0") + features + "\n";
  }
  dir.Write("sparse.svm", text);
}

std::string WriteSparseJob(
    TempDir& dir, const std::string& name, const std::string& model, int hash_bits,
    const std::string& shuffle,
    const std::string& training = "{epochs: 2, rounds_per_epoch: 3, seed: 7}") {
  const std::string data =
      "{path: " + dir.File("sparse.svm") +
      ", format: libsvm, partitions: 4, hash_bits: " + std::to_string(hash_bits) +
      ", max_decoded_mb: 16384}";
  return dir.Write(name + ".yaml", "data:\n  train: " + data + "\n  test: " + data +
                                       "\nmodel: " + model +
                                       "\nupdate: {rule: adagrad, learning_rate: 0.1, l2: 0.001}"
                                       "\ntraining: {epochs: 2, rounds_per_epoch: 3, seed: 7}"
                                       "\nshuffle: " +
                                       shuffle + "\noutput: {dir: " + dir.File(name) + "}\n");
}

// The largest "peak RSS" in MiB the master logged.
int PeakMib(const std::string& log) {
  const std::regex peak("(\\d+) MiB");
  int most = 0;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), peak); it != std::sregex_iterator();
       ++it) {
    most = std::max(most, std::stoi((*it)[1]));
  }
  return most;
}

TEST_CASE(
    "row-sparse models end byte-identical in local mode and on 1 and 2 workers, 1 and 3 "
    "reducers, hash and sort shuffle, never holding a whole table",
    "[integration]") {
  TempDir dir;
  WriteSparseData(dir);
  struct Model {
    const char* name;
    const char* spec;
    int hash_bits;
  };
  const Model models[] = {{"lr", "{type: logistic, init: zeros}", 30},
                          {"fm", "{type: fm, factors: 3}", 25}};
  std::vector<std::string> references;
  for (const Model& m : models) {
    const std::string local = std::string(m.name) + "-local";
    Output ran = Mrtrain("run " + WriteSparseJob(dir, local, m.spec, m.hash_bits, "{reducers: 1}"));
    INFO(ran.text);
    REQUIRE(ran.exit_code == 0);
    CHECK(ran.text.find("epoch 2/2 train_loss=") != std::string::npos);
    CHECK(PeakMib(ran.text) < 1024);
    references.push_back(ModelBytes(dir, local));
    REQUIRE(references.back().size() > 1000);
    // model.npz holds the touched rows as ids and values.
    const std::string npz = TempDir::Read(dir.File(local + "/model.npz"));
    CHECK(npz.find("w.ids.npy") != std::string::npos);
    CHECK(npz.find("w.values.npy") != std::string::npos);
    // mrtrain predict reads the stored rows (features never updated score as zeros).
    Output predicted = Mrtrain(
        "predict --model " + dir.File(local + "/model.mrt") + " --data " + dir.File("sparse.svm") +
        " --format libsvm --hash-bits " + std::to_string(m.hash_bits) +
        " --max-decoded-mb 16384 --partitions 2 --out " + dir.File(local + ".csv"));
    INFO(predicted.text);
    REQUIRE(predicted.exit_code == 0);
    CHECK(predicted.text.find("predicted 1200 rows") != std::string::npos);
  }

  Cluster cluster(dir);
  struct Variant {
    int workers;
    const char* shuffle;
  };
  const Variant variants[] = {{1, "{mode: sort, reducers: 3}"},
                              {2, "{mode: hash, reducers: 3}"},
                              {2, "{mode: sort, reducers: 1}"}};
  int workers = 0;
  int variant = 0;
  for (const Variant& v : variants) {
    ++variant;
    if (v.workers > workers) {
      cluster.AddWorkers(v.workers - workers);
      workers = v.workers;
    }
    for (size_t m = 0; m < std::size(models); ++m) {
      const std::string name = std::string(models[m].name) + "-" + std::to_string(variant);
      Output out =
          cluster.Submit(WriteSparseJob(dir, name, models[m].spec, models[m].hash_bits, v.shuffle));
      INFO(v.workers << " workers, shuffle " << v.shuffle << "\n" << out.text);
      REQUIRE(out.exit_code == 0);
      CHECK(ModelBytes(dir, name) == references[m]);
    }
  }
  CHECK(PeakMib(TempDir::Read(dir.File("master.log"))) < 1024);
}

TEST_CASE("a shard host killed mid-job: its rows come back from the checkpoint, same model",
          "[integration]") {
  TempDir dir;
  WriteSparseData(dir);
  const std::string model = "{type: fm, factors: 3}";
  const std::string shuffle = "{mode: hash, reducers: 2}";
  const std::string training = "{epochs: 4, rounds_per_epoch: 40, seed: 7}";
  Output ran = Mrtrain("run " + WriteSparseJob(dir, "reference", model, 25, shuffle, training));
  INFO(ran.text);
  REQUIRE(ran.exit_code == 0);
  const std::string reference = ModelBytes(dir, "reference");

  // Fast failure detection, as in fault_test.
  Cluster cluster(dir, 3,
                  {"--heartbeat-ms", "100", "--heartbeat-timeout-ms", "1000", "--step-timeout-ms",
                   "4000", "--speculation-min-ms", "300"});
  // w0 and w1 host reducer shards 0 and 1.
  const std::vector<pid_t> pids = cluster.AddWorkers(3, {"--reconnect-sec", "30"});
  const std::string spec = WriteSparseJob(dir, "killed", model, 25, shuffle, training);
  const pid_t submit = cluster.SubmitAsync(spec, dir.File("killed.log"));
  // Killed once the first epoch's checkpoint is committed (its manifest is the commit).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!std::filesystem::exists(dir.File("killed/checkpoints/ckpt-000001.manifest"))) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const bool running = !cluster.group().Poll(submit).has_value();
  ::kill(pids[0], SIGKILL);
  cluster.AddWorkers(1, {"--reconnect-sec", "30"});
  auto code = cluster.group().Wait(submit, std::chrono::seconds(120));
  INFO(TempDir::Read(dir.File("killed.log")));
  REQUIRE(code.ok());
  REQUIRE(*code == 0);
  CHECK(running);
  CHECK(ModelBytes(dir, "killed") == reference);
  CHECK(TempDir::Read(dir.File("master.log")).find("carrying on from epoch") != std::string::npos);
}

}  // namespace
}  // namespace mrtrain
