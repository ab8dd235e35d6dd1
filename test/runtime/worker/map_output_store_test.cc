#include "runtime/worker/map_output_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/base/crc32c.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::runtime {
namespace {

namespace fs = std::filesystem;

constexpr size_t kPushBytes = 100;
constexpr size_t kShards = 3;
// What one output from Output() costs against the budget: its stats and its pushes.
constexpr size_t kEntryBytes = sizeof(api::MapStats) + kShards * kPushBytes;

// A distinct output per (step, partition), with bytes of every value (NUL included) so a
// text-mode or truncating write would show.
KeptOutput Output(int64_t step, int64_t partition, int variant = 0) {
  KeptOutput out;
  out.stats.loss_sum = 0.25 * static_cast<double>(step) + static_cast<double>(partition) + variant;
  out.stats.examples = 1000 * step + partition;
  out.stats.correct = 7 * step + partition + variant;
  for (size_t shard = 0; shard < kShards; ++shard) {
    std::string push(kPushBytes, '\0');
    for (size_t i = 0; i < push.size(); ++i) {
      push[i] = static_cast<char>((step * 31 + partition * 17 + shard * 7 + i + variant) & 0xff);
    }
    out.pushes.emplace_back(push);
  }
  return out;
}

bool Same(const KeptOutput& a, const KeptOutput& b) {
  return a.stats.loss_sum == b.stats.loss_sum && a.stats.examples == b.stats.examples &&
         a.stats.correct == b.stats.correct && a.pushes == b.pushes;
}

std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) files.push_back(e.path().string());
  return files;
}

// Finds (step, partition) and requires that it is kept and equal to Output(step, partition).
void RequireKept(MapOutputStore& store, int64_t step, int64_t partition) {
  INFO("step " << step << " partition " << partition);
  Result<std::optional<KeptOutput>> found = store.Find(step, partition);
  REQUIRE(found.ok());
  REQUIRE(found->has_value());
  CHECK(Same(**found, Output(step, partition)));
}

void RequireGone(MapOutputStore& store, int64_t step, int64_t partition) {
  INFO("step " << step << " partition " << partition);
  Result<std::optional<KeptOutput>> found = store.Find(step, partition);
  REQUIRE(found.ok());
  CHECK_FALSE(found->has_value());
}

template <typename T>
void Put(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof v);
}

// A spill file as MapOutputStore writes it, with a valid checksum over whatever `body` claims.
std::string SpillFile(const std::string& body) {
  std::string bytes = "MRKEPT01" + body;
  Put(&bytes, Crc32c(bytes.data(), bytes.size()));
  return bytes;
}

std::string Header(uint64_t num_pushes) {
  std::string body;
  Put(&body, 1.5);
  Put(&body, int64_t{10});
  Put(&body, int64_t{3});
  Put(&body, num_pushes);
  return body;
}

TEST_CASE("map output store keeps outputs in memory within its budget", "[runtime]") {
  testing::TempDir tmp;
  const std::string spill_dir = tmp.File("spill");
  MapOutputStore store(10 * kEntryBytes, spill_dir);
  store.Keep(3, 1, Output(3, 1));
  store.Keep(3, 2, Output(3, 2));
  RequireKept(store, 3, 1);
  RequireKept(store, 3, 2);
  RequireGone(store, 3, 0);
  RequireGone(store, 4, 1);
  CHECK(store.memory_bytes() == 2 * kEntryBytes);
  CHECK(store.spilled_entries() == 0);
  CHECK_FALSE(fs::exists(spill_dir));  // nothing spilled, no folder made
}

TEST_CASE("map output store spills past its budget and reads spills back unchanged", "[runtime]") {
  testing::TempDir tmp;
  const std::string spill_dir = tmp.File("spill");
  const size_t budget = 2 * kEntryBytes + kEntryBytes / 2;
  MapOutputStore store(budget, spill_dir);
  for (int64_t p = 0; p < 5; ++p) store.Keep(7, p, Output(7, p));
  CHECK(store.memory_bytes() == 2 * kEntryBytes);
  CHECK(store.memory_bytes() <= budget);
  CHECK(store.spilled_entries() == 3);
  CHECK(FilesIn(spill_dir).size() == 3);
  for (int64_t p = 0; p < 5; ++p) RequireKept(store, 7, p);
  // Reading a spill back does not move it or use it up.
  for (int64_t p = 0; p < 5; ++p) RequireKept(store, 7, p);
  CHECK(store.spilled_entries() == 3);
}

