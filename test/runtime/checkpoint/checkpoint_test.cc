#include "runtime/checkpoint/checkpoint.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/base/crc32c.h"
#include "engine/tensor/model_layout.h"
#include "test/runtime/checkpoint/sample_checkpoint.h"
#include "test/testing/temp_dir.h"

// Counts the largest single allocation, so tests can assert that a damaged length never
// sizes an allocation beyond the file it came from. Replaces every non-aligned form of the
// global operator new and delete for this test binary, all over malloc and free, so that
// sanitizers see matching pairs.
namespace {

std::atomic<size_t> largest_allocation{0};

void* CountedAllocation(size_t n) noexcept {
  size_t seen = largest_allocation.load(std::memory_order_relaxed);
  while (n > seen && !largest_allocation.compare_exchange_weak(seen, n)) {
  }
  return std::malloc(n == 0 ? 1 : n);
}

void* CountedAllocationOrThrow(size_t n) {
  if (void* p = CountedAllocation(n)) return p;
  throw std::bad_alloc();
}

}  // namespace

void* operator new(size_t n) { return CountedAllocationOrThrow(n); }
void* operator new[](size_t n) { return CountedAllocationOrThrow(n); }
void* operator new(size_t n, const std::nothrow_t&) noexcept { return CountedAllocation(n); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return CountedAllocation(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace mrtrain::runtime {
namespace {

using mrtrain::testing::PutLittleEndian;
using mrtrain::testing::Reseal;
using mrtrain::testing::SameCheckpoint;
using mrtrain::testing::SampleCheckpoint;
using mrtrain::testing::TempDir;

uint64_t GetLittleEndian(const std::string& bytes, size_t at, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(bytes[at + i]);
  return v;
}

// Where the u32 length of string `s` starts in the file.
size_t FindString(const std::string& bytes, const std::string& s) {
  std::string encoded(4, '\0');
  PutLittleEndian(&encoded, 0, s.size(), 4);
  const size_t at = bytes.find(encoded + s);
  REQUIRE(at != std::string::npos);
  return at;
}

// The layout of the sample file, found from its strings rather than hard-coded.
struct SampleOffsets {
  size_t fingerprint, hyperparameter_count, block_size, tensor_count, w1_name, w1_rank, w1_dim0,
      w1_data, slot_count;
};

SampleOffsets Locate(const std::string& bytes) {
  SampleOffsets o;
  o.fingerprint = FindString(bytes, "job-fingerprint-1");
  o.hyperparameter_count = FindString(bytes, "adam") + 4 + 4;
  o.w1_name = FindString(bytes, "W1");
  o.tensor_count = o.w1_name - 4;
  o.block_size = o.tensor_count - 8;
  o.w1_rank = o.w1_name + 4 + 2 + 1;
  o.w1_dim0 = o.w1_rank + 4;
  o.w1_data = o.w1_dim0 + 2 * sizeof(int64_t);
  const size_t slot_bytes = (32 * 32 + 32 + 32 * 3 + 3) * sizeof(float);
  o.slot_count = bytes.size() - 12 - 2 * slot_bytes - 4;
  return o;
}

std::string WriteSample(const TempDir& dir, const std::string& name) {
  const std::string path = dir.File(name);
  REQUIRE(WriteCheckpointFile(path, SampleCheckpoint(3)).ok());
  return TempDir::Read(path);
}

// Reads `bytes` as a checkpoint file; `largest` gets the largest allocation made meanwhile.
Result<Checkpoint> ReadBytes(const TempDir& dir, const std::string& bytes, size_t* largest) {
  // A fresh file each time: rewriting a truncated file in place makes ext4 flush it on
  // close (auto_da_alloc), which would slow these loops a hundredfold.
  std::filesystem::remove(dir.File("damaged.mrt"));
  const std::string path = dir.Write("damaged.mrt", bytes);
  largest_allocation = 0;
  Result<Checkpoint> result = ReadCheckpointFile(path);
  *largest = largest_allocation;
  return result;
}

std::vector<std::string> Names(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Offsets to damage: every byte of the header and tensor table, then a sample of the data,
// then every byte of the trailer.
std::vector<size_t> SampledOffsets(size_t size) {
  std::vector<size_t> offsets;
  for (size_t i = 0; i < size; ++i) {
    if (i < 400 || i % 37 == 0 || i + 24 >= size) offsets.push_back(i);
  }
  return offsets;
}

TEST_CASE("a checkpoint reads back exactly as written", "[runtime]") {
  TempDir dir;
  SECTION("a full checkpoint") {
    const Checkpoint written = SampleCheckpoint(3);
    REQUIRE(WriteCheckpointFile(dir.File("a.mrt"), written).ok());
    Result<Checkpoint> read = ReadCheckpointFile(dir.File("a.mrt"));
    REQUIRE(read.ok());
    std::string why;
    const bool same = SameCheckpoint(written, *read, &why);
    INFO(why);
    CHECK(same);
    CHECK(read->state.layout->block_size() == 100);
    CHECK(read->state.layout->specs()[1].role == api::TensorSpec::Role::kBias);
    CHECK(read->model_params.GetString("activation", "") == "relu");

    // Writing what was read gives the same bytes: nothing is lost or reordered.
    REQUIRE(WriteCheckpointFile(dir.File("b.mrt"), *read).ok());
    CHECK(TempDir::Read(dir.File("a.mrt")) == TempDir::Read(dir.File("b.mrt")));
  }
  SECTION("no hyperparameters, no slots, empty strings") {
    Checkpoint written = SampleCheckpoint(0);
    written.model_params = api::Hyperparameters();
    written.state.slots.clear();
    written.fingerprint.clear();
    written.data_shape = api::DataShape();
    REQUIRE(WriteCheckpointFile(dir.File("c.mrt"), written).ok());
    Result<Checkpoint> read = ReadCheckpointFile(dir.File("c.mrt"));
    REQUIRE(read.ok());
    std::string why;
    const bool same = SameCheckpoint(written, *read, &why);
    INFO(why);
    CHECK(same);
  }
}

TEST_CASE("the file has the documented preamble, header and trailer", "[runtime]") {
  TempDir dir;
  const std::string bytes = WriteSample(dir, "ckpt-000003.mrt");
  REQUIRE(bytes.size() > 24);
  CHECK(bytes.substr(0, 8) == std::string("MRTCKPT\0", 8));
  CHECK(GetLittleEndian(bytes, 8, 4) == 1);      // format version
  CHECK(GetLittleEndian(bytes, 12, 8) == 3);     // epochs_done
  CHECK(GetLittleEndian(bytes, 20, 8) == 3001);  // step
  CHECK(GetLittleEndian(bytes, 28, 4) == 17);    // fingerprint length
  CHECK(bytes.substr(32, 17) == "job-fingerprint-1");
  CHECK(GetLittleEndian(bytes, bytes.size() - 12, 8) == bytes.size());
  CHECK(GetLittleEndian(bytes, bytes.size() - 4, 4) == Crc32c(bytes.data(), bytes.size() - 4));

  const SampleOffsets o = Locate(bytes);
  CHECK(GetLittleEndian(bytes, o.hyperparameter_count, 4) == 3);
  CHECK(GetLittleEndian(bytes, o.block_size, 8) == 100);
  CHECK(GetLittleEndian(bytes, o.tensor_count, 4) == 4);
  CHECK(GetLittleEndian(bytes, o.w1_rank, 4) == 2);
  CHECK(GetLittleEndian(bytes, o.w1_dim0, 8) == 32);
  CHECK(GetLittleEndian(bytes, o.slot_count, 4) == 2);
  // Floats are stored as their little-endian bytes.
  const Checkpoint sample = SampleCheckpoint(3);
  // NOLINTNEXTLINE(bugprone-suspicious-memory-comparison): bytes on purpose, NaNs included
  CHECK(std::memcmp(bytes.data() + o.w1_data, sample.state.tensors[0].data(), 4096) == 0);
}

TEST_CASE("every single-byte corruption is detected", "[runtime]") {
  TempDir dir;
  const std::string good = WriteSample(dir, "good.mrt");
  for (size_t offset : SampledOffsets(good.size())) {
    for (uint8_t flip : {0x01, 0x80, 0xff}) {
      std::string bad = good;
      bad[offset] = static_cast<char>(bad[offset] ^ flip);
      size_t largest = 0;
      Result<Checkpoint> read = ReadBytes(dir, bad, &largest);
      INFO("offset " << offset << " flip " << int{flip});
      REQUIRE_FALSE(read.ok());
      // Even in the version field: the checksum tells damage from a newer format.
      CHECK(read.status().code() == StatusCode::kCorruption);
      CHECK(largest <= good.size());
    }
  }
}

TEST_CASE("a checksum mismatch names the stored and computed CRC", "[runtime]") {
  TempDir dir;
  std::string bytes = WriteSample(dir, "good.mrt");
  bytes[Locate(bytes).w1_data + 10] ^= 0x10;
  const std::string path = dir.Write("ckpt-000003.mrt", bytes);
  Result<Checkpoint> read = ReadCheckpointFile(path);
  REQUIRE_FALSE(read.ok());
  CHECK(read.status().code() == StatusCode::kCorruption);
  CHECK_THAT(read.status().message(), Catch::StartsWith(path + ": checksum mismatch (stored 0x") &&
                                          Catch::Contains(", computed 0x"));
}

TEST_CASE("every truncation is detected and says where the file ends", "[runtime]") {
  TempDir dir;
  const std::string good = WriteSample(dir, "good.mrt");
  for (size_t length : SampledOffsets(good.size())) {
    size_t largest = 0;
    Result<Checkpoint> read = ReadBytes(dir, good.substr(0, length), &largest);
    INFO("length " << length);
    REQUIRE_FALSE(read.ok());
    CHECK(read.status().code() == StatusCode::kCorruption);
    CHECK_THAT(read.status().message(),
               Catch::Contains("truncated at byte " + std::to_string(length) + ":"));
    CHECK(largest <= good.size());
  }

  SECTION("inside a tensor, the message names the tensor and the bytes expected") {
    const size_t data = Locate(good).w1_data;
    const std::string path = dir.Write("ckpt-000003.mrt", good.substr(0, data + 100));
    Result<Checkpoint> read = ReadCheckpointFile(path);
    REQUIRE_FALSE(read.ok());
    CHECK(read.status().message() == path + ": truncated at byte " + std::to_string(data + 100) +
                                         ": expected 4096 bytes of tensor 'W1' at byte " +
                                         std::to_string(data));
  }
}

TEST_CASE("a corrupted length or count fails cleanly without a large allocation", "[runtime]") {
  TempDir dir;
  const std::string good = WriteSample(dir, "good.mrt");
  const SampleOffsets o = Locate(good);
  struct Damage {
    const char* what;
    size_t offset;
    uint64_t value;
    int width;
  };
  const Damage damages[] = {
      {"fingerprint length", o.fingerprint, 0xFFFFFFFF, 4},
      {"hyperparameter count", o.hyperparameter_count, 0xFFFFFFFF, 4},
      {"block_size", o.block_size, 0, 8},
      {"block_size past the limit", o.block_size, 0x7FFFFFFFFFFFFFFF, 8},
      {"tensor count", o.tensor_count, 0xFFFFFFFF, 4},
      {"tensor count past the layout limit", o.tensor_count, 70000, 4},
      {"tensor name length", o.w1_name, 0xFFFFFFFF, 4},
      {"rank", o.w1_rank, 0xFFFFFFFF, 4},
      {"dimension", o.w1_dim0, 0x7FFFFFFFFFFFFFFF, 8},
      {"negative dimension", o.w1_dim0, static_cast<uint64_t>(-1), 8},
      {"slot count", o.slot_count, 0xFFFFFFFF, 4},
  };
  for (const Damage& d : damages) {
    // Resealed, the checks behind the checksum must catch it; with the trailer gone, the
    // reader decodes unverified bytes to say where the file ends, and must stay bounded too.
    for (bool reseal : {true, false}) {
      std::string bad = good;
      PutLittleEndian(&bad, d.offset, d.value, d.width);
      if (reseal) {
        Reseal(&bad);
      } else {
        bad.resize(bad.size() - 12);
      }
      size_t largest = 0;
      Result<Checkpoint> read = ReadBytes(dir, bad, &largest);
      INFO(d.what << (reseal ? ", resealed" : ", trailer cut off"));
      REQUIRE_FALSE(read.ok());
      INFO(read.status().ToString());
      CHECK(read.status().code() == StatusCode::kCorruption);
      CHECK(largest <= good.size());
    }
  }
}

TEST_CASE("a block_size past the job spec's limit is corruption, not an overflow", "[runtime]") {
  // Found by test/fuzz:checkpoint_fuzz: ModelLayout::Create computed size + block_size - 1.
  TempDir dir;
  std::string bytes = WriteSample(dir, "good.mrt");
  const SampleOffsets o = Locate(bytes);
  PutLittleEndian(&bytes, o.block_size, 0x7FFFFFFFFFFFFFFF, 8);
  Reseal(&bytes);
  size_t largest = 0;
  Result<Checkpoint> read = ReadBytes(dir, bytes, &largest);
  REQUIRE_FALSE(read.ok());
  CHECK(read.status().code() == StatusCode::kCorruption);
  CHECK(read.status().message() == dir.File("damaged.mrt") + ": block_size at byte " +
                                       std::to_string(o.block_size) +
                                       " is 9223372036854775807, more than the limit of "
                                       "1073741824");
}

TEST_CASE("a newer format version is refused naming both versions", "[runtime]") {
  TempDir dir;
  std::string bytes = WriteSample(dir, "good.mrt");
  PutLittleEndian(&bytes, 8, 3, 4);
  Reseal(&bytes);  // as a newer build would have written it
  const std::string path = dir.Write("ckpt-000003.mrt", bytes);
  Result<Checkpoint> read = ReadCheckpointFile(path);
  REQUIRE_FALSE(read.ok());
  CHECK(read.status().code() == StatusCode::kFailedPrecondition);
  CHECK(read.status().message() ==
        path +
            ": written in checkpoint format version 3, but this build reads versions up to 2; "
            "resume with a newer mrtrain");

  SECTION("a damaged version field is corruption, not a newer format") {
    PutLittleEndian(&bytes, 8, 0x81, 4);  // the checksum no longer matches
    Result<Checkpoint> damaged = ReadCheckpointFile(dir.Write("damaged.mrt", bytes));
    REQUIRE_FALSE(damaged.ok());
    CHECK(damaged.status().code() == StatusCode::kCorruption);
    CHECK_THAT(damaged.status().message(), Catch::Contains("checksum mismatch"));
  }
  SECTION("a newer file cut short is still a newer format") {
    Result<Checkpoint> cut = ReadCheckpointFile(dir.Write("cut.mrt", bytes.substr(0, 100)));
    REQUIRE_FALSE(cut.ok());
    CHECK(cut.status().code() == StatusCode::kFailedPrecondition);
  }
  PutLittleEndian(&bytes, 8, 0, 4);
  Reseal(&bytes);
  Result<Checkpoint> zero = ReadCheckpointFile(dir.Write("zero.mrt", bytes));
  REQUIRE_FALSE(zero.ok());
  CHECK(zero.status().code() == StatusCode::kCorruption);
}

TEST_CASE("files that are not checkpoints are rejected", "[runtime]") {
  TempDir dir;
  Result<Checkpoint> text = ReadCheckpointFile(dir.Write("notes.mrt", "hello, world\n"));
  REQUIRE_FALSE(text.ok());
  CHECK(text.status().code() == StatusCode::kCorruption);
  CHECK_THAT(text.status().message(), Catch::Contains("not an mrtrain checkpoint"));

  Result<Checkpoint> missing = ReadCheckpointFile(dir.File("nope.mrt"));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == StatusCode::kNotFound);

  Result<Checkpoint> directory = ReadCheckpointFile(dir.path());
  REQUIRE_FALSE(directory.ok());
  CHECK(directory.status().code() == StatusCode::kIOError);
}

TEST_CASE("an inconsistent state is refused before anything is written", "[runtime]") {
  TempDir dir;
  Checkpoint c = SampleCheckpoint(3);
  SECTION("a tensor of the wrong size") {
    c.state.tensors[1].pop_back();
    Status s = WriteCheckpointFile(dir.File("x.mrt"), c);
    CHECK(s.code() == StatusCode::kInternal);
    CHECK_THAT(s.message(), Catch::Contains("'b1'"));
  }
  SECTION("a slot of the wrong size") {
    c.state.slots[1][3].push_back(0);
    CHECK(WriteCheckpointFile(dir.File("x.mrt"), c).code() == StatusCode::kInternal);
  }
  SECTION("no layout") {
    c.state.layout = nullptr;
    CHECK(WriteCheckpointFile(dir.File("x.mrt"), c).code() == StatusCode::kInternal);
  }
  SECTION("a block_size the reader would refuse") {
    c.state.layout = std::make_shared<const ModelLayout>(
        ModelLayout::Create(c.state.layout->specs(), (int64_t{1} << 30) + 1).value());
    CHECK(WriteCheckpointFile(dir.File("x.mrt"), c).code() == StatusCode::kInternal);
  }
  CHECK(Names(dir.path()).empty());
}

// The file-size limit makes write() fail with EFBIG part-way through, like a full disk,
// without needing privileges. SIGXFSZ is ignored meanwhile so the failure is an error code.
Status WriteWithFileSizeLimit(const std::string& path, const Checkpoint& c, rlim_t limit) {
  struct rlimit saved;
  REQUIRE(getrlimit(RLIMIT_FSIZE, &saved) == 0);
  struct rlimit lowered = saved;
  lowered.rlim_cur = limit;
  auto old_handler = signal(SIGXFSZ, SIG_IGN);
  REQUIRE(setrlimit(RLIMIT_FSIZE, &lowered) == 0);
  Status s = WriteCheckpointFile(path, c);
  REQUIRE(setrlimit(RLIMIT_FSIZE, &saved) == 0);
  signal(SIGXFSZ, old_handler);
  return s;
}

TEST_CASE("a failed write leaves the previous file and no temporary file", "[runtime]") {
  TempDir dir;
  const std::string path = dir.File("ckpt.mrt");
  REQUIRE(WriteCheckpointFile(path, SampleCheckpoint(1)).ok());
  const std::string before = TempDir::Read(path);

  SECTION("the file system refuses to grow the file part-way through") {
    Status s = WriteWithFileSizeLimit(path, SampleCheckpoint(2), 4096);
    CHECK(s.code() == StatusCode::kIOError);
    CHECK_THAT(s.message(), Catch::Contains(path) && Catch::Contains(std::strerror(EFBIG)));
  }
  SECTION("the target is a directory, so the rename fails") {
    const std::string target = dir.File("sub");
    dir.Write("sub/keep", "x");
    Status s = WriteCheckpointFile(target, SampleCheckpoint(2));
    CHECK(s.code() == StatusCode::kIOError);
    CHECK_THAT(s.message(), Catch::Contains(target));
    CHECK(std::filesystem::is_directory(target));
  }
  SECTION("the directory does not exist") {
    Status s = WriteCheckpointFile(dir.File("missing/ckpt.mrt"), SampleCheckpoint(2));
    CHECK(s.code() == StatusCode::kIOError);
    CHECK_THAT(s.message(), Catch::Contains(dir.File("missing/ckpt.mrt")));
  }
  SECTION("the directory is not writable") {
    if (geteuid() == 0) {
      // root ignores directory permissions; the sections above cover the failure paths.
      WARN("running as root: the permission check cannot fail, skipped");
    } else {
      REQUIRE(chmod(dir.path().c_str(), 0555) == 0);
      Status s = WriteCheckpointFile(path, SampleCheckpoint(2));
      REQUIRE(chmod(dir.path().c_str(), 0755) == 0);
      CHECK(s.code() == StatusCode::kIOError);
      CHECK_THAT(s.message(), Catch::Contains(std::strerror(EACCES)));
    }
  }
  CHECK(TempDir::Read(path) == before);
  for (const std::string& name : Names(dir.path())) {
    CHECK(name.find(".tmp.") == std::string::npos);
  }
}

}  // namespace
}  // namespace mrtrain::runtime
