#include "jobs/spec/job_spec.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/base/status.h"
#include "engine/data/dataset.h"
#include "engine/tensor/model_state.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::jobs {
namespace {

// The smallest valid spec: every other key takes its default.
const char kMinimal[] = R"(data:
  train: {path: d.csv, format: csv, partitions: 4}
model:
  type: linear
output:
  dir: out
)";

// kMinimal with the model and update sections replaced.
std::string WithModel(const std::string& model_and_update) {
  return "data:\n  train: {path: d.csv, format: csv, partitions: 4}\noutput:\n  dir: out\n" +
         model_and_update;
}

JobSpec Parse(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  Result<JobSpec> r = ParseJobSpec(yaml, "job.yaml", overrides);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return std::move(r).value();
}

// The message of the error the spec must fail with.
std::string ErrorOf(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  Result<JobSpec> r = ParseJobSpec(yaml, "job.yaml", overrides);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  return r.status().message();
}

TEST_CASE("a predict job names its model and takes no training sections", "[jobs]") {
  const std::string predict =
      "data:\n  train: {path: d.csv, format: csv, partitions: 4}\noutput: {dir: out.d}\n"
      "predict: {model: /m/model.mrt, max_attempts: 2}\n";
  JobSpec spec = Parse(predict);
  CHECK(spec.predict_model == "/m/model.mrt");
  CHECK(spec.max_attempts == 2);
  CHECK(spec.output_dir == "out.d");
  CHECK(spec.train.num_partitions == 4);
  CHECK(Parse(kMinimal).predict_model.empty());
  CHECK(ErrorOf(predict + "model: {type: linear}\n") ==
        "job.yaml:5: model: a predict job takes its model from predict.model and trains nothing");
  CHECK(ErrorOf("data:\n  train: {path: d.csv, format: csv, partitions: 4}\noutput: {dir: o}\n"
                "predict: {}\n")
            .find("predict.model: required key is missing") != std::string::npos);
}

TEST_CASE("a spec using every key parses into exactly those values", "[jobs]") {
  const std::string yaml = R"(name: full
data:
  train:
    path: /data/train.csv
    format: csv
    partitions: 8
    on_bad_record: skip
    header: true
    label_column: price
    delimiter: ";"
    scale: 0.5
  test:
    path: /data/test.svm
    format: libsvm
    features: 784
    zero_based: true
  validation:
    path: /data/val-images.gz
    format: idx
    partitions: 2
    labels: /data/val-labels.gz
model:
  type: mlp
  hidden: [128, 64]
  classes: 10
  init: uniform
  init_scale: 0.05
  block_size: 4096
update:
  rule: adam
  learning_rate: 0.002
  beta1: 0.85
  beta2: 0.99
  epsilon: 1e-7
  l2: 0.0001
  schedule:
    type: step
    step_epochs: 3
    gamma: 0.5
training:
  epochs: 12
  rounds_per_epoch: 100
  mode: model_averaging
  local_learning_rate: 0.05
  local_batch_size: 64
  seed: 42
  threads: 2
  chunk_rows: 512
shuffle:
  mode: sort
  reducers: 4
  buffer_bytes: 1048576
output:
  dir: out/full
  checkpoint:
    every_epochs: 2
    keep: 5
)";
  JobSpec s = Parse(yaml);
  CHECK(s.name == "full");
  CHECK(s.source_path == "job.yaml");

  CHECK(s.train.path == "/data/train.csv");
  CHECK(s.train.format == data::DataFormat::kCsv);
  CHECK(s.train.num_partitions == 8);
  CHECK(s.train.on_bad_record == data::BadRecordPolicy::kSkip);
  CHECK(s.train.csv_header);
  CHECK(s.train.label_column == "price");
  CHECK(s.train.delimiter == ';');
  CHECK(s.train.scale == 0.5);

  REQUIRE(s.test.has_value());
  CHECK(s.test->path == "/data/test.svm");
  CHECK(s.test->format == data::DataFormat::kLibsvm);
  CHECK(s.test->num_partitions == 1);
  CHECK(s.test->num_features == 784);
  CHECK(s.test->zero_based);
  CHECK(s.test->on_bad_record == data::BadRecordPolicy::kFail);

  REQUIRE(s.validation.has_value());
  CHECK(s.validation->format == data::DataFormat::kIdx);
  CHECK(s.validation->num_partitions == 2);
  CHECK(s.validation->labels_path == "/data/val-labels.gz");

  CHECK(s.model_type == "mlp");
  CHECK(s.model_params.values() ==
        std::map<std::string, std::string>{{"classes", "10"}, {"hidden", "128,64"}});
  CHECK(s.model_params.GetIntList("hidden") == std::vector<int64_t>{128, 64});
  CHECK(s.init == InitScheme::kUniform);
  CHECK(s.init_scale == 0.05);
  CHECK(s.block_size == 4096);

  CHECK(s.update_rule == "adam");
  CHECK(s.learning_rate == 0.002);
  CHECK(s.update_params.values() == std::map<std::string, std::string>{{"beta1", "0.85"},
                                                                       {"beta2", "0.99"},
                                                                       {"epsilon", "1e-07"}});
  CHECK(s.update_params.GetDouble("epsilon", 0) == 1e-7);
  CHECK(s.l1 == 0);
  CHECK(s.l2 == 0.0001);
  CHECK(s.schedule == JobSpec::Schedule::kStep);
  CHECK(s.schedule_step_epochs == 3);
  CHECK(s.schedule_gamma == 0.5);

  CHECK(s.epochs == 12);
  CHECK(s.rounds_per_epoch == 100);
  CHECK(s.mode == JobSpec::Mode::kModelAveraging);
  CHECK(s.local_learning_rate == 0.05);
  CHECK(s.local_batch_size == 64);
  CHECK(s.seed == 42);
  CHECK(s.threads == 2);
  CHECK(s.chunk_rows == 512);

  CHECK(s.shuffle_mode == JobSpec::ShuffleMode::kSort);
  CHECK(s.reducers == 4);
  CHECK(s.shuffle_buffer_bytes == 1048576);

  CHECK(s.output_dir == "out/full");
  CHECK(s.checkpoint_every == 2);
  CHECK(s.checkpoint_keep == 5);
}

