#include "runtime/checkpoint/shard_file.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <new>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/base/crc32c.h"
#include "engine/tensor/model_layout.h"
#include "test/runtime/checkpoint/sample_checkpoint.h"
#include "test/testing/temp_dir.h"

// Counts the largest single allocation, so tests can assert that a damaged length never
// sizes an allocation beyond the file it came from (as in checkpoint_test.cc).
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
using mrtrain::testing::SampleCheckpoint;
using mrtrain::testing::TempDir;

uint64_t GetLittleEndian(const std::string& bytes, size_t at, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(bytes[at + i]);
  return v;
}

bool SameFloats(const float* a, const float* b, size_t n) {
  // NOLINTNEXTLINE(bugprone-suspicious-memory-comparison): bytes on purpose, NaNs included
  return n == 0 || std::memcmp(a, b, n * sizeof(float)) == 0;
}

// W1's last block (floats 1000..1023, short), b1's only block (32 floats, short) and b2's
// (3 floats) of the sample, which has block_size 100 and two slots.
const std::vector<ParamKey> kSampleKeys = {ParamKey(0, 10), ParamKey(1, 0), ParamKey(3, 0)};

ShardFile SampleShard() {
  return MakeShardFile(SampleCheckpoint(3).state, kSampleKeys, 3, 1, 4, "job-fingerprint-1");
}

// Offsets of the sample shard file's fields, from FORMAT.md.
constexpr size_t kStepAt = 20, kShardAt = 28, kNumShardsAt = 32, kFingerprintAt = 36;
constexpr size_t kNumSlotsAt = kFingerprintAt + 4 + 17;  // "job-fingerprint-1"
constexpr size_t kKeyCountAt = kNumSlotsAt + 4;
constexpr size_t kValueCountAt = kKeyCountAt + 4 + 3 * sizeof(uint64_t);

bool SameShard(const ShardFile& a, const ShardFile& b) {
  return a.epochs_done == b.epochs_done && a.step == b.step && a.shard == b.shard &&
         a.num_shards == b.num_shards && a.fingerprint == b.fingerprint &&
         a.num_slots == b.num_slots && a.keys == b.keys && a.values.size() == b.values.size() &&
         SameFloats(a.values.data(), b.values.data(), a.values.size());
}

// Reads `bytes` as a shard file; `largest` gets the largest allocation made meanwhile.
Result<ShardFile> ReadShardBytes(const TempDir& dir, const std::string& bytes, size_t* largest) {
  // A fresh file each time: rewriting a truncated file in place makes ext4 flush it on close.
  std::filesystem::remove(dir.File("damaged.mrts"));
  const std::string path = dir.Write("damaged.mrts", bytes);
  largest_allocation = 0;
  Result<ShardFile> result = ReadShardFile(path);
  *largest = largest_allocation;
  return result;
}

CheckpointManifest SampleManifest() {
  const Checkpoint c = SampleCheckpoint(3);
  CheckpointManifest m;
  m.epochs_done = c.epochs_done;
  m.step = c.state.step;
  m.fingerprint = c.fingerprint;
  m.model_type = c.model_type;
  m.update_rule = c.update_rule;
  m.model_params = c.model_params;
  m.data_shape = c.data_shape;
  m.tensors = c.state.layout->specs();
  m.block_size = c.state.layout->block_size();
  m.num_slots = 2;
  m.shards = {{"ckpt-000003/shard-00000-of-00002.mrts", 12345, 0xdeadbeef},
              {"ckpt-000003/shard-00001-of-00002.mrts", 678, 0x01020304}};
  return m;
}

bool SameManifest(const CheckpointManifest& a, const CheckpointManifest& b) {
  bool same = a.epochs_done == b.epochs_done && a.step == b.step &&
              a.fingerprint == b.fingerprint && a.model_type == b.model_type &&
              a.update_rule == b.update_rule &&
              a.model_params.values() == b.model_params.values() &&
              a.data_shape.num_features == b.data_shape.num_features &&
              a.data_shape.num_classes == b.data_shape.num_classes &&
              a.data_shape.is_sparse == b.data_shape.is_sparse && a.block_size == b.block_size &&
              a.num_slots == b.num_slots && a.tensors.size() == b.tensors.size() &&
              a.shards.size() == b.shards.size();
  for (size_t t = 0; same && t < a.tensors.size(); ++t) {
    same = a.tensors[t].name == b.tensors[t].name && a.tensors[t].shape == b.tensors[t].shape &&
           a.tensors[t].role == b.tensors[t].role;
  }
  for (size_t i = 0; same && i < a.shards.size(); ++i) {
    same = a.shards[i].name == b.shards[i].name && a.shards[i].bytes == b.shards[i].bytes &&
           a.shards[i].crc32c == b.shards[i].crc32c;
  }
  return same;
}

