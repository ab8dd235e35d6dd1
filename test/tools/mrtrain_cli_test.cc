// End-to-end tests of the mrtrain binary: run, --resume, validate, predict and convert on small
// data, as a user would call them.
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

#include "test/testing/temp_dir.h"
#include "tools/data/synthetic.h"

namespace mrtrain {
namespace {

using testing::TempDir;

struct Output {
  int exit_code = -1;
  std::string text;  // stdout and stderr
};

// Runs the binary (a data dependency of this test) with a time limit.
Output Mrtrain(const std::string& args) {
  const std::string cmd = "timeout 120 tools/mrtrain/mrtrain " + args + " 2>&1";
  Output out;
  std::FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.text.append(buf, n);
  int status = pclose(pipe);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

struct Job {
  TempDir dir;
  std::string spec;
  Job() {
    tools::SyntheticSpec s;
    s.task = tools::SyntheticSpec::Task::kBinary;
    s.features = 8;
    s.rows = 2000;
    REQUIRE(tools::WriteSyntheticLibsvm(dir.File("train.svm"), s).ok());
    spec = dir.Write("job.yaml",
                     "data:\n"
                     "  train: {path: " +
                         dir.File("train.svm") +
                         ", format: libsvm, partitions: 4}\n"
                         "  test: {path: " +
                         dir.File("train.svm") +
                         ", format: libsvm, features: 8}\n"
                         "model: {type: logistic}\n"
                         "update: {rule: sgd, learning_rate: 2.0}\n"
                         "training: {epochs: 3, rounds_per_epoch: 20}\n"
                         "output: {dir: " +
                         dir.File("out") + "}\n");
  }
};

TEST_CASE("mrtrain run trains, prints one line per epoch and writes the model", "[tools]") {
  Job job;
  Output out = Mrtrain("run " + job.spec);
  INFO(out.text);
  REQUIRE(out.exit_code == 0);
  CHECK(out.text.find("epoch 1/3 ") != std::string::npos);
  CHECK(out.text.find("epoch 3/3 ") != std::string::npos);
  auto at = out.text.find("test_accuracy=");
  REQUIRE(at != std::string::npos);
  CHECK(std::stod(out.text.substr(out.text.rfind("test_accuracy=") + 14)) > 0.9);
  CHECK(std::filesystem::exists(job.dir.File("out/model.mrt")));
  CHECK(std::filesystem::exists(job.dir.File("out/model.npz")));
  std::string metrics = TempDir::Read(job.dir.File("out/metrics.jsonl"));
  CHECK(std::count(metrics.begin(), metrics.end(), '\n') == 3);
  CHECK(metrics.find("\"test_accuracy\"") != std::string::npos);
}

TEST_CASE("mrtrain run draws a progress bar for a terminal", "[tools]") {
  Job job;
  Output out = Mrtrain("run --progress bar " + job.spec);
  INFO(out.text);
  REQUIRE(out.exit_code == 0);
  CHECK(out.text.find("\r\033[Kepoch 1/3 [") != std::string::npos);
  CHECK(out.text.find("100% round 20/20") != std::string::npos);
  CHECK(out.text.find("epoch 3/3 train_loss=") != std::string::npos);
  // Without a terminal (this pipe) the default prints epoch lines only.
  CHECK(Mrtrain("run " + job.spec).text.find('\r') == std::string::npos);
}

TEST_CASE("mrtrain run --resume reaches the bytes of an uninterrupted run", "[tools]") {
  Job job;
  REQUIRE(Mrtrain("run " + job.spec).exit_code == 0);
  const std::string reference = TempDir::Read(job.dir.File("out/model.mrt"));
  std::filesystem::remove(job.dir.File("out/model.mrt"));
  std::filesystem::remove(job.dir.File("out/checkpoints/ckpt-000003.manifest"));
  Output resumed = Mrtrain("run --resume " + job.spec);
  INFO(resumed.text);
  REQUIRE(resumed.exit_code == 0);
  CHECK(resumed.text.find("resuming job job after epoch 2") != std::string::npos);
  CHECK(resumed.text.find("epoch 1/3 ") == std::string::npos);
  CHECK(TempDir::Read(job.dir.File("out/model.mrt")) == reference);
}

TEST_CASE("mrtrain validate accepts a good spec and names the key of a bad one", "[tools]") {
  Job job;
  Output good = Mrtrain("validate " + job.spec);
  INFO(good.text);
  CHECK(good.exit_code == 0);
  CHECK(good.text.find("ok") != std::string::npos);
  Output typo = Mrtrain("validate " + job.spec + " --set update.lerning_rate=0.1");
  CHECK(typo.exit_code == 2);
  CHECK(typo.text.find("update.lerning_rate") != std::string::npos);
  Output missing = Mrtrain("validate " + job.spec + " --set data.train.path=/nonexistent/x.svm");
  CHECK(missing.exit_code == 2);
  CHECK(missing.text.find("/nonexistent/x.svm") != std::string::npos);
  Output nofile = Mrtrain("validate " + job.dir.File("nope.yaml"));
  CHECK(nofile.exit_code == 2);
  CHECK(nofile.text.find("nope.yaml") != std::string::npos);
}

TEST_CASE("mrtrain predict writes one CSV row per input row", "[tools]") {
  Job job;
  REQUIRE(Mrtrain("run " + job.spec).exit_code == 0);
  Output out = Mrtrain("predict --model " + job.dir.File("out/model.mrt") + " --data " +
                       job.dir.File("train.svm") + " --format libsvm --partitions 3 --out " +
                       job.dir.File("pred.csv"));
  INFO(out.text);
  REQUIRE(out.exit_code == 0);
  CHECK(out.text.find("predicted 2000 rows") != std::string::npos);
  std::string csv = TempDir::Read(job.dir.File("pred.csv"));
  CHECK(csv.rfind("row,label,prediction,score_0\n0,", 0) == 0);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 2001);
  CHECK(csv.find("\n1999,") != std::string::npos);
  // --out-dir: one part per partition, the same rows; manifest.json commits them.
  Output parts = Mrtrain("predict --model " + job.dir.File("out/model.mrt") + " --data " +
                         job.dir.File("train.svm") + " --format libsvm --partitions 3 --out-dir " +
                         job.dir.File("pred.d"));
  INFO(parts.text);
  REQUIRE(parts.exit_code == 0);
  CHECK(parts.text.find("predicted 2000 rows into " + job.dir.File("pred.d")) != std::string::npos);
  std::string joined;
  for (const char* part : {"part-00000.csv", "part-00001.csv", "part-00002.csv"}) {
    const std::string text = TempDir::Read(job.dir.File("pred.d/") + part);
    CHECK(text.rfind("row,label,prediction,score_0\n", 0) == 0);
    joined += text.substr(text.find('\n') + 1);
  }
  CHECK(joined == csv.substr(csv.find('\n') + 1));
  CHECK(TempDir::Read(job.dir.File("pred.d/manifest.json")).find("\"rows\": 2000") !=
        std::string::npos);
  Output both = Mrtrain("predict --model " + job.dir.File("out/model.mrt") + " --data " +
                        job.dir.File("train.svm") + " --out a.csv --out-dir b.d");
  CHECK(both.exit_code == 2);
  CHECK(both.text.find("give exactly one of --out FILE and --out-dir DIR") != std::string::npos);
  Output bad = Mrtrain("predict --model " + job.dir.File("train.svm") + " --data " +
                       job.dir.File("train.svm") + " --out " + job.dir.File("p2.csv"));
  CHECK(bad.exit_code == 1);
  CHECK(bad.text.find("train.svm") != std::string::npos);
  // The partition budget, as data.*.max_decoded_mb: 1 MiB allows 262144 features, not 262145.
  Output small = Mrtrain("predict --model " + job.dir.File("out/model.mrt") + " --data " +
                         job.dir.File("train.svm") + " --format libsvm --max-decoded-mb 1" +
                         " --features 262145 --out " + job.dir.File("p3.csv"));
  CHECK(small.exit_code == 1);
  CHECK(small.text.find("num_features 262145 is over the limit of 262144 features that "
                        "max_decoded_mb (1 MiB) allows") != std::string::npos);
}

TEST_CASE("mrtrain convert writes shards that train to the text job's model bytes", "[tools]") {
  Job job;
  Output converted = Mrtrain("convert " + job.spec + " --out " + job.dir.File("shards"));
  INFO(converted.text);
  REQUIRE(converted.exit_code == 0);
  CHECK(converted.text.find("converted data.train into " + job.dir.File("shards") +
                            ": 4 partitions, 2000 rows (0 bad records skipped)") !=
        std::string::npos);
  CHECK(converted.text.find("read it with: {path: " + job.dir.File("shards") +
                            ", format: shards, partitions: 4}") != std::string::npos);
  CHECK(converted.text.find('\r') == std::string::npos);  // no bar without a terminal
  REQUIRE(Mrtrain("run " + job.spec).exit_code == 0);
  const std::string reference = TempDir::Read(job.dir.File("out/model.mrt"));
  Output on_shards =
      Mrtrain("run " + job.spec + " --set data.train.format=shards --set data.train.path=" +
              job.dir.File("shards") + " --set output.dir=" + job.dir.File("out2"));
  INFO(on_shards.text);
  REQUIRE(on_shards.exit_code == 0);
  CHECK(TempDir::Read(job.dir.File("out2/model.mrt")) == reference);

  // predict finds the format and the partition count in the shards.
  Output predicted = Mrtrain("predict --model " + job.dir.File("out/model.mrt") + " --data " +
                             job.dir.File("shards") + " --out " + job.dir.File("pred.csv"));
  INFO(predicted.text);
  CHECK(predicted.exit_code == 0);
  CHECK(predicted.text.find("predicted 2000 rows") != std::string::npos);

  Output bar = Mrtrain("convert --progress bar " + job.spec + " --out " + job.dir.File("s2"));
  CHECK(bar.text.find("\r\033[Kconvert [") != std::string::npos);
  CHECK(bar.text.find("100% 4/4 partitions, 2000 rows") != std::string::npos);

  // A second convert into the same folder is refused; the shards stay as they were.
  Output again = Mrtrain("convert " + job.spec + " --out " + job.dir.File("shards"));
  CHECK(again.exit_code == 1);
  CHECK(again.text.find(job.dir.File("shards") + " is not empty (it holds part-00000.mrs)") !=
        std::string::npos);
  // A damaged shard fails the run naming the file and the byte range.
  std::string bytes = TempDir::Read(job.dir.File("shards/part-00002.mrs"));
  bytes[bytes.size() - 2] ^= 0x10;
  job.dir.Write("shards/part-00002.mrs", bytes);
  Output damaged =
      Mrtrain("run " + job.spec + " --set data.train.format=shards --set data.train.path=" +
              job.dir.File("shards") + " --set output.dir=" + job.dir.File("out3"));
  CHECK(damaged.exit_code != 0);
  CHECK(damaged.text.find(job.dir.File("shards/part-00002.mrs") +
                          ": corrupt shard: checksum mismatch in section values, bytes [") !=
        std::string::npos);
}

TEST_CASE("mrtrain --help lists the commands", "[tools]") {
  Output out = Mrtrain("--help");
  CHECK(out.exit_code == 0);
  for (const char* cmd : {"run", "validate", "predict", "convert"}) {
    CHECK(out.text.find(cmd) != std::string::npos);
  }
  CHECK(Mrtrain("run --help").text.find("--resume") != std::string::npos);
}

TEST_CASE(
    "a worker with a malformed --failpoints and a master whose --recover folder is damaged "
    "stop at once naming what is wrong",
    "[tools]") {
  // Neither gets as far as the network: the address is never used.
  Output worker = Mrtrain(
      "worker --insecure --master 127.0.0.1:9 --failpoints "
      "'map-after-compute=explode@epoch=1'");
  INFO(worker.text);
  CHECK(worker.exit_code == 2);
  CHECK(worker.text.find("map-after-compute=explode") != std::string::npos);
  CHECK(worker.text.find("crash, hang, delay, drop or corrupt") != std::string::npos);

  TempDir dir;
  dir.Write("state/state.json",
            "{\"version\": 1, \"next_job_id\": 2, \"jobs\": "
            "[{\"id\": 1, \"state\": \"running\"}]}");
  Output master = Mrtrain("master --insecure --listen 127.0.0.1:0 --recover " + dir.File("state"));
  INFO(master.text);
  CHECK(master.exit_code == 1);
  CHECK(master.text.find("cannot recover the jobs recorded in " + dir.File("state")) !=
        std::string::npos);
  CHECK(master.text.find("job-1.msg") != std::string::npos);  // listed, but its spec is missing
}

}  // namespace
}  // namespace mrtrain
