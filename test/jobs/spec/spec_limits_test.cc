// What the spec refuses before the engine would allocate or choke on it, and the label rules it
// hands the readers (issue 10, items 13, 14, 15, 16).

#include <string>

#include <catch2/catch.hpp>

#include "engine/base/status.h"
#include "engine/data/dataset.h"
#include "jobs/spec/job_spec.h"

namespace mrtrain::jobs {
namespace {

std::string Spec(const std::string& model, const std::string& train_extra = "") {
  return "name: j\n"
         "data:\n"
         "  train: {path: d.csv, format: csv, partitions: 4" +
         train_extra +
         "}\n"
         "  test: {path: t.csv, format: csv}\n"
         "model: " +
         model +
         "\n"
         "output: {dir: out}\n";
}

std::string ErrorOf(const std::string& yaml) {
  Result<JobSpec> r = ParseJobSpec(yaml, "job.yaml");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  return r.status().message();
}

JobSpec Parse(const std::string& yaml) {
  Result<JobSpec> r = ParseJobSpec(yaml, "job.yaml");
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return std::move(r).value();
}

TEST_CASE("spec strings that are not UTF-8 are refused naming the key and line", "[jobs]") {
  // Raw bytes: a YAML escape such as "\xff" is a code point and comes out as UTF-8.
  CHECK(ErrorOf("name: \xff\xfe\n" + Spec("{type: linear}").substr(8)) ==
        "job.yaml:1: name: the value is not valid UTF-8 (byte 0xFF at offset 0); spec text "
        "must be UTF-8");
  CHECK(ErrorOf("name: caf\xe9\n" + Spec("{type: linear}").substr(8)) ==
        "job.yaml:1: name: the value is not valid UTF-8 (byte 0xE9 at offset 3); spec text "
        "must be UTF-8");
  CHECK(Parse("name: \"\\xff\"\n" + Spec("{type: linear}").substr(8)).name == "\xc3\xbf");
  // Raw bytes in the file, deeper down, and in a key.
  const std::string raw =
      "data:\n  train: {path: \"d\xc3\x28.csv\", format: csv, partitions: 1}\n"
      "model: {type: linear}\noutput: {dir: out}\n\xed\xa0\x80: 1\n";
  const std::string message = ErrorOf(raw);
  CHECK(message.find("job.yaml:2: data.train.path: the value is not valid UTF-8 (byte 0xC3 at "
                     "offset 1)") == 0);
  CHECK(message.find("job.yaml:5: a key is not valid UTF-8 (byte 0xED at offset 0)") !=
        std::string::npos);
  // From an override, and inside a plugin's settings.
  Result<JobSpec> set = ParseJobSpec(Spec("{type: linear}"), "job.yaml", {"name=ab\xff"});
  REQUIRE_FALSE(set.ok());
  CHECK(set.status().message() ==
        "--set name: name: the value is not valid UTF-8 (byte 0xFF at offset 2); spec text must "
        "be UTF-8");
  CHECK(ErrorOf("plugins: [p.so]\n" + Spec("{plugin: m, params: {k: [1, \"\x80\"]}}")) ==
        "job.yaml:6: model.params.k: the value is not valid UTF-8 (byte 0x80 at offset 0); spec "
        "text must be UTF-8");
  // Valid multi-byte text passes.
  CHECK(Parse("name: \"caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80\"\n" +
              Spec("{type: linear}").substr(8))
            .name == "caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80");
}

TEST_CASE("YAML nested too deeply says so, with a line", "[jobs]") {
  std::string deep = "name: j\nmodel: ";
  for (int i = 0; i < 10000; ++i) deep += "[";
  const std::string message = ErrorOf(deep);
  CHECK(message.find("job.yaml:2: YAML nested too deeply (more than ") == 0);
  CHECK(message.find("a job spec needs only a few") != std::string::npos);
}

TEST_CASE("partitions past the maximum are refused under their spec key with a line", "[jobs]") {
  const std::string yaml =
      "data:\n  train: {path: d.csv, format: csv, partitions: 1048577}\n"
      "model: {type: linear}\noutput: {dir: out}\n";
  CHECK(ErrorOf(yaml) ==
        "job.yaml:2: data.train.partitions: expected an integer in [1, 1048576], got '1048577'");
  CHECK(ErrorOf(std::string(yaml).replace(yaml.find("1048577"), 7, "1000000000")) ==
        "job.yaml:2: data.train.partitions: expected an integer in [1, 1048576], got "
        "'1000000000'");
  CHECK(Parse(std::string(yaml).replace(yaml.find("1048577"), 7, "1048576")).train.num_partitions ==
        1048576);
}

TEST_CASE("a model certain to pass the parameter limit is refused at its key", "[jobs]") {
  CHECK(ErrorOf(Spec("{type: mlp, hidden: [1000000000]}")) ==
        "job.yaml:5: model.hidden: the model would have at least 4000000002 parameters, over "
        "the limit of 268435456 (1 GiB of float32)");
  CHECK(ErrorOf(Spec("{type: mlp, hidden: [16384, 16384]}"))
            .find("model.hidden: the model would have at least 268517378 parameters") !=
        std::string::npos);
  // A linear model on wide sparse input keeps w row-sparse: no whole tensor to count.
  const std::string svm =
      "data:\n  train: {path: d.svm, format: libsvm, partitions: 1, "
      "max_decoded_mb: 4096, features: 1000000000}\nmodel: {type: linear}\n"
      "output: {dir: out}\n";
  CHECK(Parse(svm).model_type == "linear");
  // Parameters within the limit, but a chunk's activations not: 2 * 2^24 * 256 floats.
  CHECK(ErrorOf(Spec("{type: mlp, hidden: [16777216]}")) ==
        "job.yaml:5: model.hidden: one chunk of training.chunk_rows 256 rows needs at least "
        "8589935104 floats of activations, over the limit of 268435456 (1 GiB of float32)");
  // Within the limit: parses.
  CHECK(Parse(Spec("{type: mlp, hidden: [4096, 4096], classes: 10}")).model_type == "mlp");
  CHECK(ErrorOf(Spec("{type: softmax, classes: 65537}")) ==
        "job.yaml:5: model.classes: expected an integer in [2, 65536], got '65537'");
}

TEST_CASE("the model decides what the readers check of every data set's labels", "[jobs]") {
  const JobSpec given = Parse(Spec("{type: softmax, classes: 10}"));
  for (const data::DatasetSpec* ds : {&given.train, &*given.test}) {
    CHECK(ds->label_kind == data::LabelKind::kClass);
    CHECK(ds->num_classes == 10);
    CHECK(ds->label_rule == "model.classes is 10");
  }
  const JobSpec inferred = Parse(Spec("{type: mlp, hidden: [8]}"));
  CHECK(inferred.train.label_kind == data::LabelKind::kClass);
  CHECK(inferred.train.num_classes == 65536);
  CHECK(inferred.train.label_rule == "model.classes is not set: at most 65536 classes");
  CHECK(Parse(Spec("{type: logistic}")).test->label_kind == data::LabelKind::kBinary);
  CHECK(Parse(Spec("{type: linear}")).train.label_kind == data::LabelKind::kAny);
  const JobSpec fm = Parse(Spec("{type: fm}"));
  CHECK(fm.test->label_kind == data::LabelKind::kBinary);
  CHECK(fm.train.label_rule == "model.type is fm");
}

TEST_CASE("an fm on wide hashed input is row-sparse: its width is not held against the limit",
          "[jobs]") {
  auto wide = [](int bits, const std::string& model) {
    return "data:\n  train: {path: d.svm, format: libsvm, partitions: 1, hash_bits: " +
           std::to_string(bits) + "}\noutput: {dir: out}\nmodel: " + model + "\n";
  };
  // 2^24 * (1 + 16) + 1 and 2^25 * 9 + 1 parameters if they were whole.
  CHECK(Parse(wide(24, "{type: fm, factors: 16}")).model_params.GetInt("factors", 0) == 16);
  CHECK(Parse(wide(25, "{type: fm}")).model_params.GetInt("factors", 0) == 8);
  CHECK(Parse(wide(24, "{type: logistic}")).model_type == "logistic");
}

TEST_CASE("max_decoded_mb and max_skipped_fraction are read per data set, with ranges", "[jobs]") {
  const JobSpec s =
      Parse(Spec("{type: linear}", ", max_decoded_mb: 64, max_skipped_fraction: 0.25"));
  CHECK(s.train.max_decoded_mb == 64);
  CHECK(s.train.max_skipped_fraction == 0.25);
  CHECK(s.test->max_decoded_mb == data::kDefaultMaxDecodedMb);
  CHECK(s.test->max_skipped_fraction == 0.01);
  CHECK(ErrorOf(Spec("{type: linear}", ", max_decoded_mb: 0, max_skipped_fraction: 2")) ==
        "job.yaml:3: data.train.max_decoded_mb: expected an integer in [1, 1048576], got '0'\n"
        "job.yaml:3: data.train.max_skipped_fraction: expected a number in [0, 1], got '2'");
  // features is bounded by the set's budget: a quarter of it in floats.
  const std::string svm =
      "data:\n  train: {path: d.svm, format: libsvm, partitions: 1, "
      "max_decoded_mb: 1, features: 262145}\nmodel: {type: linear}\n"
      "output: {dir: out}\n";
  CHECK(ErrorOf(svm) ==
        "job.yaml:2: data.train.features: expected an integer in [0, 262144], got '262145'");
}

TEST_CASE("data.*.cache is memory or disk, memory by default, per data set", "[jobs]") {
  const JobSpec s = Parse(Spec("{type: linear}", ", cache: disk"));
  CHECK(s.train.cache == data::CacheMode::kDisk);
  CHECK(s.test->cache == data::CacheMode::kMemory);
  CHECK(Parse(Spec("{type: linear}", ", cache: memory")).train.cache == data::CacheMode::kMemory);
  CHECK(ErrorOf(Spec("{type: linear}", ", cache: ssd")) ==
        "job.yaml:3: data.train.cache: expected one of memory, disk, got 'ssd'");
}

}  // namespace
}  // namespace mrtrain::jobs