TEST_CASE("a shard file holds each block's parameters, then each slot's part of it", "[runtime]") {
  const Checkpoint c = SampleCheckpoint(3);
  // Keys in any order come out ascending.
  const ShardFile s =
      MakeShardFile(c.state, {ParamKey(3, 0), ParamKey(0, 10), ParamKey(1, 0)}, 3, 1, 4, "f");
  CHECK(s.keys == kSampleKeys);
  CHECK(s.epochs_done == 3);
  CHECK(s.step == 3001);
  CHECK(s.shard == 1);
  CHECK(s.num_shards == 4);
  CHECK(s.fingerprint == "f");
  CHECK(s.num_slots == 2);
  REQUIRE(s.values.size() == size_t{24 + 32 + 3} * 3);
  const float* v = s.values.data();
  // W1's last block is floats 1000..1023: short, as the layout cuts it.
  CHECK(SameFloats(v, c.state.tensors[0].data() + 1000, 24));
  CHECK(SameFloats(v + 24, c.state.slots[0][0].data() + 1000, 24));
  CHECK(SameFloats(v + 48, c.state.slots[1][0].data() + 1000, 24));
  CHECK(SameFloats(v + 72, c.state.tensors[1].data(), 32));
  CHECK(SameFloats(v + 104, c.state.slots[0][1].data(), 32));
  CHECK(SameFloats(v + 136, c.state.slots[1][1].data(), 32));
  CHECK(SameFloats(v + 168, c.state.tensors[3].data(), 3));
  CHECK(SameFloats(v + 171, c.state.slots[0][3].data(), 3));
  CHECK(SameFloats(v + 174, c.state.slots[1][3].data(), 3));

  SECTION("without slots, only parameters") {
    Checkpoint plain = SampleCheckpoint(3);
    plain.state.slots.clear();
    const ShardFile p = MakeShardFile(plain.state, kSampleKeys, 3, 1, 4, "f");
    CHECK(p.num_slots == 0);
    REQUIRE(p.values.size() == 24 + 32 + 3);
    CHECK(SameFloats(p.values.data() + 24, c.state.tensors[1].data(), 32));
  }
}

TEST_CASE("a shard file reads back exactly as written", "[runtime]") {
  TempDir dir;
  const ShardFile written = SampleShard();
  // The directories are created: hosts write into a shared directory nobody prepared.
  const std::string path = dir.File("ckpts/ckpt-000003/shard-00001-of-00004.mrts");
  Result<ShardFileInfo> info = WriteShardFile(path, written);
  REQUIRE(info.ok());
  const std::string bytes = TempDir::Read(path);
  CHECK(info->name == path);
  CHECK(info->bytes == bytes.size());
  CHECK(info->crc32c == GetLittleEndian(bytes, bytes.size() - 4, 4));

  Result<ShardFile> read = ReadShardFile(path);
  REQUIRE(read.ok());
  CHECK(SameShard(written, *read));
  Result<ShardFile> checked = ReadShardFile(path, *info);
  REQUIRE(checked.ok());
  CHECK(SameShard(written, *checked));

  SECTION("a shard that owns no block") {
    const ShardFile empty = MakeShardFile(SampleCheckpoint(3).state, {}, 3, 0, 1, "");
    REQUIRE(WriteShardFile(dir.File("empty.mrts"), empty).ok());
    Result<ShardFile> back = ReadShardFile(dir.File("empty.mrts"));
    REQUIRE(back.ok());
    CHECK(SameShard(empty, *back));
  }
}