TEST_CASE("absent keys take the documented defaults", "[jobs]") {
  JobSpec s = Parse(kMinimal);
  CHECK(s.name == "job");  // the stem of "job.yaml"
  CHECK(s.train.on_bad_record == data::BadRecordPolicy::kFail);
  CHECK_FALSE(s.train.csv_header);
  CHECK(s.train.label_column == "0");
  CHECK(s.train.delimiter == ',');
  CHECK(s.train.scale == 0);
  CHECK_FALSE(s.test.has_value());
  CHECK_FALSE(s.validation.has_value());
  CHECK(s.model_params.values().empty());
  CHECK(s.init == InitScheme::kXavier);
  CHECK(s.init_scale == 0.01);
  CHECK(s.block_size == 16384);
  CHECK(s.update_rule == "sgd");
  CHECK(s.learning_rate == 0.01);
  CHECK(s.update_params.values().empty());
  CHECK(s.l1 == 0);
  CHECK(s.l2 == 0);
  CHECK(s.schedule == JobSpec::Schedule::kConstant);
  CHECK(s.epochs == 1);
  CHECK(s.rounds_per_epoch == 1);
  CHECK(s.mode == JobSpec::Mode::kMinibatch);
  CHECK(s.seed == 1);
  CHECK(s.threads == 0);
  CHECK(s.chunk_rows == 256);
  CHECK(s.shuffle_mode == JobSpec::ShuffleMode::kHash);
  CHECK(s.reducers == 1);
  CHECK(s.shuffle_buffer_bytes == 256LL << 20);
  CHECK(s.checkpoint_every == 1);
  CHECK(s.checkpoint_keep == 3);
}

TEST_CASE("rule-specific keys get their defaults in update_params", "[jobs]") {
  SECTION("momentum") {
    JobSpec s = Parse(WithModel("model: {type: linear}\nupdate: {rule: momentum}\n"));
    CHECK(s.update_params.values() == std::map<std::string, std::string>{{"momentum", "0.9"}});
  }
  SECTION("nesterov keeps the written value in canonical form") {
    JobSpec s =
        Parse(WithModel("model: {type: linear}\nupdate: {rule: nesterov, momentum: 0.950}\n"));
    CHECK(s.update_params.values() == std::map<std::string, std::string>{{"momentum", "0.95"}});
  }
  SECTION("adam") {
    JobSpec s = Parse(WithModel("model: {type: linear}\nupdate: {rule: adam}\n"));
    CHECK(s.update_params.values() == std::map<std::string, std::string>{{"beta1", "0.9"},
                                                                         {"beta2", "0.999"},
                                                                         {"epsilon", "1e-08"}});
  }
  SECTION("adagrad") {
    JobSpec s = Parse(WithModel("model: {type: linear}\nupdate: {rule: adagrad}\n"));
    CHECK(s.update_params.values() ==
          std::map<std::string, std::string>{{"epsilon", "1e-10"}, {"initial_accumulator", "0.1"}});
  }
  SECTION("average steps all the way to the average unless told otherwise") {
    JobSpec s = Parse(WithModel(
        "model: {type: linear}\nupdate: {rule: average}\ntraining: {mode: model_averaging}\n"));
    CHECK(s.learning_rate == 1.0);
    CHECK(s.update_params.values().empty());
  }
}

TEST_CASE("ftrl takes alpha from learning_rate and its own l1 and l2", "[jobs]") {
  SECTION("defaults") {
    JobSpec s = Parse(WithModel("model: {type: logistic}\nupdate: {rule: ftrl}\n"));
    CHECK(s.update_rule == "ftrl");
    CHECK(s.learning_rate == 0.1);
    CHECK(s.update_params.values() ==
          std::map<std::string, std::string>{{"beta", "1"}, {"l1", "0"}, {"l2", "0"}});
  }
  SECTION("l1 and l2 go to the rule, and the engine's own are off") {
    JobSpec s = Parse(WithModel(
        "model: {type: logistic}\nupdate: {rule: ftrl, learning_rate: 0.05, beta: 0.5, l1: 1,"
        " l2: 0.25}\n"));
    CHECK(s.learning_rate == 0.05);
    CHECK(s.update_params.values() ==
          std::map<std::string, std::string>{{"beta", "0.5"}, {"l1", "1"}, {"l2", "0.25"}});
    CHECK(s.l1 == 0);
    CHECK(s.l2 == 0);
  }
  SECTION("bad values name the key") {
    CHECK(ErrorOf(WithModel("model: {type: logistic}\nupdate: {rule: ftrl, beta: -1}\n")) ==
          "job.yaml:6: update.beta: expected a number > 0, got '-1'");
    CHECK(ErrorOf(WithModel("model: {type: logistic}\nupdate: {rule: ftrl, l1: -0.5}\n")) ==
          "job.yaml:6: update.l1: expected a number >= 0, got '-0.5'");
    CHECK(ErrorOf(WithModel("model: {type: logistic}\nupdate: {rule: adam, beta: 1}\n")) ==
          "job.yaml:6: update.beta: only for rule ftrl; update.rule is adam");
    CHECK(ErrorOf(WithModel("model: {type: logistic}\nupdate: {rule: ftrl, alpha: 0.1}\n"))
              .find("job.yaml:6: update.alpha: unknown key; allowed: rule, learning_rate") == 0);
  }
}

