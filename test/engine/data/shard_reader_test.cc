#include "engine/data/shard_reader.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "engine/data/dataset.h"
#include "engine/data/shard_format.h"
#include "test/engine/data/shard_test_files.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::data {
namespace {

using testing::TempDir;

// A one-partition sparse shard, its bytes and header.
struct OneShard {
  TempDir dir;
  DatasetSpec spec;
  std::string file;
  std::string bytes;
  ShardHeader header;

  OneShard() {
    spec = ConvertForTest(SmallLibsvmForTest(dir.path(), 20, 1), dir.File("s"));
    file = dir.File("s/part-00000.mrs");
    bytes = TempDir::Read(file);
    auto h = ReadShardHeader(bytes, file);
    REQUIRE(h.ok());
    header = *h;
  }

  // Writes `changed` over the shard and loads it as a dataset: the error's message, or "ok".
  // The same comes of borrowing it (cache: disk serves shards in place): CHECKed here.
  std::string LoadWith(const std::string& changed) const {
    dir.Write("s/part-00000.mrs", changed);
    auto dataset = Dataset::Open(spec);
    if (!dataset.ok()) return dataset.status().message();
    auto part = (*dataset)->LoadPartition(0);
    auto borrowed = (*dataset)->BorrowPartition(0);
    const std::string message = part.ok() ? "ok" : part.status().message();
    CHECK((borrowed.ok() ? "ok" : borrowed.status().message()) == message);
    return message;
  }
};

// The message of a checksum mismatch in the values section of `s`.
std::string ValuesMismatch(const OneShard& s) {
  const ShardSection& values = s.header.sections[3];
  return s.file + ": corrupt shard: checksum mismatch in section values, bytes [" +
         std::to_string(values.offset) + ", " + std::to_string(values.offset + values.bytes) + ")";
}

TEST_CASE("a truncated shard fails naming the file and where it ends", "[data]") {
  OneShard s;
  REQUIRE(s.header.layout == ShardLayout::kCsr);
  const int64_t size = static_cast<int64_t>(s.bytes.size());
  CHECK(s.LoadWith(s.bytes.substr(0, 10)) ==
        s.file + ": corrupt shard: truncated at byte 10: a shard starts with a 16-byte preamble");
  CHECK(s.LoadWith(s.bytes.substr(0, 40)) ==
        s.file + ": corrupt shard: truncated at byte 40: the header ends at byte " +
            std::to_string(kShardPreambleBytes + 4 +
                           static_cast<int64_t>(EncodeShardHeader(s.header).size())));
  CHECK(s.LoadWith(s.bytes.substr(0, size - 3)) ==
        s.file + ": corrupt shard: truncated at byte " + std::to_string(size - 3) +
            ": its header says the file is " + std::to_string(size) +
            " bytes long (section values ends there)");
  CHECK(s.LoadWith(s.bytes + "xyz") == s.file + ": corrupt shard: 3 unexpected bytes at byte " +
                                           std::to_string(size) + ", after the last section");
}

TEST_CASE("a corrupted shard fails naming the file and the byte range of the damage", "[data]") {
  OneShard s;
  SECTION("a value") {
    const ShardSection& values = s.header.sections[3];
    std::string bad = s.bytes;
    bad[values.offset + 5] ^= 0x40;
    CHECK(s.LoadWith(bad) == s.file +
                                 ": corrupt shard: checksum mismatch in section values, "
                                 "bytes [" +
                                 std::to_string(values.offset) + ", " +
                                 std::to_string(values.offset + values.bytes) + ")");
  }
  SECTION("the header") {
    std::string bad = s.bytes;
    bad[kShardPreambleBytes + 3] ^= 1;
    const int64_t end =
        kShardPreambleBytes + static_cast<int64_t>(EncodeShardHeader(s.header).size());
    CHECK(s.LoadWith(bad) == s.file +
                                 ": corrupt shard: checksum mismatch in the header, bytes "
                                 "[16, " +
                                 std::to_string(end) + ")");
  }
  SECTION("the magic") {
    std::string bad = s.bytes;
    bad[0] = 'X';
    CHECK(s.LoadWith(bad) == s.file +
                                 ": not a shard file: bad magic at byte 0 (expected "
                                 "\"MRTSHARD\")");
  }
}

TEST_CASE("a shard changed after a job checked it is checked again before it is served", "[data]") {
  OneShard s;
  auto dataset = Dataset::Open(s.spec);
  REQUIRE(dataset.ok());
  auto first = (*dataset)->BorrowPartition(0);  // checks the body, once for this version
  REQUIRE(first.ok());
  std::string bad = s.bytes;
  bad[s.header.sections[3].offset + 5] ^= 0x40;
  // Kernels before 6.13 stamp a file's ctime at the clock's tick: let one pass, so the write
  // is told apart from the version checked (a change within the tick that keeps the size would
  // slip by, as shard_dataset.h says).
  const auto tick = std::chrono::milliseconds(30);
  SECTION("written in place") {
    std::this_thread::sleep_for(tick);
    s.dir.Write("s/part-00000.mrs", bad);
    auto again = (*dataset)->BorrowPartition(0);
    REQUIRE_FALSE(again.ok());
    CHECK(again.status().message() == ValuesMismatch(s));
    // The copy a task still holds reads the file's bytes as they are now: the page cache.
    CHECK(std::memcmp(first->value_data(), bad.data() + s.header.sections[3].offset,
                      static_cast<size_t>(s.header.sections[3].bytes)) == 0);
    std::this_thread::sleep_for(tick);
    s.dir.Write("s/part-00000.mrs", s.bytes);  // mended: checked again, served again
    CHECK((*dataset)->BorrowPartition(0).ok());
  }
  SECTION("replaced by a rename") {
    s.dir.Write("s/new.tmp", bad);
    REQUIRE(std::rename(s.dir.File("s/new.tmp").c_str(), s.file.c_str()) == 0);
    auto again = (*dataset)->BorrowPartition(0);
    REQUIRE_FALSE(again.ok());
    CHECK(again.status().message() == ValuesMismatch(s));
    // A held copy keeps the file it mapped, whose bytes did not change.
    CHECK(std::memcmp(first->value_data(), s.bytes.data() + s.header.sections[3].offset,
                      static_cast<size_t>(s.header.sections[3].bytes)) == 0);
  }
}

TEST_CASE("a shard of another format version is refused naming both versions", "[data]") {
  OneShard s;
  std::string other = s.bytes;
  const uint32_t version = kShardVersion + 1;
  std::memcpy(&other[8], &version, 4);
  CHECK(s.LoadWith(other) == s.file +
                                 ": shard format version 2; this mrtrain reads version 1: "
                                 "convert the source again with this mrtrain");
}

TEST_CASE("a shard header whose counts pass its length is corrupt, not a huge allocation",
          "[data]") {
  ShardHeader h;
  h.num_partitions = 1;
  std::string bytes = EncodeShardHeader(h);
  // The skipped-samples count sits after 6 int64 fields and the layout byte.
  const uint32_t huge = 0xFFFFFFFF;
  std::memcpy(&bytes[49], &huge, 4);
  auto decoded = DecodeShardHeader(bytes, "f.mrs");
  REQUIRE_FALSE(decoded.ok());
  CHECK(decoded.status().message() ==
        "f.mrs: corrupt shard header at byte 65: skipped samples "
        "count 4294967295 is more than the header holds");
}

}  // namespace
}  // namespace mrtrain::data
