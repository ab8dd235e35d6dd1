#include "runtime/checkpoint/checkpoint_dir.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <spdlog/sinks/ostream_sink.h>

#include "engine/base/log.h"
#include "test/runtime/checkpoint/sample_checkpoint.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::runtime {
namespace {

using mrtrain::testing::SampleCheckpoint;
using mrtrain::testing::TempDir;

// Copies what the "checkpoint" logger writes while it lives.
class CapturedLog {
 public:
  CapturedLog() : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)) {
    Logger("checkpoint")->sinks().push_back(sink_);
  }
  ~CapturedLog() {
    auto& sinks = Logger("checkpoint")->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

std::vector<std::string> Names(const std::vector<std::string>& paths) {
  std::vector<std::string> names;
  names.reserve(paths.size());
  for (const auto& p : paths) names.push_back(std::filesystem::path(p).filename().string());
  return names;
}

void Truncate(const std::string& path, size_t keep) {
  const std::string bytes = TempDir::Read(path);
  std::filesystem::resize_file(path, keep < bytes.size() ? keep : bytes.size());
}

TEST_CASE("checkpoint file names carry the epoch and parse back only when canonical", "[runtime]") {
  CHECK(CheckpointDir::FileName(3) == "ckpt-000003.mrt");
  CHECK(CheckpointDir::FileName(1234567) == "ckpt-1234567.mrt");
  CHECK(CheckpointDir::ParseFileName("ckpt-000003.mrt") == 3);
  CHECK(CheckpointDir::ParseFileName("ckpt-1234567.mrt") == 1234567);
  CHECK_FALSE(CheckpointDir::ParseFileName("ckpt-3.mrt"));
  CHECK_FALSE(CheckpointDir::ParseFileName("ckpt-0000003.mrt"));
  CHECK_FALSE(CheckpointDir::ParseFileName("ckpt-000003.mrt.tmp.42"));
  CHECK_FALSE(CheckpointDir::ParseFileName("ckpt-00000a.mrt"));
  CHECK_FALSE(CheckpointDir::ParseFileName("ckpt-.mrt"));
  CHECK_FALSE(CheckpointDir::ParseFileName("notes.txt"));
  CHECK_FALSE(CheckpointDir::ParseFileName("ckpt-99999999999999999999.mrt"));
}

TEST_CASE("saving keeps the newest K checkpoints and leaves other files alone", "[runtime]") {
  TempDir tmp;
  const std::string dir = tmp.File("ckpts");
  CheckpointDir checkpoints(dir, 3);
  REQUIRE(checkpoints.Save(SampleCheckpoint(1)).ok());  // creates the directory
  tmp.Write("ckpts/notes.txt", "mine");
  tmp.Write("ckpts/ckpt-000009.mrt.tmp.123", "left by a crash");
  tmp.Write("ckpts/ckpt-9.mrt", "not canonical");
  for (int epoch = 2; epoch <= 5; ++epoch) REQUIRE(checkpoints.Save(SampleCheckpoint(epoch)).ok());

  CHECK(Names(checkpoints.List()) ==
        std::vector<std::string>{"ckpt-000003.mrt", "ckpt-000004.mrt", "ckpt-000005.mrt"});
  CHECK(checkpoints.List().front() == dir + "/ckpt-000003.mrt");
  CHECK_FALSE(std::filesystem::exists(dir + "/ckpt-000001.mrt"));
  CHECK_FALSE(std::filesystem::exists(dir + "/ckpt-000002.mrt"));
  CHECK(TempDir::Read(dir + "/notes.txt") == "mine");
  CHECK(std::filesystem::exists(dir + "/ckpt-000009.mrt.tmp.123"));
  CHECK(std::filesystem::exists(dir + "/ckpt-9.mrt"));
}

TEST_CASE("checkpoints are ordered by epoch number, not by name", "[runtime]") {
  TempDir tmp;
  CheckpointDir checkpoints(tmp.path(), 2);
  REQUIRE(checkpoints.Save(SampleCheckpoint(999999)).ok());
  REQUIRE(checkpoints.Save(SampleCheckpoint(1000000)).ok());
  REQUIRE(checkpoints.Save(SampleCheckpoint(1000001)).ok());
  // By name "ckpt-1000000.mrt" < "ckpt-999999.mrt"; by epoch 999999 is the oldest.
  CHECK(Names(checkpoints.List()) ==
        std::vector<std::string>{"ckpt-1000000.mrt", "ckpt-1000001.mrt"});
  Result<Checkpoint> latest = checkpoints.LoadLatest();
  REQUIRE(latest.ok());
  CHECK(latest->epochs_done == 1000001);
}

TEST_CASE("LoadLatest returns the newest checkpoint", "[runtime]") {
  TempDir tmp;
  CheckpointDir checkpoints(tmp.path(), 5);
  for (int epoch = 1; epoch <= 3; ++epoch) REQUIRE(checkpoints.Save(SampleCheckpoint(epoch)).ok());
  Result<Checkpoint> latest = checkpoints.LoadLatest();
  REQUIRE(latest.ok());
  CHECK(latest->epochs_done == 3);
  CHECK(latest->state.step == 3001);
}

TEST_CASE("LoadLatest falls back to the previous checkpoint and warns", "[runtime]") {
  TempDir tmp;
  CheckpointDir checkpoints(tmp.path(), 5);
  for (int epoch = 1; epoch <= 3; ++epoch) REQUIRE(checkpoints.Save(SampleCheckpoint(epoch)).ok());
  const std::string newest = tmp.File("ckpt-000003.mrt");

  SECTION("when the newest is truncated") {
    Truncate(newest, 5000);
    CapturedLog log;
    Result<Checkpoint> latest = checkpoints.LoadLatest();
    REQUIRE(latest.ok());
    CHECK(latest->epochs_done == 2);
    CHECK_THAT(log.text(), Catch::Contains("warn") && Catch::Contains(newest) &&
                               Catch::Contains("truncated at byte 5000"));
  }
  SECTION("when the newest has a flipped bit") {
    std::string bytes = TempDir::Read(newest);
    bytes[bytes.size() / 2] ^= 0x04;
    tmp.Write("ckpt-000003.mrt", bytes);
    CapturedLog log;
    Result<Checkpoint> latest = checkpoints.LoadLatest();
    REQUIRE(latest.ok());
    CHECK(latest->epochs_done == 2);
    CHECK_THAT(log.text(), Catch::Contains("checksum mismatch"));
  }
  SECTION("past several damaged ones") {
    Truncate(newest, 10);
    tmp.Write("ckpt-000002.mrt", "garbage");
    Result<Checkpoint> latest = checkpoints.LoadLatest();
    REQUIRE(latest.ok());
    CHECK(latest->epochs_done == 1);
  }
}

TEST_CASE("LoadLatest reports kNotFound naming what it tried", "[runtime]") {
  TempDir tmp;
  CheckpointDir checkpoints(tmp.File("ckpts"), 5);
  SECTION("no directory") {
    Result<Checkpoint> latest = checkpoints.LoadLatest();
    REQUIRE_FALSE(latest.ok());
    CHECK(latest.status().code() == StatusCode::kNotFound);
    CHECK(latest.status().message() == "no checkpoint in " + tmp.File("ckpts"));
  }
  SECTION("every checkpoint damaged") {
    REQUIRE(checkpoints.Save(SampleCheckpoint(1)).ok());
    REQUIRE(checkpoints.Save(SampleCheckpoint(2)).ok());
    Truncate(tmp.File("ckpts/ckpt-000001.mrt"), 100);
    Truncate(tmp.File("ckpts/ckpt-000002.mrt"), 200);
    Result<Checkpoint> latest = checkpoints.LoadLatest();
    REQUIRE_FALSE(latest.ok());
    CHECK(latest.status().code() == StatusCode::kNotFound);
    CHECK_THAT(latest.status().message(),
               Catch::StartsWith("no valid checkpoint in " + tmp.File("ckpts") + "; tried: ") &&
                   Catch::Contains("ckpt-000001.mrt: truncated at byte 100") &&
                   Catch::Contains("ckpt-000002.mrt: truncated at byte 200"));
  }
}

TEST_CASE("LoadLatest does not fall back past a checkpoint of a newer format", "[runtime]") {
  TempDir tmp;
  CheckpointDir checkpoints(tmp.path(), 5);
  REQUIRE(checkpoints.Save(SampleCheckpoint(1)).ok());
  REQUIRE(checkpoints.Save(SampleCheckpoint(2)).ok());
  std::string bytes = TempDir::Read(tmp.File("ckpt-000002.mrt"));
  mrtrain::testing::PutLittleEndian(&bytes, 8, 2, 4);  // format version 2, by a newer build
  mrtrain::testing::Reseal(&bytes);
  tmp.Write("ckpt-000002.mrt", bytes);
  Result<Checkpoint> latest = checkpoints.LoadLatest();
  REQUIRE_FALSE(latest.ok());
  CHECK(latest.status().code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("LoadLatest falls back past a damaged version field", "[runtime]") {
  TempDir tmp;
  CheckpointDir checkpoints(tmp.path(), 5);
  REQUIRE(checkpoints.Save(SampleCheckpoint(1)).ok());
  REQUIRE(checkpoints.Save(SampleCheckpoint(2)).ok());
  std::string bytes = TempDir::Read(tmp.File("ckpt-000002.mrt"));
  bytes[8] ^= 0x02;  // version 3, but the checksum says the file is damaged
  tmp.Write("ckpt-000002.mrt", bytes);
  Result<Checkpoint> latest = checkpoints.LoadLatest();
  REQUIRE(latest.ok());
  CHECK(latest->epochs_done == 1);
}

TEST_CASE("Save fails with kIOError when the directory cannot be made", "[runtime]") {
  TempDir tmp;
  tmp.Write("file", "x");
  CheckpointDir checkpoints(tmp.File("file/ckpts"), 2);
  Status s = checkpoints.Save(SampleCheckpoint(1));
  CHECK(s.code() == StatusCode::kIOError);
  CHECK_THAT(s.message(), Catch::Contains(tmp.File("file/ckpts")));
}

}  // namespace
}  // namespace mrtrain::runtime
