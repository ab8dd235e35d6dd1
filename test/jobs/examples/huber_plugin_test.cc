// The plugin example spec runs: it loads the example plugin library and learns synthetic data
// with known weights.
#include <catch2/catch.hpp>

#include "jobs/spec/job_spec.h"
#include "runtime/job/job_setup.h"
#include "runtime/local/local_job.h"
#include "test/testing/temp_dir.h"
#include "tools/data/synthetic.h"

namespace mrtrain {
namespace {

TEST_CASE("the huber plugin example learns synthetic regression data", "[jobs]") {
  testing::TempDir dir;
  tools::SyntheticSpec s;
  s.rows = 3000;
  s.features = 6;
  s.seed = 4;
  const std::string train = dir.File("train.csv");
  REQUIRE(tools::WriteSyntheticCsv(train, s).ok());
  // The spec names the library where `bazel build` leaves it; in the test's runfiles it is here.
  auto spec = jobs::LoadJobSpec(
      "jobs/examples/huber_plugin.yaml",
      {"plugins=[jobs/plugins/libmrtrain_example_plugins.so]", "data.train.path=" + train,
       "output.dir=" + dir.File("out"), "training.threads=2"});
  INFO(spec.status().ToString());
  REQUIRE(spec.ok());
  REQUIRE(runtime::ValidateJob(*spec).ok());

  struct Losses : runtime::TrainingObserver {
    std::vector<double> train;
    void OnEpoch(const runtime::EpochReport& report) override {
      train.push_back(report.train_loss);
    }
  } losses;
  auto result = runtime::RunLocalJob(*spec, runtime::LocalRunOptions{}, &losses);
  INFO(result.status().ToString());
  REQUIRE(result.ok());
  REQUIRE(losses.train.size() == 8);
  CHECK(losses.train.back() < losses.train.front() / 10);
  CHECK(losses.train.back() < 1e-3);
}

TEST_CASE("the block_clip combiner plugin bounds what each partition sends", "[jobs]") {
  testing::TempDir dir;
  tools::SyntheticSpec s;
  s.rows = 3000;
  s.features = 6;
  s.seed = 4;
  const std::string train = dir.File("train.csv");
  REQUIRE(tools::WriteSyntheticCsv(train, s).ok());
  auto run = [&](const std::string& out, const std::vector<std::string>& extra) {
    std::vector<std::string> overrides = {
        "plugins=[jobs/plugins/libmrtrain_example_plugins.so]", "data.train.path=" + train,
        "output.dir=" + dir.File(out), "training.threads=2", "training.epochs=3"};
    overrides.insert(overrides.end(), extra.begin(), extra.end());
    auto spec = jobs::LoadJobSpec("jobs/examples/huber_plugin.yaml", overrides);
    INFO(spec.status().ToString());
    REQUIRE(spec.ok());
    REQUIRE(runtime::ValidateJob(*spec).ok());
    struct LastLoss : runtime::TrainingObserver {
      double loss = 0;
      void OnEpoch(const runtime::EpochReport& r) override { loss = r.train_loss; }
    } last;
    auto result = runtime::RunLocalJob(*spec, runtime::LocalRunOptions{}, &last);
    INFO(result.status().ToString());
    REQUIRE(result.ok());
    return std::make_pair(testing::TempDir::Read(dir.File(out + "/model.npz")), last.loss);
  };
  const auto plain = run("plain", {});
  // A bound no block reaches changes nothing: the same tensors, bit for bit.
  const auto loose = run("loose", {"combiner.plugin=block_clip", "combiner.params.max_norm=1e30"});
  CHECK(loose.first == plain.first);
  // A tight bound slows the descent (every step is shorter) but still descends.
  const auto tight = run("tight", {"combiner.plugin=block_clip", "combiner.params.max_norm=0.01"});
  CHECK(tight.first != plain.first);
  CHECK(tight.second > plain.second);
  // A typo in its params fails validation naming the combiner.
  auto bad = jobs::LoadJobSpec("jobs/examples/huber_plugin.yaml",
                               {"plugins=[jobs/plugins/libmrtrain_example_plugins.so]",
                                "data.train.path=" + train, "output.dir=" + dir.File("bad"),
                                "combiner.plugin=block_clip", "combiner.params.max_nrom=1"});
  REQUIRE(bad.ok());
  const Status invalid = runtime::ValidateJob(*bad);
  // Located at the override that set it, beside any other error of the spec.
  CHECK(invalid.message().find("--set combiner.params.max_nrom: combiner.params.max_nrom: "
                               "combiner \"block_clip\" (mrtrain_example::BlockClipCombiner in ") !=
        std::string::npos);
  CHECK(invalid.message().find("constructor failed: max_nrom is not a parameter of combiner "
                               "block_clip") != std::string::npos);
}

}  // namespace
}  // namespace mrtrain