TEST_CASE("the shard file has the documented preamble, fields and trailer", "[runtime]") {
  TempDir dir;
  const std::string path = dir.File("s.mrts");
  REQUIRE(WriteShardFile(path, SampleShard()).ok());
  const std::string bytes = TempDir::Read(path);
  CHECK(bytes.substr(0, 8) == std::string("MRTSHRD\0", 8));
  CHECK(GetLittleEndian(bytes, 8, 4) == 1);   // format version
  CHECK(GetLittleEndian(bytes, 12, 8) == 3);  // epochs_done
  CHECK(GetLittleEndian(bytes, kStepAt, 8) == 3001);
  CHECK(GetLittleEndian(bytes, kShardAt, 4) == 1);
  CHECK(GetLittleEndian(bytes, kNumShardsAt, 4) == 4);
  CHECK(GetLittleEndian(bytes, kFingerprintAt, 4) == 17);
  CHECK(bytes.substr(kFingerprintAt + 4, 17) == "job-fingerprint-1");
  CHECK(GetLittleEndian(bytes, kNumSlotsAt, 4) == 2);
  CHECK(GetLittleEndian(bytes, kKeyCountAt, 4) == 3);
  CHECK(GetLittleEndian(bytes, kKeyCountAt + 4, 8) == ParamKey(0, 10).packed());
  CHECK(GetLittleEndian(bytes, kValueCountAt, 8) == 177);
  // Floats are stored as their little-endian bytes.
  const ShardFile s = SampleShard();
  CHECK(SameFloats(reinterpret_cast<const float*>(bytes.data() + kValueCountAt + 8),
                   s.values.data(), s.values.size()));
  CHECK(kValueCountAt + 8 + 177 * sizeof(float) + 12 == bytes.size());
  CHECK(GetLittleEndian(bytes, bytes.size() - 12, 8) == bytes.size());
  CHECK(GetLittleEndian(bytes, bytes.size() - 4, 4) == Crc32c(bytes.data(), bytes.size() - 4));
}

TEST_CASE("every truncation and every flipped byte of a shard file is corruption naming it",
          "[runtime]") {
  TempDir dir;
  REQUIRE(WriteShardFile(dir.File("good.mrts"), SampleShard()).ok());
  const std::string good = TempDir::Read(dir.File("good.mrts"));
  for (size_t length = 0; length < good.size(); ++length) {
    size_t largest = 0;
    Result<ShardFile> read = ReadShardBytes(dir, good.substr(0, length), &largest);
    INFO("length " << length);
    REQUIRE_FALSE(read.ok());
    CHECK(read.status().code() == StatusCode::kCorruption);
    CHECK_THAT(read.status().message(),
               Catch::StartsWith(dir.File("damaged.mrts") + ": truncated at byte " +
                                 std::to_string(length) + ":"));
    CHECK(largest <= good.size());
  }
  for (size_t offset = 0; offset < good.size(); ++offset) {
    for (uint8_t flip : {0x01, 0x80}) {
      std::string bad = good;
      bad[offset] = static_cast<char>(bad[offset] ^ flip);
      size_t largest = 0;
      Result<ShardFile> read = ReadShardBytes(dir, bad, &largest);
      INFO("offset " << offset << " flip " << int{flip});
      REQUIRE_FALSE(read.ok());
      CHECK(read.status().code() == StatusCode::kCorruption);
      CHECK_THAT(read.status().message(), Catch::StartsWith(dir.File("damaged.mrts") + ": "));
      CHECK(largest <= good.size());
    }
  }
}

TEST_CASE("a damaged length or field in a resealed shard file fails without a large allocation",
          "[runtime]") {
  TempDir dir;
  REQUIRE(WriteShardFile(dir.File("good.mrts"), SampleShard()).ok());
  const std::string good = TempDir::Read(dir.File("good.mrts"));
  struct Damage {
    const char* what;
    size_t offset;
    uint64_t value;
    int width;
  };
  const Damage damages[] = {
      {"negative step", kStepAt, static_cast<uint64_t>(-1), 8},
      {"shard index past num_shards", kShardAt, 4, 4},
      {"no shards", kNumShardsAt, 0, 4},
      {"num_shards past int32", kNumShardsAt, 0x80000000, 4},
      {"fingerprint length", kFingerprintAt, 0xFFFFFFFF, 4},
      {"num_slots past int32", kNumSlotsAt, 0xFFFFFFFF, 4},
      {"key count", kKeyCountAt, 0xFFFFFFFF, 4},
      {"keys out of order", kKeyCountAt + 4, ParamKey(3, 0).packed(), 8},
      {"value count", kValueCountAt, 0x7FFFFFFFFFFFFFFF, 8},
      {"value count short by one", kValueCountAt, 176, 8},
  };
  for (const Damage& d : damages) {
    std::string bad = good;
    PutLittleEndian(&bad, d.offset, d.value, d.width);
    Reseal(&bad);
    size_t largest = 0;
    Result<ShardFile> read = ReadShardBytes(dir, bad, &largest);
    INFO(d.what);
    REQUIRE_FALSE(read.ok());
    INFO(read.status().ToString());
    CHECK(read.status().code() == StatusCode::kCorruption);
    CHECK(largest <= good.size());
  }
}

