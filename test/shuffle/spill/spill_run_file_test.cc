#include "shuffle/spill/spill_run_file.h"

#include <sys/resource.h>

#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include <catch2/catch.hpp>

#include "test/testing/temp_dir.h"

namespace mrtrain::shuffle {
namespace {

using testing::TempDir;

struct Record {
  ParamKey key;
  std::vector<float> values;
};

Status Write(const std::string& path, const std::vector<Record>& records) {
  MRTRAIN_ASSIGN_OR_RETURN(auto writer, SpillRunWriter::Create(path, records.size()));
  for (const Record& r : records) {
    MRTRAIN_RETURN_IF_ERROR(
        writer->Add(r.key, r.values.data(), static_cast<uint32_t>(r.values.size())));
  }
  return writer->Close();
}

Result<std::vector<Record>> ReadAll(const std::string& path, int64_t max_length = 8) {
  MRTRAIN_ASSIGN_OR_RETURN(auto reader, SpillRunReader::Open(path, max_length));
  std::vector<Record> out;
  while (true) {
    MRTRAIN_ASSIGN_OR_RETURN(bool more, reader->Next());
    if (!more) return out;
    out.push_back(Record{
        reader->key(), std::vector<float>(reader->values(), reader->values() + reader->length())});
  }
}

std::vector<Record> ThreeRecords() {
  return {{ParamKey(0, 1), {1.5f, -2.0f, 3.25f}},
          {ParamKey(0, 1), {-0.0f, 7.0f, 1e-30f}},  // a repeated key keeps its place
          {ParamKey(2, 0), {4.0f}}};
}

void FlipByte(const std::string& path, std::streamoff at) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(at);
  char c = 0;
  f.get(c);
  f.seekp(at);
  f.put(static_cast<char>(c ^ 0x10));
}

TEST_CASE("spill run round-trips keys and float bits in order", "[shuffle]") {
  TempDir dir;
  const std::string path = dir.File("a.run");
  REQUIRE(Write(path, ThreeRecords()).ok());
  // header 24 + records (12 + 4n + 4 each)
  CHECK(std::filesystem::file_size(path) == 24 + 28 + 28 + 20);
  auto back = ReadAll(path);
  REQUIRE(back.ok());
  REQUIRE(back->size() == 3);
  const auto want = ThreeRecords();
  for (size_t i = 0; i < 3; ++i) {
    CHECK((*back)[i].key == want[i].key);
    REQUIRE((*back)[i].values.size() == want[i].values.size());
    CHECK(std::memcmp((*back)[i].values.data(), want[i].values.data(),
                      want[i].values.size() * sizeof(float)) == 0);
  }
  CHECK(std::signbit((*back)[1].values[0]));
}

TEST_CASE("a damaged spill run fails naming the file and the offset", "[shuffle]") {
  TempDir dir;
  const std::string path = dir.File("a.run");
  REQUIRE(Write(path, ThreeRecords()).ok());
  auto fails_with = [&](const std::string& what) {
    auto read = ReadAll(path);
    REQUIRE_FALSE(read.ok());
    CHECK(read.status().code() == StatusCode::kCorruption);
    CHECK(read.status().message() == "spill run " + path + " " + what);
  };
  SECTION("a value bit in the second record") {
    FlipByte(path, 24 + 28 + 14);
    fails_with("at offset 52: record 1 checksum mismatch");
  }
  SECTION("the header") {
    FlipByte(path, 13);
    fails_with("at offset 0: header checksum mismatch");
  }
  SECTION("a truncated last record") {
    std::filesystem::resize_file(path, 24 + 28 + 28 + 14);
    fails_with("at offset 80: record 2 truncated");
  }
  SECTION("a whole record missing") {
    std::filesystem::resize_file(path, 24 + 28 + 28);
    fails_with("at offset 80: record 2 truncated (file ends after 2 of 3 records)");
  }
  SECTION("bytes after the last record") {
    std::ofstream(path, std::ios::app | std::ios::binary) << 'x';
    fails_with("at offset 100: bytes after the last of 3 records");
  }
  SECTION("a length past the block size") {
    auto read = ReadAll(path, /*max_length=*/2);
    REQUIRE_FALSE(read.ok());
    CHECK(read.status().message() ==
          "spill run " + path + " at offset 24: record 0 holds 3 floats, expected 1 to 2");
  }
}

TEST_CASE("a spill run that cannot be written fails naming it and leaves no file", "[shuffle]") {
  TempDir dir;
  const std::string path = dir.File("full.run");
  std::vector<Record> big = {{ParamKey(0, 0), std::vector<float>(1 << 20, 1.0f)}};
  // A file size limit stands in for a full disk: writes past it fail (EFBIG) like ENOSPC.
  struct rlimit old;
  REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
  auto previous = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = 1 << 16;
  REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
  Status written = Write(path, big);
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, previous);
  REQUIRE_FALSE(written.ok());
  CHECK(written.code() == StatusCode::kIOError);
  CHECK(written.message().find("cannot write spill run " + path) == 0);
  CHECK_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace mrtrain::shuffle