TEST_CASE("fm takes factors, starts uniform and is checked like a binary model", "[jobs]") {
  SECTION("defaults") {
    JobSpec s = Parse(WithModel("model: {type: fm}\n"));
    CHECK(s.model_type == "fm");
    CHECK(s.model_params.values() == std::map<std::string, std::string>{{"factors", "8"}});
    CHECK(s.init == InitScheme::kUniform);
    CHECK(s.init_scale == 0.1);
  }
  SECTION("given values") {
    JobSpec s = Parse(WithModel(
        "model: {type: fm, factors: 4, init_scale: 0.05}\nupdate: {rule: adagrad, l1: 0.01}\n"));
    CHECK(s.model_params.values() == std::map<std::string, std::string>{{"factors", "4"}});
    CHECK(s.init_scale == 0.05);
    CHECK(s.l1 == 0.01);
    CHECK(Parse(WithModel("model: {type: fm, init: xavier}\n")).init == InitScheme::kXavier);
  }
  SECTION("bad values name the key") {
    CHECK(ErrorOf(WithModel("model: {type: fm, factors: 0}\n")) ==
          "job.yaml:5: model.factors: expected an integer in [1, 4096], got '0'");
    CHECK(ErrorOf(WithModel("model: {type: fm, factors: many}\n")) ==
          "job.yaml:5: model.factors: expected an integer in [1, 4096], got 'many'");
    CHECK(ErrorOf(WithModel("model: {type: logistic, factors: 4}\n")) ==
          "job.yaml:5: model.factors: only for model type fm; model.type is logistic");
    CHECK(ErrorOf(WithModel("model: {type: fm, classes: 2}\n")) ==
          "job.yaml:5: model.classes: only for model types softmax, mlp; model.type is fm");
  }
}

TEST_CASE("model averaging works with any rule", "[jobs]") {
  JobSpec s =
      Parse(WithModel("model: {type: logistic}\nupdate: {rule: adam, l1: 0.01}\n"
                      "training: {mode: model_averaging, local_learning_rate: 0.2}\n"));
  CHECK(s.mode == JobSpec::Mode::kModelAveraging);
  CHECK(s.update_rule == "adam");
  CHECK(s.l1 == 0.01);
  CHECK(s.local_learning_rate == 0.2);
}

TEST_CASE("an unknown key names its line, path and the allowed keys", "[jobs]") {
  std::string yaml = std::string(kMinimal) + "update:\n  rule: sgd\n  lerning_rate: 0.1\n";
  CHECK(ErrorOf(yaml) ==
        "job.yaml:9: update.lerning_rate: unknown key; allowed: rule, learning_rate, momentum, "
        "beta1, beta2, epsilon, initial_accumulator, beta, l1, l2, schedule, plugin, params");
  CHECK(ErrorOf(std::string(kMinimal) + "epochs: 3\n") ==
        "job.yaml:7: epochs: unknown key; allowed: name, data, model, update, training, shuffle, "
        "output, plugins, combiner, predict");
}

TEST_CASE("a value of the wrong type names its line and what is allowed", "[jobs]") {
  SECTION("a word where an integer is expected") {
    CHECK(ErrorOf("data:\n  train:\n    partitions: many\n    path: d\n    format: csv\n"
                  "model: {type: linear}\noutput: {dir: o}\n") ==
          "job.yaml:3: data.train.partitions: expected an integer in [1, 1048576], got 'many'");
  }
  SECTION("a map where a number is expected") {
    CHECK(ErrorOf(std::string(kMinimal) + "update:\n  learning_rate: {a: 1}\n") ==
          "job.yaml:8: update.learning_rate: expected a number > 0, got a map");
  }
  SECTION("a quoted number is a string") {
    CHECK(ErrorOf(std::string(kMinimal) + "training:\n  epochs: \"3\"\n") ==
          "job.yaml:8: training.epochs: expected an integer >= 1, got the string '3'");
  }
  SECTION("a list where a string is expected") {
    CHECK(ErrorOf(std::string(kMinimal) + "name: [a, b]\n") ==
          "job.yaml:7: name: expected a non-empty string, got a list");
  }
  SECTION("a scalar where a section is expected") {
    CHECK(ErrorOf(std::string(kMinimal) + "shuffle: sort\n") ==
          "job.yaml:7: shuffle: expected a map with keys mode, reducers, buffer_bytes, got 'sort'");
  }
  SECTION("a bad list item names its index") {
    CHECK(ErrorOf(WithModel("model:\n  type: mlp\n  hidden:\n    - 128\n    - -3\n")) ==
          "job.yaml:9: model.hidden[1]: expected an integer >= 1, got '-3'");
  }
  SECTION("an empty value") {
    CHECK(ErrorOf(std::string(kMinimal) + "training:\n  seed:\n") ==
          "job.yaml:8: training.seed: expected an integer >= 0, got an empty value");
  }
  SECTION("a word that is not one of the choices") {
    CHECK(ErrorOf(std::string(kMinimal) + "update: {rule: adamw}\n") ==
          "job.yaml:7: update.rule: expected one of sgd, momentum, nesterov, adagrad, adam, "
          "ftrl, average, got 'adamw'");
  }
  SECTION("yes is not a boolean here") {
    CHECK(ErrorOf("data:\n  train: {path: d, format: csv, partitions: 1, header: yes}\n"
                  "model: {type: linear}\noutput: {dir: o}\n") ==
          "job.yaml:2: data.train.header: expected true or false, got 'yes'");
  }
}

