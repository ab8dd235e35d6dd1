#include "runtime/job/shipped_job.h"

#include <filesystem>

#include <catch2/catch.hpp>

#include "engine/base/sha256.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::runtime {
namespace {

using testing::TempDir;

jobs::JobSpec Spec(const std::string& plugin, const std::string& out) {
  auto spec = jobs::ParseJobSpec("plugins: [" + plugin +
                                     "]\n"
                                     "data: {train: {path: train.csv, format: csv, partitions: 1}}\n"
                                     "model: {plugin: huber}\n"
                                     "output: {dir: " + out + "}\n",
                                 "job.yaml", {"training.epochs=2"});
  INFO(spec.status().ToString());
  REQUIRE(spec.ok());
  return *spec;
}

TEST_CASE("a job travels with its plugin's bytes and is unpacked to the same spec",
          "[runtime]") {
  TempDir dir;
  dir.Write("submitter/libx.so", "library bytes v1");
  const jobs::JobSpec spec = Spec("libx.so", "out");
  auto packed = PackJob(spec, dir.File("submitter"), /*resume=*/true);
  INFO(packed.status().ToString());
  REQUIRE(packed.ok());
  CHECK(packed->plugin_sha256 == std::vector<std::string>{Sha256Hex("library bytes v1")});
  CHECK(packed->plugin_bytes == std::vector<std::string>{"library bytes v1"});
  CHECK(packed->overrides == std::vector<std::string>{"training.epochs=2"});
  CHECK(packed->resume == 1);

  auto unpacked = UnpackJob(*packed, dir.File("cache"));
  INFO(unpacked.status().ToString());
  REQUIRE(unpacked.ok());
  const std::string cached = dir.File("cache") + "/" + Sha256Hex("library bytes v1") + ".so";
  CHECK(unpacked->plugins == std::vector<std::string>{cached});
  CHECK(TempDir::Read(cached) == "library bytes v1");
  CHECK(unpacked->epochs == 2);
  // Relative paths mean the submitter's directory on every node.
  CHECK(unpacked->train.path == dir.File("submitter") + "/train.csv");
  CHECK(unpacked->output_dir == dir.File("submitter") + "/out");
  // Same bytes, same job: the fingerprint does not depend on where the library lies.
  jobs::JobSpec local = spec;
  local.plugins = {dir.File("submitter/libx.so")};
  local.train.path = unpacked->train.path;
  local.output_dir = unpacked->output_dir;
  CHECK(unpacked->Fingerprint() == local.Fingerprint());
}

TEST_CASE("shipped bytes that do not match their digest are refused", "[runtime]") {
  TempDir dir;
  dir.Write("libx.so", "library bytes");
  auto packed = PackJob(Spec(dir.File("libx.so"), "out"), dir.path(), false);
  REQUIRE(packed.ok());
  packed->plugin_bytes[0][0] ^= 1;
  auto unpacked = UnpackJob(*packed, dir.File("cache"));
  CHECK(unpacked.status().code() == StatusCode::kCorruption);
  CHECK(unpacked.status().message().find("libx.so") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.File("cache") + "/" + packed->plugin_sha256[0] + ".so"));
}

TEST_CASE("a cached library whose bytes no longer hash to its name is replaced, not loaded",
          "[runtime]") {
  TempDir dir;
  dir.Write("libx.so", "the real library");
  auto packed = PackJob(Spec(dir.File("libx.so"), "out"), dir.path(), false);
  REQUIRE(packed.ok());
  const std::string cached = dir.File("cache") + "/" + packed->plugin_sha256[0] + ".so";
  dir.Write("cache/" + packed->plugin_sha256[0] + ".so", "tampered");
  auto unpacked = UnpackJob(*packed, dir.File("cache"));
  REQUIRE(unpacked.ok());
  CHECK(unpacked->plugins[0] == cached);
  CHECK(TempDir::Read(cached) == "the real library");
}

TEST_CASE("a missing plugin library fails packing and names it", "[runtime]") {
  TempDir dir;
  auto packed = PackJob(Spec(dir.File("nowhere/libx.so"), "out"), dir.path(), false);
  CHECK(packed.status().code() == StatusCode::kNotFound);
  CHECK(packed.status().message().find("nowhere/libx.so") != std::string::npos);
}

}  // namespace
}  // namespace mrtrain::runtime
