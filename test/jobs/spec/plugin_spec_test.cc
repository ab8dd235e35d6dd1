#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/base/status.h"
#include "jobs/spec/job_spec.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::jobs {
namespace {

const char kHead[] =
    "data:\n"
    "  train: {path: d.csv, format: csv, partitions: 4}\n"
    "output: {dir: out}\n";

JobSpec Parse(const std::string& yaml) {
  Result<JobSpec> r = ParseJobSpec(yaml, "job.yaml");
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return std::move(r).value();
}

std::string ErrorOf(const std::string& yaml) {
  Result<JobSpec> r = ParseJobSpec(yaml, "job.yaml");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  return r.status().message();
}

TEST_CASE("a plugin model and update rule are read with their params", "[jobs]") {
  JobSpec spec = Parse(std::string(kHead) +
                       "plugins: [lib/a.so, lib/b.so]\n"
                       "model: {plugin: huber, params: {delta: 0.5, widths: [3, 4]}, "
                       "block_size: 8}\n"
                       "update: {plugin: clipped_sgd, params: {clip: 2}, learning_rate: 0.1}\n");
  CHECK(spec.plugins == std::vector<std::string>{"lib/a.so", "lib/b.so"});
  CHECK(spec.model_plugin == "huber");
  CHECK(spec.model_type == "plugin:huber");
  CHECK(spec.model_params.GetString("delta", "") == "0.5");
  CHECK(spec.model_params.GetString("widths", "") == "3,4");
  CHECK(spec.block_size == 8);
  CHECK(spec.update_plugin == "clipped_sgd");
  CHECK(spec.update_rule == "plugin:clipped_sgd");
  CHECK(spec.update_params.values() == std::map<std::string, std::string>{{"clip", "2"}});
  CHECK(spec.learning_rate == 0.1);
}

TEST_CASE("plugin keys are validated with their lines", "[jobs]") {
  CHECK(ErrorOf(std::string(kHead) + "model: {plugin: huber}\n") ==
        "job.yaml:4: model.plugin: needs the library that exports it under plugins:");
  CHECK(ErrorOf(std::string(kHead) + "plugins: [a.so]\n"
                                     "model:\n"
                                     "  type: linear\n"
                                     "  plugin: huber\n"
                                     "  hidden: [3]\n") ==
        "job.yaml:6: model.type: give model.type or model.plugin, not both\n"
        "job.yaml:8: model.hidden: only for built-in model types; with model.plugin put "
        "settings under model.params");
  CHECK(ErrorOf(std::string(kHead) + "model: {type: linear, params: {a: 1}}\n") ==
        "job.yaml:4: model.params: only with model.plugin");
  CHECK(ErrorOf(std::string(kHead) + "plugins: [a.so]\n"
                                     "model: {type: linear}\n"
                                     "update: {plugin: clip, rule: adam, beta1: 0.5}\n") ==
        "job.yaml:6: update.rule: give update.rule or update.plugin, not both\n"
        "job.yaml:6: update.beta1: only for built-in rules; with update.plugin put settings "
        "under update.params");
  CHECK(ErrorOf(std::string(kHead) + "plugins: []\nmodel: {type: linear}\n") ==
        "job.yaml:4: plugins: expected a non-empty list of strings, got an empty list");
  CHECK(
      ErrorOf(std::string(kHead) + "plugins: [a.so]\nmodel: {plugin: h, params: {a: {b: 1}}}\n") ==
      "job.yaml:5: model.params.a: expected a scalar or a list of scalars, got a map");
}

TEST_CASE("combiner: names a plugin combiner and its params", "[jobs]") {
  const JobSpec spec = Parse(
      std::string(kHead) +
      "plugins: [a.so]\nmodel: {type: linear}\ncombiner: {plugin: clip, params: {max_norm: 2}}\n");
  CHECK(spec.combiner_plugin == "clip");
  CHECK(spec.combiner_params.GetDouble("max_norm", 0) == 2);
  CHECK(ErrorOf(std::string(kHead) + "model: {type: linear}\ncombiner: {plugin: clip}\n") ==
        "job.yaml:5: combiner.plugin: needs the library that exports it under plugins:");
  CHECK(ErrorOf(std::string(kHead) +
                "plugins: [a.so]\nmodel: {type: linear}\ncombiner: {params: {}}\n") ==
        "job.yaml: combiner.plugin: required key is missing; expected a combiner from plugins:");
  const JobSpec plain = Parse(std::string(kHead) + "plugins: [a.so]\nmodel: {type: linear}\n");
  CHECK(plain.Fingerprint() != spec.Fingerprint());
}

TEST_CASE("the fingerprint covers plugin names, params and library bytes", "[jobs]") {
  testing::TempDir dir;
  const std::string lib = dir.Write("libp.so", "first build");
  auto spec = [&](const std::string& delta) {
    return Parse(std::string(kHead) + "plugins: [" + lib +
                 "]\nmodel: {plugin: huber, params: " + "{delta: " + delta + "}}\n");
  };
  const std::string base = spec("1").Fingerprint();
  CHECK(spec("1").Fingerprint() == base);
  CHECK(spec("2").Fingerprint() != base);
  // The same bytes elsewhere are the same job (workers load shipped copies from their cache).
  const std::string copy = dir.Write("copy/libp.so", "first build");
  CHECK(Parse(std::string(kHead) + "plugins: [" + copy +
              "]\nmodel: {plugin: huber, params: {delta: 1}}\n")
            .Fingerprint() == base);
  dir.Write("libp.so", "second build");
  CHECK(spec("1").Fingerprint() != base);
}

}  // namespace
}  // namespace mrtrain::jobs