TEST_CASE("an out-of-range value names its line and the range", "[jobs]") {
  CHECK(ErrorOf(std::string(kMinimal) + "training:\n  epochs: 0\n") ==
        "job.yaml:8: training.epochs: expected an integer >= 1, got '0'");
  CHECK(ErrorOf(std::string(kMinimal) + "update:\n  rule: momentum\n  momentum: 1.5\n") ==
        "job.yaml:9: update.momentum: expected a number in [0, 1), got '1.5'");
  CHECK(ErrorOf(std::string(kMinimal) + "update:\n  learning_rate: -0.1\n") ==
        "job.yaml:8: update.learning_rate: expected a number > 0, got '-0.1'");
  CHECK(ErrorOf(std::string(kMinimal) + "update:\n  l2: .nan\n") ==
        "job.yaml:8: update.l2: expected a number >= 0, got '.nan'");
  CHECK(ErrorOf(WithModel("model: {type: softmax, classes: 1}\n")) ==
        "job.yaml:5: model.classes: expected an integer in [2, 65536], got '1'");
  CHECK(ErrorOf(std::string(kMinimal) + "shuffle: {reducers: 100000}\n") ==
        "job.yaml:7: shuffle.reducers: expected an integer in [1, 65536], got '100000'");
  CHECK(ErrorOf(std::string(kMinimal) + "training: {seed: 99999999999999999999}\n") ==
        "job.yaml:7: training.seed: expected an integer >= 0, got '99999999999999999999'");
}

TEST_CASE("a missing required key names its path and what is allowed, without a line", "[jobs]") {
  CHECK(
      ErrorOf("data:\n  train: {path: d, format: csv, partitions: 1}\nmodel: {}\n"
              "output: {dir: o}\n") ==
      "job.yaml: model.type: required key is missing; allowed: linear, logistic, softmax, mlp, fm");
  CHECK(ErrorOf("model: {type: linear}\noutput: {dir: o}\n") ==
        "job.yaml: data.train: required key is missing; expected a map with keys path, format, "
        "partitions, ...");
  CHECK(ErrorOf("data:\n  train: {path: d, format: csv}\nmodel: {type: linear}\n"
                "output: {dir: o}\n") ==
        "job.yaml: data.train.partitions: required key is missing; expected an integer >= 1");
  CHECK(ErrorOf("data:\n  train: {path: d, format: idx, partitions: 1}\nmodel: {type: linear}\n"
                "output: {dir: o}\n") ==
        "job.yaml: data.train.labels: required key is missing; expected the idx1 labels file");
  CHECK(ErrorOf(WithModel("model: {type: mlp}\n")) ==
        "job.yaml: model.hidden: required key is missing; expected a list of layer widths like "
        "[128]");
  CHECK(ErrorOf("data:\n  train: {path: d, format: csv, partitions: 1}\nmodel: {type: linear}\n") ==
        "job.yaml: output.dir: required key is missing; expected the folder for checkpoints and "
        "metrics");
}

TEST_CASE("an empty spec reports every missing required key", "[jobs]") {
  CHECK(
      ErrorOf("") ==
      "job.yaml: data.train: required key is missing; expected a map with keys path, format, "
      "partitions, ...\n"
      "job.yaml: model.type: required key is missing; allowed: linear, logistic, softmax, mlp, fm\n"
      "job.yaml: output.dir: required key is missing; expected the folder for checkpoints and "
      "metrics");
}

TEST_CASE("test and validation partitions default to one", "[jobs]") {
  JobSpec s = Parse(
      "data:\n  train: {path: d, format: csv, partitions: 3}\n"
      "  test: {path: t.svm, format: libsvm}\n"
      "  validation: {path: v.csv, format: csv}\n"
      "model: {type: linear}\noutput: {dir: o}\n");
  CHECK(s.train.num_partitions == 3);
  REQUIRE(s.test.has_value());
  CHECK(s.test->num_partitions == 1);
  REQUIRE(s.validation.has_value());
  CHECK(s.validation->num_partitions == 1);
}

