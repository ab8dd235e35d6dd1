#include "runtime/checkpoint/npz_writer.h"

#include <signal.h>
#include <sys/resource.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/base/crc32c.h"
#include "runtime/checkpoint/npy_format.h"
#include "runtime/checkpoint/npz_reader.h"
#include "test/runtime/checkpoint/sample_checkpoint.h"
#include "test/testing/temp_dir.h"

// Python with numpy is not installed on the build machines, so np.load cannot be run here.
// Instead these tests pin the bytes that numpy's .npy format (numpy/lib/format.py) and the
// zip format require, and read the archive back with libzip.

namespace mrtrain::runtime {
namespace {

using mrtrain::testing::SampleCheckpoint;
using mrtrain::testing::TempDir;

uint32_t GetLittleEndian(const std::string& bytes, size_t at, int n) {
  uint32_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(bytes[at + i]);
  return v;
}

std::vector<std::string> Names(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  return names;
}

TEST_CASE("the .npz is a zip with a stored, 64-byte aligned NPY member per tensor", "[runtime]") {
  TempDir dir;
  const ModelState state = SampleCheckpoint(3).state;
  const std::string path = dir.File("model.npz");
  REQUIRE(WriteNpz(path, state).ok());
  const std::string bytes = TempDir::Read(path);

  // The first local file header (zip APPNOTE 4.3.7) is W1's, stored uncompressed.
  REQUIRE(bytes.size() > 30);
  CHECK(bytes.substr(0, 4) == "PK\x03\x04");
  CHECK(GetLittleEndian(bytes, 8, 2) == 0);  // compression method: stored
  const uint32_t name_length = GetLittleEndian(bytes, 26, 2);
  const uint32_t extra_length = GetLittleEndian(bytes, 28, 2);
  CHECK(bytes.substr(30, name_length) == "W1.npy");
  const std::string npy = bytes.substr(30 + name_length + extra_length);

  CHECK(npy.substr(0, 6) == "\x93NUMPY");
  CHECK(npy[6] == 1);  // version 1.0
  CHECK(npy[7] == 0);
  const uint32_t header_length = GetLittleEndian(npy, 8, 2);
  CHECK((10 + header_length) % 64 == 0);  // the data start 64-byte aligned
  const std::string dict = npy.substr(10, header_length);
  const std::string literal = "{'descr': '<f4', 'fortran_order': False, 'shape': (32, 32), }";
  CHECK(dict.substr(0, literal.size()) == literal);
  CHECK(dict.back() == '\n');
  CHECK(dict.find_first_not_of(' ', literal.size()) == dict.size() - 1);  // space padding
  REQUIRE(npy.size() >= 10 + header_length + 4096);
  // NOLINTNEXTLINE(bugprone-suspicious-memory-comparison): bytes on purpose, NaNs included
  CHECK(std::memcmp(npy.data() + 10 + header_length, state.tensors[0].data(), 4096) == 0);

  // A one-dimensional shape is written as Python's one-element tuple.
  CHECK(bytes.find("b1.npy") != std::string::npos);
  CHECK(bytes.find("'shape': (32,), }") != std::string::npos);
  CHECK(bytes.find("'shape': (3,), }") != std::string::npos);
}

TEST_CASE("ReadNpz returns the names, shapes and floats that WriteNpz wrote", "[runtime]") {
  TempDir dir;
  const ModelState state = SampleCheckpoint(3).state;
  REQUIRE(WriteNpz(dir.File("model.npz"), state).ok());
  Result<std::vector<NpyArray>> arrays = ReadNpz(dir.File("model.npz"));
  REQUIRE(arrays.ok());
  REQUIRE(arrays->size() == 4);
  for (size_t t = 0; t < 4; ++t) {
    const auto& spec = state.layout->specs()[t];
    const NpyArray& array = (*arrays)[t];
    INFO(spec.name);
    CHECK(array.name == spec.name);
    CHECK(array.shape == spec.shape);
    REQUIRE(array.data.size() == state.tensors[t].size());
    // NOLINTNEXTLINE(bugprone-suspicious-memory-comparison): bytes on purpose, NaNs included
    CHECK(std::memcmp(array.data.data(), state.tensors[t].data(), array.data.size() * 4) == 0);
  }
}

TEST_CASE("the same model always gives the same .npz bytes", "[runtime]") {
  TempDir dir;
  const ModelState state = SampleCheckpoint(3).state;
  REQUIRE(WriteNpz(dir.File("a.npz"), state).ok());
  REQUIRE(WriteNpz(dir.File("b.npz"), state).ok());
  CHECK(TempDir::Read(dir.File("a.npz")) == TempDir::Read(dir.File("b.npz")));
}

// write() fails with EFBIG part-way through, like a full disk, without privileges.
Status WriteNpzWithFileSizeLimit(const std::string& path, const ModelState& state, rlim_t limit) {
  struct rlimit saved;
  REQUIRE(getrlimit(RLIMIT_FSIZE, &saved) == 0);
  struct rlimit lowered = saved;
  lowered.rlim_cur = limit;
  auto old_handler = signal(SIGXFSZ, SIG_IGN);
  REQUIRE(setrlimit(RLIMIT_FSIZE, &lowered) == 0);
  Status s = WriteNpz(path, state);
  REQUIRE(setrlimit(RLIMIT_FSIZE, &saved) == 0);
  signal(SIGXFSZ, old_handler);
  return s;
}

TEST_CASE("a failed export leaves the previous file and nothing else", "[runtime]") {
  TempDir dir;
  const std::string path = dir.File("model.npz");
  dir.Write("model.npz", "previous export");
  ModelState state = SampleCheckpoint(3).state;

  SECTION("the file system refuses to grow the file part-way through") {
    Status s = WriteNpzWithFileSizeLimit(path, state, 2048);
    CHECK(s.code() == StatusCode::kIOError);
    CHECK_THAT(s.message(), Catch::Contains(path));
  }
  SECTION("the tensors do not match the layout") {
    state.tensors[2].resize(5);
    Status s = WriteNpz(path, state);
    CHECK(s.code() == StatusCode::kInternal);
    CHECK_THAT(s.message(), Catch::Contains("'W2'"));
  }
  CHECK(TempDir::Read(path) == "previous export");
  CHECK(Names(dir.path()) == std::vector<std::string>{"model.npz"});
}

TEST_CASE("an export into a missing directory fails with kIOError", "[runtime]") {
  TempDir dir;
  const std::string path = dir.File("missing/model.npz");
  Status s = WriteNpz(path, SampleCheckpoint(3).state);
  CHECK(s.code() == StatusCode::kIOError);
  CHECK_THAT(s.message(), Catch::Contains(path));
  CHECK_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace mrtrain::runtime

namespace mrtrain::runtime {
namespace {

// The archive's bytes are pinned: members are pulled through a callback source (so that the final
// model streams them from its file), and this is what libzip wrote from whole buffers before.
TEST_CASE("WriteNpz writes the bytes the whole-buffer writer wrote", "[runtime]") {
  TempDir dir;
  REQUIRE(WriteNpz(dir.File("model.npz"), SampleCheckpoint(3).state).ok());
  const std::string bytes = TempDir::Read(dir.File("model.npz"));
  CHECK(bytes.size() == 5506);
  CHECK(Crc32c(bytes.data(), bytes.size()) == 0x3d4981b4u);
}

TEST_CASE("WriteNpzMembers stops at a member's read error and leaves no archive", "[runtime]") {
  TempDir dir;
  NpzMember member;
  member.name = "w.npy";
  member.header = NpyHeaderF32({1 << 20}).value();
  member.bytes = 4 << 20;
  member.read = [](uint64_t offset, void* out, size_t n) {
    if (offset >= (1 << 20))
      return IOError("model.mrt: cannot read at byte " + std::to_string(offset));
    std::memset(out, 0, n);
    return Status::Ok();
  };
  const Status s = WriteNpzMembers(dir.File("model.npz"), {member});
  CHECK(s.code() == StatusCode::kIOError);
  CHECK(s.message().rfind("model.mrt: cannot read at byte ", 0) == 0);
  CHECK(Names(dir.path()).empty());
}

}  // namespace
}  // namespace mrtrain::runtime