TEST_CASE("a damaged spill file is reported as corruption naming it, then forgotten", "[runtime]") {
  testing::TempDir tmp;
  const std::string spill_dir = tmp.File("spill");
  MapOutputStore store(0, spill_dir);  // everything spills
  store.Keep(2, 5, Output(2, 5));
  const std::vector<std::string> files = FilesIn(spill_dir);
  REQUIRE(files.size() == 1);
  const std::string path = files[0];
  store.Keep(2, 6, Output(2, 6));
  REQUIRE(store.spilled_entries() == 2);
  std::string bytes = testing::TempDir::Read(path);
  REQUIRE(bytes.size() > 40);

  SECTION("one byte flipped") { bytes[40] = static_cast<char>(bytes[40] ^ 0x01); }
  SECTION("last byte flipped (the checksum)") { bytes.back() = static_cast<char>(~bytes.back()); }
  SECTION("truncated by one byte") { bytes.pop_back(); }
  SECTION("truncated to the magic") { bytes.resize(8); }
  SECTION("empty") { bytes.clear(); }
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }

  Result<std::optional<KeptOutput>> found = store.Find(2, 5);
  REQUIRE_FALSE(found.ok());
  CHECK(found.status().code() == StatusCode::kCorruption);
  CHECK(found.status().message().find(path) != std::string::npos);
  RequireGone(store, 2, 5);
  CHECK(store.spilled_entries() == 1);
  CHECK_FALSE(fs::exists(path));
  RequireKept(store, 2, 6);  // the other task's spill is untouched
}

TEST_CASE("Forget removes one kept output, in memory or spilled", "[runtime]") {
  testing::TempDir tmp;
  const std::string spill_dir = tmp.File("spill");
  MapOutputStore store(kEntryBytes, spill_dir);
  store.Keep(1, 0, Output(1, 0));  // in memory
  store.Keep(1, 1, Output(1, 1));  // spilled
  store.Keep(1, 2, Output(1, 2));  // spilled
  REQUIRE(store.spilled_entries() == 2);

  store.Forget(1, 0);
  RequireGone(store, 1, 0);
  CHECK(store.memory_bytes() == 0);
  store.Forget(1, 1);
  RequireGone(store, 1, 1);
  CHECK(store.spilled_entries() == 1);
  CHECK(FilesIn(spill_dir).size() == 1);
  store.Forget(9, 9);  // nothing kept there: no effect
  RequireKept(store, 1, 2);
}

TEST_CASE("DropThrough forgets every step up to it, in memory and on disk", "[runtime]") {
  testing::TempDir tmp;
  const std::string spill_dir = tmp.File("spill");
  MapOutputStore store(3 * kEntryBytes, spill_dir);
  // The first three fit in memory, the rest spill, so both kinds are on each side of step 2.
  const std::vector<std::pair<int64_t, int64_t>> order = {{1, 0}, {3, 0}, {4, 0}, {1, 1},
                                                          {2, 0}, {2, 1}, {3, 1}, {4, 1}};
  for (const auto& [step, partition] : order) store.Keep(step, partition, Output(step, partition));
  REQUIRE(store.memory_bytes() == 3 * kEntryBytes);
  REQUIRE(store.spilled_entries() == 5);

  store.DropThrough(2);
  for (int64_t p = 0; p < 2; ++p) {
    RequireGone(store, 1, p);
    RequireGone(store, 2, p);
    RequireKept(store, 3, p);
    RequireKept(store, 4, p);
  }
  CHECK(store.memory_bytes() == 2 * kEntryBytes);
  CHECK(store.spilled_entries() == 2);
  CHECK(FilesIn(spill_dir).size() == 2);  // the dropped spills' files are gone

  store.DropThrough(4);
  RequireGone(store, 3, 1);
  RequireGone(store, 4, 0);
  CHECK(store.memory_bytes() == 0);
  CHECK(store.spilled_entries() == 0);
  CHECK(FilesIn(spill_dir).empty());
}

TEST_CASE("keeping the same step and partition again replaces the older copy", "[runtime]") {
  testing::TempDir tmp;
  const std::string spill_dir = tmp.File("spill");
  const KeptOutput newer = Output(5, 3, /*variant=*/1);

  SECTION("in memory") {
    MapOutputStore store(10 * kEntryBytes, spill_dir);
    store.Keep(5, 3, Output(5, 3));
    store.Keep(5, 3, newer);
    Result<std::optional<KeptOutput>> found = store.Find(5, 3);
    REQUIRE(found.ok());
    REQUIRE(found->has_value());
    CHECK(Same(**found, newer));
    CHECK(store.memory_bytes() == kEntryBytes);  // the old copy's bytes are given back
  }
  SECTION("spilled") {
    MapOutputStore store(0, spill_dir);
    store.Keep(5, 3, Output(5, 3));
    store.Keep(5, 3, newer);
    Result<std::optional<KeptOutput>> found = store.Find(5, 3);
    REQUIRE(found.ok());
    REQUIRE(found->has_value());
    CHECK(Same(**found, newer));
    CHECK(store.spilled_entries() == 1);
    CHECK(FilesIn(spill_dir).size() == 1);
  }
  SECTION("a spilled copy replaced by one that fits in memory") {
    MapOutputStore store(kEntryBytes, spill_dir);
    store.Keep(0, 0, Output(0, 0));
    store.Keep(5, 3, Output(5, 3));  // over budget: spilled
    REQUIRE(store.spilled_entries() == 1);
    store.Forget(0, 0);
    store.Keep(5, 3, newer);
    Result<std::optional<KeptOutput>> found = store.Find(5, 3);
    REQUIRE(found.ok());
    REQUIRE(found->has_value());
    CHECK(Same(**found, newer));
    CHECK(store.spilled_entries() == 0);
    CHECK(FilesIn(spill_dir).empty());
  }
}

