#include "runtime/checkpoint/atomic_file.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "test/testing/temp_dir.h"

namespace mrtrain::runtime {
namespace {

TEST_CASE("WriteFileAtomically leaves the whole new content and no temporary file",
          "[runtime][checkpoint]") {
  testing::TempDir dir;
  const std::string path = dir.File("state.json");
  const std::string bytes("first\0with a zero", 17);
  REQUIRE(WriteFileAtomically(path, bytes).ok());
  CHECK(testing::TempDir::Read(path) == bytes);
  REQUIRE(WriteFileAtomically(path, "second").ok());
  CHECK(testing::TempDir::Read(path) == "second");
  CHECK_FALSE(std::filesystem::exists(TempPathFor(path)));
}

TEST_CASE("WriteFileAtomically names the file it cannot write and keeps the old one",
          "[runtime][checkpoint]") {
  testing::TempDir dir;
  const Status s = WriteFileAtomically(dir.File("missing-folder/state.json"), "x");
  CHECK(s.code() == StatusCode::kIOError);
  CHECK(s.message().find("missing-folder/state.json") != std::string::npos);
}

}  // namespace
}  // namespace mrtrain::runtime