TEST_CASE("a key that belongs to another rule, type, format or mode says which", "[jobs]") {
  CHECK(ErrorOf(std::string(kMinimal) + "update:\n  rule: adam\n  momentum: 0.9\n") ==
        "job.yaml:9: update.momentum: only for rules momentum, nesterov; update.rule is adam");
  CHECK(ErrorOf(std::string(kMinimal) + "update:\n  initial_accumulator: 0.1\n") ==
        "job.yaml:8: update.initial_accumulator: only for rule adagrad; update.rule is sgd");
  CHECK(ErrorOf(WithModel("model:\n  type: softmax\n  hidden: [10]\n")) ==
        "job.yaml:7: model.hidden: only for model type mlp; model.type is softmax");
  CHECK(ErrorOf(WithModel("model:\n  type: logistic\n  classes: 3\n")) ==
        "job.yaml:7: model.classes: only for model types softmax, mlp; model.type is logistic");
  CHECK(ErrorOf(WithModel("model:\n  type: linear\n  init_scale: 0.1\n")) ==
        "job.yaml:7: model.init_scale: only for init uniform; model.init is xavier");
  CHECK(ErrorOf("data:\n  train: {path: d, format: libsvm, partitions: 1,\n"
                "          header: true}\nmodel: {type: linear}\noutput: {dir: o}\n") ==
        "job.yaml:3: data.train.header: only for format csv; data.train.format is libsvm");
  CHECK(ErrorOf(std::string(kMinimal) + "training:\n  local_batch_size: 8\n") ==
        "job.yaml:8: training.local_batch_size: only for mode model_averaging; training.mode is "
        "minibatch");
  CHECK(ErrorOf(std::string(kMinimal) + "update:\n  schedule: {type: cosine, gamma: 0.5}\n") ==
        "job.yaml:8: update.schedule.gamma: only for schedule type step; update.schedule.type is "
        "cosine");
}

TEST_CASE("format shards reads a converted folder and refuses the keys its conversion applied",
          "[jobs]") {
  const JobSpec spec = Parse(
      "data:\n  train: {path: s, format: shards, partitions: 3, max_decoded_mb: 8}\n"
      "model: {type: linear}\noutput: {dir: o}\n");
  CHECK(spec.train.format == data::DataFormat::kShards);
  CHECK(spec.train.num_partitions == 3);
  CHECK(spec.train.max_decoded_mb == 8);
  CHECK(ErrorOf("data:\n  train: {path: s, format: shards, partitions: 1,\n"
                "          scale: 2}\nmodel: {type: linear}\noutput: {dir: o}\n") ==
        "job.yaml:3: data.train.scale: only for formats libsvm, csv, idx; data.train.format is "
        "shards");
  CHECK(ErrorOf("data:\n  train: {path: s, format: shards, partitions: 1,\n"
                "          features: 2}\nmodel: {type: linear}\noutput: {dir: o}\n") ==
        "job.yaml:3: data.train.features: only for format libsvm; data.train.format is shards");
}

TEST_CASE("format criteo needs hash_bits, which libsvm may take and other formats refuse",
          "[jobs]") {
  auto data = [](const std::string& train) {
    return "data:\n  train: {path: d, partitions: 2,\n          " + train +
           "}\nmodel: {type: logistic}\noutput: {dir: o}\n";
  };
  const JobSpec spec = Parse(data("format: criteo, hash_bits: 20"));
  CHECK(spec.train.format == data::DataFormat::kCriteo);
  CHECK(spec.train.hash_bits == 20);
  CHECK(Parse(data("format: libsvm, hash_bits: 3")).train.hash_bits == 3);
  CHECK(Parse(data("format: libsvm")).train.hash_bits == 0);
  CHECK(ErrorOf(data("format: criteo")) ==
        "job.yaml: data.train.hash_bits: required key is missing; criteo features are hashed "
        "into 2^hash_bits columns: expected an integer in [1, 31]");
  CHECK(ErrorOf(data("format: csv, hash_bits: 4")) ==
        "job.yaml:3: data.train.hash_bits: only for formats libsvm, criteo; data.train.format is "
        "csv");
  CHECK(ErrorOf(data("format: criteo, hash_bits: 32")) ==
        "job.yaml:3: data.train.hash_bits: expected an integer in [1, 31], got '32'");
  CHECK(ErrorOf(data("format: criteo, hash_bits: 24, max_decoded_mb: 32")) ==
        "job.yaml:3: data.train.hash_bits: 2^24 features is over the limit of 8388608 that "
        "max_decoded_mb (32 MiB) allows");
  CHECK(ErrorOf(data("format: libsvm, hash_bits: 4, features: 9")) ==
        "job.yaml:3: data.train.hash_bits: give features or hash_bits, not both: hashing makes "
        "the width 2^hash_bits");
  CHECK(ErrorOf(data("format: criteo, hash_bits: 4, scale: 2")) ==
        "job.yaml:3: data.train.scale: only for formats libsvm, csv, idx; data.train.format is "
        "criteo");
  // Hashing changes the rows, so it changes the fingerprint; a spec without it keeps its own.
  CHECK(Parse(data("format: libsvm, hash_bits: 3")).Fingerprint() !=
        Parse(data("format: libsvm")).Fingerprint());
  CHECK(Parse(data("format: criteo, hash_bits: 3")).Fingerprint() !=
        Parse(data("format: criteo, hash_bits: 4")).Fingerprint());
}