TEST_CASE("destroying a map output store removes its spill folder", "[runtime]") {
  testing::TempDir tmp;
  const std::string spill_dir = tmp.File("spill");
  {
    MapOutputStore store(0, spill_dir);
    store.Keep(1, 0, Output(1, 0));
    store.Keep(1, 1, Output(1, 1));
    REQUIRE(FilesIn(spill_dir).size() == 2);
  }
  CHECK_FALSE(fs::exists(spill_dir));
  CHECK(fs::exists(tmp.path()));  // only its own folder
}

TEST_CASE("ReadKeptOutputFile refuses lying counts and lengths without allocating them",
          "[runtime]") {
  testing::TempDir tmp;
  std::string body;
  SECTION("a huge push count") { body = Header(uint64_t{1} << 60); }
  SECTION("the largest push count") { body = Header(UINT64_MAX); }
  SECTION("a huge push length") {
    body = Header(1);
    Put(&body, uint64_t{1} << 62);
    body += "abc";
  }
  SECTION("the largest push length") {
    body = Header(2);
    Put(&body, UINT64_MAX);
    Put(&body, uint64_t{0});
  }
  const std::string path = tmp.Write("lying.kept", SpillFile(body));
  const auto start = std::chrono::steady_clock::now();
  Result<KeptOutput> read = ReadKeptOutputFile(path);
  const auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(read.ok());
  CHECK(read.status().code() == StatusCode::kCorruption);
  CHECK(read.status().message().find(path) != std::string::npos);
  CHECK(took < std::chrono::milliseconds(500));
}

TEST_CASE("ReadKeptOutputFile reads a well-formed file and names what is wrong otherwise",
          "[runtime]") {
  testing::TempDir tmp;
  SECTION("well-formed") {
    std::string body = Header(2);
    Put(&body, uint64_t{3});
    body += std::string("a\0b", 3);
    Put(&body, uint64_t{0});
    Result<KeptOutput> read = ReadKeptOutputFile(tmp.Write("good.kept", SpillFile(body)));
    REQUIRE(read.ok());
    CHECK(read->stats.loss_sum == 1.5);
    CHECK(read->stats.examples == 10);
    CHECK(read->stats.correct == 3);
    REQUIRE(read->pushes.size() == 2);
    CHECK(read->pushes[0].Join() == std::string("a\0b", 3));
    CHECK(read->pushes[1].Join().empty());
  }
  SECTION("missing") {
    Result<KeptOutput> read = ReadKeptOutputFile(tmp.File("missing.kept"));
    REQUIRE_FALSE(read.ok());
    CHECK(read.status().code() == StatusCode::kNotFound);
  }
  SECTION("bad magic with a valid checksum") {
    std::string bytes = "MRKEPT99" + Header(0);
    Put(&bytes, Crc32c(bytes.data(), bytes.size()));
    Result<KeptOutput> read = ReadKeptOutputFile(tmp.Write("magic.kept", bytes));
    REQUIRE_FALSE(read.ok());
    CHECK(read.status().code() == StatusCode::kCorruption);
  }
  SECTION("trailing bytes after the last push") {
    Result<KeptOutput> read =
        ReadKeptOutputFile(tmp.Write("trailing.kept", SpillFile(Header(0) + "x")));
    REQUIRE_FALSE(read.ok());
    CHECK(read.status().code() == StatusCode::kCorruption);
  }
}