TEST_CASE("a shard file that differs from what the manifest records is corruption", "[runtime]") {
  TempDir dir;
  const std::string path = dir.File("s.mrts");
  Result<ShardFileInfo> info = WriteShardFile(path, SampleShard());
  REQUIRE(info.ok());
  SECTION("in size") {
    ShardFileInfo expected = *info;
    expected.bytes += 4;
    Result<ShardFile> read = ReadShardFile(path, expected);
    REQUIRE_FALSE(read.ok());
    CHECK(read.status().code() == StatusCode::kCorruption);
    CHECK(read.status().message() == path + ": has " + std::to_string(info->bytes) +
                                         " bytes, but the manifest records " +
                                         std::to_string(expected.bytes));
  }
  SECTION("in CRC: a sound file, but not the one the host reported") {
    ShardFileInfo expected = *info;
    expected.crc32c ^= 1;
    Result<ShardFile> read = ReadShardFile(path, expected);
    REQUIRE_FALSE(read.ok());
    CHECK(read.status().code() == StatusCode::kCorruption);
    CHECK_THAT(read.status().message(), Catch::StartsWith(path + ": its CRC32C is 0x") &&
                                            Catch::Contains("but the manifest records 0x"));
  }
}

// Rewrites the format version of file `name` in `dir` as a newer build would have written it.
void MakeNewer(const TempDir& dir, const std::string& name) {
  std::string bytes = TempDir::Read(dir.File(name));
  PutLittleEndian(&bytes, 8, 3, 4);  // newer than every format this build reads
  Reseal(&bytes);
  std::filesystem::remove(dir.File(name));
  dir.Write(name, bytes);
}

TEST_CASE("a shard file or manifest of a newer format is refused, not corruption", "[runtime]") {
  TempDir dir;
  REQUIRE(WriteShardFile(dir.File("s.mrts"), SampleShard()).ok());
  REQUIRE(WriteManifestFile(dir.File("m.manifest"), SampleManifest()).ok());
  MakeNewer(dir, "s.mrts");
  MakeNewer(dir, "m.manifest");
  const Status shard = ReadShardFile(dir.File("s.mrts")).status();
  CHECK(shard.code() == StatusCode::kFailedPrecondition);
  CHECK(shard.message() == dir.File("s.mrts") +
                               ": written in checkpoint shard format version 3, but this build "
                               "reads versions up to 1; resume with a newer mrtrain");
  const Status manifest = ReadManifestFile(dir.File("m.manifest")).status();
  CHECK(manifest.code() == StatusCode::kFailedPrecondition);
  CHECK(manifest.message() == dir.File("m.manifest") +
                                  ": written in checkpoint manifest format version 3, but this "
                                  "build reads versions up to 2; resume with a newer mrtrain");
}

TEST_CASE("files of the wrong kind are not read as shard files or manifests", "[runtime]") {
  TempDir dir;
  REQUIRE(WriteShardFile(dir.File("s.mrts"), SampleShard()).ok());
  REQUIRE(WriteManifestFile(dir.File("m.manifest"), SampleManifest()).ok());
  Result<CheckpointManifest> manifest = ReadManifestFile(dir.File("s.mrts"));
  REQUIRE_FALSE(manifest.ok());
  CHECK(manifest.status().code() == StatusCode::kCorruption);
  CHECK_THAT(manifest.status().message(), Catch::Contains("not an mrtrain checkpoint manifest"));
  Result<ShardFile> shard = ReadShardFile(dir.File("m.manifest"));
  REQUIRE_FALSE(shard.ok());
  CHECK(shard.status().code() == StatusCode::kCorruption);
  CHECK_THAT(shard.status().message(), Catch::Contains("not an mrtrain checkpoint shard"));
  Result<ShardFile> missing = ReadShardFile(dir.File("nope.mrts"));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == StatusCode::kNotFound);
}

TEST_CASE("an inconsistent shard file is refused before anything is written", "[runtime]") {
  TempDir dir;
  ShardFile s = SampleShard();
  SECTION("keys out of order") { std::swap(s.keys[0], s.keys[1]); }
  SECTION("a repeated key") { s.keys[1] = s.keys[0]; }
  SECTION("a shard index out of range") { s.shard = 4; }
  SECTION("a negative step") { s.step = -1; }
  Result<ShardFileInfo> info = WriteShardFile(dir.File("sub/s.mrts"), s);
  REQUIRE_FALSE(info.ok());
  CHECK(info.status().code() == StatusCode::kInternal);
  CHECK_THAT(info.status().message(), Catch::Contains(dir.File("sub/s.mrts")));
  CHECK_FALSE(std::filesystem::exists(dir.File("sub")));
}