TEST_CASE("cross-checks between sections", "[jobs]") {
  SECTION("l1 is not for mlp") {
    CHECK(
        ErrorOf(WithModel("model: {type: mlp, hidden: [4]}\nupdate:\n  l1: 0.1\n")) ==
        "job.yaml:7: update.l1: only for model types linear, logistic, softmax, fm; model.type is "
        "mlp");
  }
  SECTION("rule average needs model averaging") {
    CHECK(ErrorOf(std::string(kMinimal) + "update:\n  rule: average\n") ==
          "job.yaml:8: update.rule: rule average needs training.mode: model_averaging; "
          "training.mode is minibatch");
  }
  SECTION("a csv label column name needs a header") {
    CHECK(ErrorOf("data:\n  train: {path: d, format: csv, partitions: 1, label_column: y}\n"
                  "model: {type: linear}\noutput: {dir: o}\n") ==
          "job.yaml:2: data.train.label_column: the column name 'y' needs data.train.header: "
          "true; without a header give a 0-based index");
  }
  SECTION("a csv label column index may count from the end") {
    JobSpec s = Parse(
        "data:\n  train: {path: d, format: csv, partitions: 1, label_column: -1}\n"
        "model: {type: linear}\noutput: {dir: o}\n");
    CHECK(s.train.label_column == "-1");
  }
  SECTION("a delimiter is one character") {
    CHECK(ErrorOf("data:\n  train: {path: d, format: csv, partitions: 1, delimiter: ab}\n"
                  "model: {type: linear}\noutput: {dir: o}\n") ==
          "job.yaml:2: data.train.delimiter: expected a single character such as ',' or \"\\t\", "
          "got 'ab'");
    JobSpec s = Parse(
        "data:\n  train: {path: d, format: csv, partitions: 1, delimiter: \"\\t\"}\n"
        "model: {type: linear}\noutput: {dir: o}\n");
    CHECK(s.train.delimiter == '\t');
  }
  SECTION("the cosine floor stays under the learning rate") {
    CHECK(
        ErrorOf(
            std::string(kMinimal) +
            "update:\n  learning_rate: 0.1\n  schedule: {type: cosine, min_learning_rate: 1}\n") ==
        "job.yaml:9: update.schedule.min_learning_rate: must not exceed update.learning_rate "
        "(0.1)");
  }
}

TEST_CASE("a duplicate key names both lines", "[jobs]") {
  CHECK(ErrorOf(std::string(kMinimal) + "training:\n  epochs: 2\n  epochs: 3\n") ==
        "job.yaml:9: training.epochs: duplicate key; first given at line 8");
}

TEST_CASE("every error in a spec is reported, one a line, in line order", "[jobs]") {
  CHECK(ErrorOf(std::string(kMinimal) + "training:\n  epochs: 0\n  threads: many\n") ==
        "job.yaml:8: training.epochs: expected an integer >= 1, got '0'\n"
        "job.yaml:9: training.threads: expected an integer in [0, 4096], got 'many'");
  // The parser reads training before update, and model before either.
  CHECK(
      ErrorOf("data:\n  train: {path: d, format: csv, partitions: 1}\n"
              "update:\n  rule: bogus\ntraining:\n  epochs: 0\nmodel: {}\n") ==
      "job.yaml:4: update.rule: expected one of sgd, momentum, nesterov, adagrad, adam, "
      "ftrl, average, got 'bogus'\n"
      "job.yaml:6: training.epochs: expected an integer >= 1, got '0'\n"
      "job.yaml: model.type: required key is missing; allowed: linear, logistic, softmax, mlp, fm\n"
      "job.yaml: output.dir: required key is missing; expected the folder for checkpoints and "
      "metrics");
}

TEST_CASE("a YAML syntax error names its line", "[jobs]") {
  CHECK(ErrorOf(std::string(kMinimal) + "training:\n  epochs: seed: 1\n") ==
        "job.yaml:8: YAML syntax error: illegal map value");
  CHECK(ErrorOf(std::string(kMinimal) + "training: {epochs: 1}}\n") ==
        "job.yaml:7: YAML syntax error: illegal flow end");
  CHECK(ErrorOf("- just\n- a list\n") ==
        "job.yaml:1: a job spec is a map of sections (name, data, model, update, training, "
        "shuffle, output, plugins, combiner)");
}

TEST_CASE("hostile YAML gives an error, never an exception or a crash", "[jobs]") {
  const std::vector<std::string> inputs = {
      "{",
      "*undefined_alias",
      "data: &a\n  train: *a\n",
      "? [a, b]\n: 1\n",
      "data: !!binary aGVsbG8=\n",
      std::string(10000, '[') + std::string(10000, ']'),
      std::string("data:\0\xff\xfe", 8),
      "model: {type: mlp, hidden: [[1], {a: 2}]}\n",
      "--- a\n--- b\n",
  };
  for (const std::string& input : inputs) {
    INFO(input.substr(0, 40));
    Result<JobSpec> r = ParseJobSpec(input, "job.yaml", {"a.b.c=[{", "model.hidden.x=1"});
    CHECK_FALSE(r.ok());
  }
}

