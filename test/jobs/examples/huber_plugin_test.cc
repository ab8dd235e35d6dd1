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

}  // namespace
}  // namespace mrtrain
