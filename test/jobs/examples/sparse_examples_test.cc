// The sparse example specs run on small generated sets of the same shape: FTRL learns hashed
// features, and a factorization machine beats logistic regression where labels depend on pairs.
#include <cmath>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "jobs/spec/job_spec.h"
#include "runtime/job/job_setup.h"
#include "runtime/local/local_job.h"
#include "test/testing/temp_dir.h"
#include "tools/data/sparse_synthetic.h"

namespace mrtrain {
namespace {

struct LastEpoch : runtime::TrainingObserver {
  double test_accuracy = 0;
  double test_loss = 0;
  void OnEpoch(const runtime::EpochReport& report) override {
    test_accuracy = report.test_accuracy.value_or(-1);
    test_loss = report.test_loss.value_or(-1);
  }
};

// Runs an example spec with `overrides` in local mode and returns its last epoch.
LastEpoch Run(const std::string& example, const std::vector<std::string>& overrides) {
  auto spec = jobs::LoadJobSpec(example, overrides);
  INFO(spec.status().ToString());
  REQUIRE(spec.ok());
  REQUIRE(runtime::ValidateJob(*spec).ok());
  LastEpoch last;
  auto result = runtime::RunLocalJob(*spec, runtime::LocalRunOptions{}, &last);
  INFO(result.status().ToString());
  REQUIRE(result.ok());
  return last;
}

// The accuracy of the truth itself on a test file: predicting 1 where its score is positive.
// No model can expect to beat it.
double TruthAccuracy(const std::string& path, const tools::HashedBinarySpec& spec) {
  const std::string text = testing::TempDir::Read(path);
  int64_t rows = 0, right = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = text.find('\n', pos);
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    double score = 0;
    std::vector<double> sums(spec.factors, 0.0), squares(spec.factors, 0.0);
    for (size_t p = line.find(' '); p != std::string::npos; p = line.find(' ', p + 1)) {
      const uint64_t id = std::stoull(line.substr(p + 1)) - 1;
      score += tools::HashedTrueWeight(spec, id);
      for (int f = 0; f < spec.factors; ++f) {
        const double u = tools::HashedTrueFactor(spec, id, f);
        sums[f] += u;
        squares[f] += u * u;
      }
    }
    for (int f = 0; f < spec.factors; ++f) score += 0.5 * (sums[f] * sums[f] - squares[f]);
    right += (score > 0) == (line[0] == '1');
    ++rows;
  }
  return static_cast<double>(right) / static_cast<double>(rows);
}

TEST_CASE("logistic regression with ftrl learns hashed binary features", "[jobs]") {
  testing::TempDir dir;
  tools::HashedBinarySpec data;
  data.rows = 30000;
  data.bits = 12;
  data.seed = 11;
  REQUIRE(tools::WriteHashedBinaryLibsvm(dir.File("train.svm"), data).ok());
  tools::HashedBinarySpec test = data;
  test.rows = 5000;
  test.stream = 1;
  REQUIRE(tools::WriteHashedBinaryLibsvm(dir.File("test.svm"), test).ok());
  const double truth = TruthAccuracy(dir.File("test.svm"), test);

  const LastEpoch last =
      Run("jobs/examples/hashed_ftrl.yaml",
          {"data.train.path=" + dir.File("train.svm"), "data.test.path=" + dir.File("test.svm"),
           "data.train.features=4096", "data.test.features=4096", "data.train.partitions=4",
           "training.epochs=3", "training.rounds_per_epoch=30", "training.threads=2",
           "output.dir=" + dir.File("out")});
  INFO("ftrl test accuracy " << last.test_accuracy << ", the truth's " << truth);
  CHECK(truth > 0.7);
  CHECK(last.test_accuracy > truth - 0.06);
}

TEST_CASE("a factorization machine beats logistic regression on pairwise labels", "[jobs]") {
  testing::TempDir dir;
  tools::HashedBinarySpec data;
  data.rows = 40000;
  data.bits = 8;
  data.active = 20;
  data.weight_scale = 0.3;
  data.factors = 4;
  data.factor_scale = 0.4;
  data.seed = 12;
  REQUIRE(tools::WriteHashedBinaryLibsvm(dir.File("train.svm"), data).ok());
  tools::HashedBinarySpec test = data;
  test.rows = 5000;
  test.stream = 1;
  REQUIRE(tools::WriteHashedBinaryLibsvm(dir.File("test.svm"), test).ok());
  const double truth = TruthAccuracy(dir.File("test.svm"), test);

  const std::vector<std::string> common = {"data.train.path=" + dir.File("train.svm"),
                                           "data.test.path=" + dir.File("test.svm"),
                                           "data.train.features=256",
                                           "data.test.features=256",
                                           "data.train.partitions=4",
                                           "training.epochs=5",
                                           "training.rounds_per_epoch=40",
                                           "training.threads=2"};
  std::vector<std::string> fm_overrides = common;
  fm_overrides.push_back("output.dir=" + dir.File("fm"));
  const LastEpoch fm = Run("jobs/examples/hashed_fm.yaml", fm_overrides);
  std::vector<std::string> lr_overrides = common;
  lr_overrides.push_back("output.dir=" + dir.File("lr"));
  lr_overrides.push_back("model={type: logistic}");
  const LastEpoch lr = Run("jobs/examples/hashed_fm.yaml", lr_overrides);
  INFO("fm " << fm.test_accuracy << " (loss " << fm.test_loss << "), logistic " << lr.test_accuracy
             << " (loss " << lr.test_loss << "), the truth " << truth);
  CHECK(fm.test_accuracy > lr.test_accuracy + 0.05);
  CHECK(fm.test_loss < lr.test_loss);
  CHECK(fm.test_accuracy > truth - 0.08);
}

TEST_CASE("the criteo fm example learns clicks from a generated click log", "[jobs]") {
  testing::TempDir dir;
  tools::CriteoSyntheticSpec data;
  data.rows = 20000;
  data.hash_bits = 16;
  data.seed = 7;
  REQUIRE(tools::WriteCriteoSynthetic(dir.File("train.tsv"), data).ok());
  tools::CriteoSyntheticSpec test = data;
  test.rows = 5000;
  test.stream = 1;
  REQUIRE(tools::WriteCriteoSynthetic(dir.File("test.tsv"), test).ok());
  // The log loss of always predicting the test set's click rate: what learning must beat.
  const std::string text = testing::TempDir::Read(dir.File("test.tsv"));
  double clicks = 0, rows = 0;
  for (size_t pos = 0; pos < text.size(); pos = text.find('\n', pos) + 1) {
    clicks += text[pos] == '1';
    ++rows;
  }
  const double rate = clicks / rows;
  const double baseline = -(rate * std::log(rate) + (1 - rate) * std::log(1 - rate));

  const LastEpoch last =
      Run("jobs/examples/criteo_fm.yaml",
          {"data.train.path=" + dir.File("train.tsv"), "data.test.path=" + dir.File("test.tsv"),
           "data.train.hash_bits=16", "data.test.hash_bits=16", "data.train.partitions=4",
           "training.epochs=1", "training.rounds_per_epoch=20", "training.threads=2",
           "output.dir=" + dir.File("out")});
  INFO("criteo fm test loss " << last.test_loss << ", the click rate's " << baseline);
  CHECK(last.test_loss < baseline - 0.03);
}

TEST_CASE("an fm trained by ftrl is the same bytes whatever the threads, reducers and shuffle",
          "[jobs]") {
  testing::TempDir dir;
  tools::HashedBinarySpec data;
  data.rows = 4000;
  data.bits = 8;
  data.active = 20;
  data.factors = 4;
  data.seed = 13;
  REQUIRE(tools::WriteHashedBinaryLibsvm(dir.File("train.svm"), data).ok());
  const std::vector<std::string> common = {"data.train.path=" + dir.File("train.svm"),
                                           "data.test.path=" + dir.File("train.svm"),
                                           "data.test.features=256",
                                           "data.train.features=256",
                                           "data.train.partitions=4",
                                           "training.epochs=2",
                                           "training.rounds_per_epoch=5",
                                           "model.block_size=100"};
  auto model_bytes = [&](const std::string& out, std::vector<std::string> extra) {
    extra.insert(extra.end(), common.begin(), common.end());
    extra.push_back("output.dir=" + dir.File(out));
    Run("jobs/examples/hashed_fm.yaml", extra);
    return testing::TempDir::Read(dir.File(out + "/model.npz"));
  };
  const std::string base = model_bytes("a", {"training.threads=1"});
  REQUIRE(!base.empty());
  CHECK(model_bytes("b", {"training.threads=2", "shuffle.reducers=3", "shuffle.mode=sort"}) ==
        base);
  // The negative control: another seed changes the bytes.
  CHECK(model_bytes("c", {"training.threads=2", "training.seed=2"}) != base);
}

}  // namespace
}  // namespace mrtrain