TEST_CASE("overrides replace and add values before validation", "[jobs]") {
  const std::string mlp = WithModel("model: {type: mlp, hidden: [128]}\n");
  SECTION("a scalar") {
    JobSpec s = Parse(kMinimal, {"update.learning_rate=0.5"});
    CHECK(s.learning_rate == 0.5);
  }
  SECTION("a list") {
    JobSpec s = Parse(mlp, {"model.hidden=[256,32]"});
    CHECK(s.model_params.GetString("hidden", "") == "256,32");
  }
  SECTION("new keys and sections") {
    JobSpec s = Parse(kMinimal, {"training.seed=7", "update.schedule.type=cosine",
                                 "data.test={path: t.csv, format: csv}"});
    CHECK(s.seed == 7);
    CHECK(s.schedule == JobSpec::Schedule::kCosine);
    REQUIRE(s.test.has_value());
    CHECK(s.test->path == "t.csv");
  }
  SECTION("a word") {
    JobSpec s = Parse(kMinimal, {"update.rule=adam"});
    CHECK(s.update_rule == "adam");
  }
  SECTION("the later override of a path wins") {
    JobSpec s = Parse(kMinimal, {"training.epochs=2", "training.epochs=5"});
    CHECK(s.epochs == 5);
  }
  SECTION("an override may make a spec valid") {
    JobSpec s = Parse("data:\n  train: {path: d, format: csv, partitions: 1}\nmodel: {type: x}\n",
                      {"model.type=linear", "output.dir=o"});
    CHECK(s.model_type == "linear");
    CHECK(s.output_dir == "o");
  }
}

TEST_CASE("errors in overridden values name the override instead of a line", "[jobs]") {
  CHECK(ErrorOf(kMinimal, {"training.epochs=abc"}) ==
        "--set training.epochs: training.epochs: expected an integer >= 1, got 'abc'");
  CHECK(ErrorOf(kMinimal, {"update.lerning_rate=0.1"}) ==
        "--set update.lerning_rate: update.lerning_rate: unknown key; allowed: rule, "
        "learning_rate, momentum, beta1, beta2, epsilon, initial_accumulator, beta, l1, l2, "
        "schedule, "
        "plugin, params");
  CHECK(ErrorOf(kMinimal, {"update={rule: adam, momentum: 0.9}"}) ==
        "--set update: update.momentum: only for rules momentum, nesterov; update.rule is adam");
  CHECK(ErrorOf(kMinimal, {"model={hidden: [3]}"}) ==
        "--set model: model.type: required key is missing; allowed: linear, logistic, softmax, "
        "mlp, fm");
}

TEST_CASE("a malformed override is an error naming it", "[jobs]") {
  CHECK(ErrorOf(kMinimal, {"training.epochs"}) ==
        "--set training.epochs: malformed override; expected key.path=value");
  CHECK(ErrorOf(kMinimal, {"=3"}) ==
        "--set =3: malformed override; the key path before '=' is empty");
  CHECK(ErrorOf(kMinimal, {"training..epochs=3"}) ==
        "--set training..epochs=3: malformed override; empty key in the path 'training..epochs'");
  CHECK(ErrorOf(kMinimal, {"model.hidden=[1,"}) ==
        "--set model.hidden=[1,: the value is not valid YAML: end of sequence flow not found");
  CHECK(ErrorOf(kMinimal, {"model.type.x=1"}) ==
        "--set model.type.x=1: model.type is not a map in the spec, so it has no key 'x'");
}

TEST_CASE("training.staleness is 0 to 16 and decides which update a round's map tasks read",
          "[jobs]") {
  CHECK(Parse(kMinimal).staleness == 0);
  CHECK(Parse(kMinimal, {"training.staleness=16"}).staleness == 16);
  CHECK(ErrorOf(kMinimal, {"training.staleness=17"}) ==
        "--set training.staleness: training.staleness: expected an integer in [0, 16], got "
        "'17'");
  CHECK(ErrorOf(kMinimal, {"training.staleness=-1"}) ==
        "--set training.staleness: training.staleness: expected an integer in [0, 16], got "
        "'-1'");
  // Rounds of 4 per epoch: steps 5..8 are the second epoch's (E = 4).
  JobSpec spec = Parse(kMinimal);
  for (int64_t round = 0; round < 4; ++round)
    CHECK(spec.MapReadsAfter(5 + round, round) == 4 + round);
  spec.staleness = 2;
  CHECK(spec.MapReadsAfter(5, 0) == 4);  // never before the epoch's start
  CHECK(spec.MapReadsAfter(6, 1) == 4);
  CHECK(spec.MapReadsAfter(7, 2) == 4);
  CHECK(spec.MapReadsAfter(8, 3) == 5);
  // It decides the model, so it is in the fingerprint; 0 leaves the fingerprint as it was.
  CHECK(Parse(kMinimal, {"training.staleness=0"}).Fingerprint() == Parse(kMinimal).Fingerprint());
  CHECK(Parse(kMinimal, {"training.staleness=1"}).Fingerprint() != Parse(kMinimal).Fingerprint());
}