// A Find that reads a damaged old copy while another thread keeps a fresh copy of the same task
// must not throw away the fresh one. The old spill file is swapped for a FIFO so the test can
// hold that Find in the middle of its read, after it has let go of the store's lock.
TEST_CASE("a Find of a damaged copy does not forget a copy kept while it read", "[runtime]") {
  testing::TempDir tmp;
  const std::string spill_dir = tmp.File("spill");
  MapOutputStore store(0, spill_dir);  // everything spills
  store.Keep(1, 0, Output(1, 0));
  const std::vector<std::string> files = FilesIn(spill_dir);
  REQUIRE(files.size() == 1);
  const std::string path = files[0];
  std::string damaged = testing::TempDir::Read(path);
  damaged[20] = static_cast<char>(damaged[20] ^ 0x01);
  REQUIRE(std::remove(path.c_str()) == 0);
  REQUIRE(mkfifo(path.c_str(), 0600) == 0);

  Result<std::optional<KeptOutput>> first = std::optional<KeptOutput>();
  std::thread reader([&] { first = store.Find(1, 0); });
  // Opening a FIFO to write without blocking succeeds only once the Find has opened it to read.
  int fd = -1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (fd < 0 && std::chrono::steady_clock::now() < deadline) {
    fd = open(path.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd < 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (fd < 0) {  // the Find never got to the file: let it finish before failing
    close(open(path.c_str(), O_RDWR | O_NONBLOCK));
    reader.join();
    FAIL("the Find did not open " << path);
  }
  // The Find is now blocked reading; a newer copy of the task is kept meanwhile.
  const KeptOutput newer = Output(1, 0, /*variant=*/1);
  store.Keep(1, 0, newer);
  REQUIRE(write(fd, damaged.data(), damaged.size()) == static_cast<ssize_t>(damaged.size()));
  close(fd);
  reader.join();

  // The damaged copy is never returned: the Find reports the damage or, seeing that the copy
  // was replaced while it read, answers "not kept" (the caller then computes the task again).
  if (first.ok()) {
    CHECK_FALSE(first->has_value());
  } else {
    CHECK(first.status().code() == StatusCode::kCorruption);
  }
  Result<std::optional<KeptOutput>> second = store.Find(1, 0);
  REQUIRE(second.ok());
  REQUIRE(second->has_value());  // the failed Find did not forget the newer copy
  CHECK(Same(**second, newer));
}

// Keys are few so threads collide on them; each key only ever holds Output(step, partition),
// so whatever a Find returns must be exactly that or nothing. 4 x 1000 operations, because the
// interleavings that matter (a Find reading a spill file while another thread replaces or drops
// it) are rare per operation.
TEST_CASE("concurrent Keep, Find and DropThrough leave consistent results", "[runtime]") {
  constexpr int kThreads = 4;
  constexpr int kOps = 1000;
  constexpr int64_t kSteps = 2;
  constexpr int64_t kPartitions = 1;
  std::map<std::pair<int64_t, int64_t>, KeptOutput> expected;
  for (int64_t s = 0; s < kSteps; ++s) {
    for (int64_t p = 0; p < kPartitions; ++p) expected[{s, p}] = Output(s, p);
  }
  testing::TempDir tmp;
  const std::string spill_dir = tmp.File("spill");
  const size_t budget = kEntryBytes;  // most entries spill, so reads race with file writes
  MapOutputStore store(budget, spill_dir);

  std::vector<std::vector<std::string>> problems(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<uint32_t>(t + 1));
      for (int op = 0; op < kOps; ++op) {
        const int64_t step = static_cast<int64_t>(rng() % kSteps);
        const int64_t partition = static_cast<int64_t>(rng() % kPartitions);
        const KeptOutput& want = expected.at({step, partition});
        const uint32_t kind = rng() % 10;
        if (kind < 5) {
          store.Keep(step, partition, want);
        } else if (kind < 9) {
          Result<std::optional<KeptOutput>> found = store.Find(step, partition);
          const std::string where =
              "step " + std::to_string(step) + " partition " + std::to_string(partition);
          if (!found.ok()) {
            problems[t].push_back(where + ": " + found.status().ToString());
          } else if (found->has_value() && !Same(**found, want)) {
            problems[t].push_back(where + ": wrong output");
          }
        } else {
          store.DropThrough(step - 1);
        }
        if (store.memory_bytes() > budget) problems[t].push_back("over budget");
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    for (const std::string& p : problems[t]) FAIL_CHECK("thread " << t << ": " << p);
  }

  // Settled: each key holds its output or nothing, and the disk matches the bookkeeping.
  CHECK(store.memory_bytes() <= budget);
  CHECK(FilesIn(spill_dir).size() == static_cast<size_t>(store.spilled_entries()));
  for (const auto& [key, want] : expected) {
    Result<std::optional<KeptOutput>> found = store.Find(key.first, key.second);
    REQUIRE(found.ok());
    if (found->has_value()) CHECK(Same(**found, want));
  }
  store.DropThrough(kSteps);
  CHECK(store.memory_bytes() == 0);
  CHECK(store.spilled_entries() == 0);
  CHECK(FilesIn(spill_dir).empty());
}

}  // namespace
}  // namespace mrtrain::runtime