TEST_CASE("a manifest reads back exactly as written", "[runtime]") {
  TempDir dir;
  const CheckpointManifest written = SampleManifest();
  REQUIRE(WriteManifestFile(dir.File("m.manifest"), written).ok());
  const std::string bytes = TempDir::Read(dir.File("m.manifest"));
  CHECK(bytes.substr(0, 8) == std::string("MRTMNFT\0", 8));
  CHECK(GetLittleEndian(bytes, 8, 4) == 1);
  CHECK(GetLittleEndian(bytes, 12, 8) == 3);
  Result<CheckpointManifest> read = ReadManifestFile(dir.File("m.manifest"));
  REQUIRE(read.ok());
  CHECK(SameManifest(written, *read));
  CHECK(read->model_params.GetString("activation", "") == "relu");
  CHECK(read->tensors[1].role == api::TensorSpec::Role::kBias);
}

TEST_CASE("every truncation and flipped byte of a manifest is corruption naming it", "[runtime]") {
  TempDir dir;
  REQUIRE(WriteManifestFile(dir.File("good.manifest"), SampleManifest()).ok());
  const std::string good = TempDir::Read(dir.File("good.manifest"));
  const std::string path = dir.File("damaged.manifest");
  auto read_bytes = [&](const std::string& bytes) {
    std::filesystem::remove(path);
    dir.Write("damaged.manifest", bytes);
    return ReadManifestFile(path);
  };
  for (size_t offset = 0; offset < good.size(); ++offset) {
    INFO("offset " << offset);
    Result<CheckpointManifest> cut = read_bytes(good.substr(0, offset));
    REQUIRE_FALSE(cut.ok());
    CHECK(cut.status().code() == StatusCode::kCorruption);
    CHECK_THAT(cut.status().message(), Catch::StartsWith(path + ": "));
    std::string bad = good;
    bad[offset] = static_cast<char>(bad[offset] ^ 0x20);
    Result<CheckpointManifest> flipped = read_bytes(bad);
    REQUIRE_FALSE(flipped.ok());
    CHECK(flipped.status().code() == StatusCode::kCorruption);
  }
}

TEST_CASE("a manifest only names shard files inside the checkpoint directory", "[runtime]") {
  TempDir dir;
  CheckpointManifest m = SampleManifest();
  SECTION("the writer refuses anything else") {
    for (const char* name : {"", "/etc/passwd", "../x.mrts", "a/../../x", "a//b", "a/./b", "a/"}) {
      m.shards[0].name = name;
      const Status s = WriteManifestFile(dir.File("m.manifest"), m);
      INFO(name);
      CHECK(s.code() == StatusCode::kInternal);
    }
    CHECK_FALSE(std::filesystem::exists(dir.File("m.manifest")));
  }
  SECTION("the reader too, behind a valid checksum") {
    m.shards[0].name = "ab/x.mrts";
    REQUIRE(WriteManifestFile(dir.File("m.manifest"), m).ok());
    std::string bytes = TempDir::Read(dir.File("m.manifest"));
    const size_t at = bytes.find("ab/x.mrts");
    REQUIRE(at != std::string::npos);
    bytes.replace(at, 2, "..");
    Reseal(&bytes);
    std::filesystem::remove(dir.File("m.manifest"));
    Result<CheckpointManifest> read = ReadManifestFile(dir.Write("m.manifest", bytes));
    REQUIRE_FALSE(read.ok());
    CHECK(read.status().code() == StatusCode::kCorruption);
    CHECK_THAT(read.status().message(), Catch::Contains("not a relative path inside"));
  }
}

TEST_CASE("an inconsistent manifest is refused before anything is written", "[runtime]") {
  TempDir dir;
  CheckpointManifest m = SampleManifest();
  SECTION("no shard files") { m.shards.clear(); }
  SECTION("no tensors") { m.tensors.clear(); }
  SECTION("a dimension below 1") { m.tensors[2].shape[1] = 0; }
  SECTION("negative slots") { m.num_slots = -1; }
  SECTION("a negative epoch") { m.epochs_done = -1; }
  const Status s = WriteManifestFile(dir.File("m.manifest"), m);
  CHECK(s.code() == StatusCode::kInternal);
  CHECK_FALSE(std::filesystem::exists(dir.File("m.manifest")));
}

}  // namespace
}  // namespace mrtrain::runtime