TEST_CASE("the fingerprint covers what decides the trained bytes and nothing else", "[jobs]") {
  const std::string base = Parse(kMinimal).Fingerprint();
  CHECK(base.size() == 64);
  CHECK(base.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(Parse(kMinimal).Fingerprint() == base);

  SECTION("it changes with the learning rate, seed, model and data") {
    CHECK(Parse(kMinimal, {"update.learning_rate=0.02"}).Fingerprint() != base);
    CHECK(Parse(kMinimal, {"training.seed=2"}).Fingerprint() != base);
    CHECK(Parse(kMinimal, {"training.chunk_rows=128"}).Fingerprint() != base);
    CHECK(Parse(kMinimal, {"model.type=logistic"}).Fingerprint() != base);
    CHECK(Parse(kMinimal, {"data.train.partitions=5"}).Fingerprint() != base);
    CHECK(Parse(kMinimal, {"update.rule=momentum"}).Fingerprint() !=
          Parse(kMinimal, {"update.rule=nesterov"}).Fingerprint());
    CHECK(Parse(kMinimal, {"update.rule=momentum"}).Fingerprint() !=
          Parse(kMinimal, {"update.rule=momentum", "update.momentum=0.8"}).Fingerprint());
  }
  SECTION("it ignores reducers, threads, shuffle mode and buffer, output and name") {
    CHECK(Parse(kMinimal, {"shuffle.reducers=8"}).Fingerprint() == base);
    CHECK(Parse(kMinimal, {"shuffle.mode=sort"}).Fingerprint() == base);
    CHECK(Parse(kMinimal, {"shuffle.buffer_bytes=4096"}).Fingerprint() == base);
    CHECK(Parse(kMinimal, {"training.threads=2"}).Fingerprint() == base);
    CHECK(Parse(kMinimal, {"output.dir=elsewhere"}).Fingerprint() == base);
    CHECK(Parse(kMinimal, {"output.checkpoint.keep=9"}).Fingerprint() == base);
    CHECK(Parse(kMinimal, {"name=renamed"}).Fingerprint() == base);
  }
  SECTION("equal values written differently give the same fingerprint") {
    CHECK(Parse(kMinimal, {"update.learning_rate=0.010"}).Fingerprint() == base);
    CHECK(Parse(kMinimal, {"update.learning_rate=1e-2"}).Fingerprint() == base);
  }
}

TEST_CASE("LoadJobSpec reads a file and names the job after it", "[jobs]") {
  testing::TempDir dir;
  std::string path = dir.Write("my_job.yaml", kMinimal);
  Result<JobSpec> r = LoadJobSpec(path, {"training.epochs=4"});
  REQUIRE(r.ok());
  CHECK(r->name == "my_job");
  CHECK(r->source_path == path);
  CHECK(r->epochs == 4);

  std::string bad = dir.Write("bad.yaml", std::string(kMinimal) + "training: {epochs: 0}\n");
  Result<JobSpec> e = LoadJobSpec(bad);
  REQUIRE_FALSE(e.ok());
  CHECK(e.status().message() == bad + ":7: training.epochs: expected an integer >= 1, got '0'");
}

TEST_CASE("LoadJobSpec on a missing file is kNotFound naming the file", "[jobs]") {
  testing::TempDir dir;
  Result<JobSpec> r = LoadJobSpec(dir.File("nope.yaml"));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kNotFound);
  CHECK(r.status().message().find(dir.File("nope.yaml")) != std::string::npos);
}

TEST_CASE("the example specs parse", "[jobs]") {
  // Tests run in the runfiles tree, where the repository's paths hold.
  Result<JobSpec> softmax = LoadJobSpec("jobs/examples/fashion_mnist_softmax.yaml");
  INFO(softmax.status().ToString());
  REQUIRE(softmax.ok());
  CHECK(softmax->name == "fashion_mnist_softmax");
  CHECK(softmax->model_type == "softmax");
  CHECK(softmax->train.format == data::DataFormat::kIdx);
  CHECK(softmax->train.num_partitions == 8);
  CHECK(softmax->train.labels_path ==
        "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz");
  REQUIRE(softmax->test.has_value());
  CHECK(softmax->test->num_partitions == 2);
  CHECK(softmax->update_rule == "adam");
  CHECK(softmax->output_dir == "out/fashion_mnist_softmax");

  Result<JobSpec> mlp = LoadJobSpec("jobs/examples/fashion_mnist_mlp.yaml");
  INFO(mlp.status().ToString());
  REQUIRE(mlp.ok());
  CHECK(mlp->model_type == "mlp");
  CHECK(mlp->model_params.GetIntList("hidden") == std::vector<int64_t>{128});
  CHECK(mlp->init == InitScheme::kHe);
  CHECK(mlp->reducers == 2);
  CHECK(mlp->checkpoint_keep == 3);
}

TEST_CASE("the full example in SCHEMA.md parses", "[jobs]") {
  std::string doc = testing::TempDir::Read("jobs/spec/SCHEMA.md");
  size_t section = doc.find("## A full example");
  REQUIRE(section != std::string::npos);
  size_t begin = doc.find("```yaml\n", section);
  REQUIRE(begin != std::string::npos);
  begin += 8;
  size_t end = doc.find("```", begin);
  REQUIRE(end != std::string::npos);
  JobSpec s = Parse(doc.substr(begin, end - begin));
  CHECK(s.name == "census_income");
  CHECK(s.train.label_column == "income");
  REQUIRE(s.validation.has_value());
  CHECK(s.validation->num_partitions == 1);
  CHECK(s.model_params.GetString("hidden", "") == "128,64");
  CHECK(s.schedule == JobSpec::Schedule::kCosine);
  CHECK(s.schedule_min_lr == 0.00001);
}

}  // namespace
}  // namespace mrtrain::jobs
