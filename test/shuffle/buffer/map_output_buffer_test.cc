#include "shuffle/buffer/map_output_buffer.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "engine/api/random.h"
#include "test/shuffle/shuffle_test_util.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::shuffle {
namespace {

TEST_CASE("combiner sums values of the same key within a task", "[shuffle]") {
  auto layout = TestLayout();
  HashPartitioner one(1);
  MapOutputBuffer buffer(layout.get(), &one, 1 << 20);
  std::vector<float> a(7, 1.5f), b(7, 2.0f);
  REQUIRE(buffer.Add(ParamKey(2, 0), a.data()).ok());
  REQUIRE(buffer.Add(ParamKey(2, 0), b.data()).ok());
  CHECK(buffer.num_keys() == 1);
  auto runs = buffer.Finish().value();
  REQUIRE(runs.size() == 1);
  REQUIRE(runs[0].num_keys() == 1);
  CHECK(runs[0].LengthOf(0) == 7);
  for (int i = 0; i < 7; ++i) CHECK(runs[0].ValuesOf(0)[i] == 3.5f);
  CHECK(buffer.num_keys() == 0);
}

TEST_CASE("sort shuffle runs are ascending and hash runs keep emission order", "[shuffle]") {
  auto layout = TestLayout();
  std::vector<float> block(64, 1.0f);
  std::vector<ParamKey> emitted = {ParamKey(0, 9), ParamKey(0, 2), ParamKey(1, 0), ParamKey(0, 5)};
  SECTION("sort") {
    RangePartitioner part(*layout, 2);
    MapOutputBuffer buffer(layout.get(), &part, 1 << 20);
    for (ParamKey k : emitted) REQUIRE(buffer.Add(k, block.data()).ok());
    auto runs = buffer.Finish().value();
    for (const Run& run : runs) {
      for (int64_t i = 1; i < run.num_keys(); ++i) CHECK(run.keys[i - 1] < run.keys[i]);
    }
  }
  SECTION("hash") {
    HashPartitioner part(1);
    MapOutputBuffer buffer(layout.get(), &part, 1 << 20);
    for (ParamKey k : emitted) REQUIRE(buffer.Add(k, block.data()).ok());
    auto runs = buffer.Finish().value();
    CHECK(runs[0].keys == emitted);
  }
}

TEST_CASE("buffer refuses keys outside the model and output over budget", "[shuffle]") {
  auto layout = TestLayout();
  HashPartitioner one(1);
  MapOutputBuffer buffer(layout.get(), &one, 100 * sizeof(float));
  std::vector<float> block(64, 1.0f);
  Status bad = buffer.Add(ParamKey(3, 0), block.data());
  CHECK(bad.code() == StatusCode::kInvalidArgument);
  CHECK(buffer.Add(ParamKey(0, 0), block.data()).ok());
  Status over = buffer.Add(ParamKey(0, 1), block.data());
  CHECK(over.code() == StatusCode::kFailedPrecondition);
  CHECK(over.message().find("shuffle.buffer_bytes=400") != std::string::npos);
  // Summing into a key already held needs no new memory.
  CHECK(buffer.Add(ParamKey(0, 0), block.data()).ok());
}

// One map task's emissions: `calls` mapper calls, each emitting most keys of the model in a
// shuffled order, some several times running (as per-row emissions do), with values of mixed
// magnitudes, so float sums depend on their order.
struct Emission {
  ParamKey key;
  std::vector<float> values;
};

std::vector<Emission> TaskEmissions(const ModelLayout& layout, int calls) {
  api::RandomStream random(7, 1);
  std::vector<Emission> out;
  for (int c = 0; c < calls; ++c) {
    std::vector<ParamKey> keys = layout.keys();
    for (size_t i = keys.size(); i > 1; --i) std::swap(keys[i - 1], keys[random.Below(i)]);
    for (ParamKey k : keys) {
      if (random.Below(5) == 0) continue;
      for (uint64_t times = 1 + random.Below(3); times > 0; --times) {
        std::vector<float> v(layout.Range(k).length);
        for (float& x : v) x = random.Uniform(-1.0f, 1.0f) * (random.Below(2) ? 1e7f : 1e-3f);
        out.push_back(Emission{k, std::move(v)});
      }
    }
  }
  return out;
}

Status AddAll(MapOutputBuffer& buffer, const std::vector<Emission>& emissions) {
  for (const Emission& e : emissions) MRTRAIN_RETURN_IF_ERROR(buffer.Add(e.key, e.values.data()));
  return Status::Ok();
}

bool SameRuns(const std::vector<Run>& a, const std::vector<Run>& b) {
  if (a.size() != b.size()) return false;
  for (size_t s = 0; s < a.size(); ++s) {
    if (a[s].keys != b[s].keys || a[s].offsets != b[s].offsets) return false;
    if (a[s].values.size() != b[s].values.size()) return false;
    if (std::memcmp(a[s].values.data(), b[s].values.data(), a[s].values.size() * 4) != 0) {
      return false;
    }
  }
  return true;
}

bool IsEmptyDir(const std::string& dir) { return std::filesystem::is_empty(dir); }

TEST_CASE("a buffer past its budget spills runs and finishes bit-identical to one in memory",
          "[shuffle]") {
  auto layout = TestLayout();
  testing::TempDir dir;
  const std::vector<Emission> emissions = TaskEmissions(*layout, 6);
  for (ShuffleMode mode : {ShuffleMode::kSort, ShuffleMode::kHash}) {
    INFO((mode == ShuffleMode::kSort ? "sort" : "hash"));
    auto part = MakePartitioner(mode, *layout, 3);
    MapOutputBuffer memory(layout.get(), part.get(), 1 << 20);
    REQUIRE(AddAll(memory, emissions).ok());
    auto reference = memory.Finish();
    REQUIRE(reference.ok());
    CHECK(memory.spilled_runs() == 0);

    // The output holds 21 keys of up to 64 floats (4,920 bytes): a quarter of it per run.
    MapOutputBuffer spilling(layout.get(), part.get(), 1200, SpillOptions{dir.path(), "task"});
    REQUIRE(AddAll(spilling, emissions).ok());
    CHECK(spilling.spilled_runs() >= 4);
    CHECK(spilling.spilled_bytes() > 0);
    CHECK_FALSE(IsEmptyDir(dir.path()));
    auto spilled = spilling.Finish();
    REQUIRE(spilled.ok());
    CHECK(SameRuns(*reference, *spilled));
    CHECK(IsEmptyDir(dir.path()));  // the runs are gone once merged
  }
  // A negative control: summing in another order changes the bits, so SameRuns can tell.
  auto part = MakePartitioner(ShuffleMode::kSort, *layout, 3);
  MapOutputBuffer forward(layout.get(), part.get(), 1 << 20),
      backward(layout.get(), part.get(), 1 << 20);
  REQUIRE(AddAll(forward, emissions).ok());
  REQUIRE(AddAll(backward, std::vector<Emission>(emissions.rbegin(), emissions.rend())).ok());
  CHECK_FALSE(SameRuns(forward.Finish().value(), backward.Finish().value()));
}

// Mapper calls that each emit their keys ascending, as the built-in models do (rows sorted by
// id, then the next tensor), the later calls repeating keys of the earlier: the buffer holds
// no table of keys until the first key out of order, and must sum and order as if it had.
std::vector<Emission> AscendingCalls(const ModelLayout& layout, int calls) {
  api::RandomStream random(11, 2);
  std::vector<Emission> out;
  for (int c = 0; c < calls; ++c) {
    for (ParamKey k : layout.keys()) {
      if (random.Below(3) == 0) continue;
      std::vector<float> v(layout.Range(k).length);
      for (float& x : v) x = random.Uniform(-1.0f, 1.0f) * (random.Below(2) ? 1e7f : 1e-3f);
      out.push_back(Emission{k, std::move(v)});
    }
  }
  return out;
}

// What a buffer must give for `emissions`, worked out directly: per shard, each key's values
// summed in emission order, keys ascending (sorted partitioner) or in first-emission order.
std::vector<Run> ExpectedRuns(const Partitioner& part, const std::vector<Emission>& emissions) {
  std::vector<ParamKey> first_seen;
  std::map<ParamKey, std::vector<float>> sums;
  for (const Emission& e : emissions) {
    auto [it, inserted] = sums.emplace(e.key, e.values);
    if (inserted) {
      first_seen.push_back(e.key);
    } else {
      for (size_t i = 0; i < e.values.size(); ++i) it->second[i] += e.values[i];
    }
  }
  if (part.sorted()) std::sort(first_seen.begin(), first_seen.end());
  std::vector<Run> runs(part.num_shards());
  for (ParamKey k : first_seen) {
    const std::vector<float>& sum = sums.at(k);
    runs[part.ShardOf(k)].Append(k, sum.data(), static_cast<int64_t>(sum.size()));
  }
  return runs;
}

TEST_CASE("calls emitting keys ascending are combined as any others, spilled or not",
          "[shuffle]") {
  auto layout = TestLayout();
  testing::TempDir dir;
  const std::vector<Emission> emissions = AscendingCalls(*layout, 3);
  for (ShuffleMode mode : {ShuffleMode::kSort, ShuffleMode::kHash}) {
    INFO((mode == ShuffleMode::kSort ? "sort" : "hash"));
    auto part = MakePartitioner(mode, *layout, 3);
    const std::vector<Run> expected = ExpectedRuns(*part, emissions);
    MapOutputBuffer memory(layout.get(), part.get(), 1 << 20);
    memory.ReserveKeys(8);  // a hint too small changes nothing
    REQUIRE(AddAll(memory, emissions).ok());
    CHECK(memory.num_keys() == 21);
    CHECK(SameRuns(memory.Finish().value(), expected));

    // The first call alone: ascending throughout, never indexed.
    const size_t first_call =
        static_cast<size_t>(std::is_sorted_until(emissions.begin(), emissions.end(),
                                                 [](const Emission& a, const Emission& b) {
                                                   return a.key < b.key;
                                                 }) -
                            emissions.begin());
    const std::vector<Emission> one(emissions.begin(), emissions.begin() + first_call);
    REQUIRE(AddAll(memory, one).ok());
    CHECK(memory.num_keys() == static_cast<int64_t>(one.size()));
    CHECK(SameRuns(memory.Finish().value(), ExpectedRuns(*part, one)));

    // Spilling during the first (ascending) call and after.
    MapOutputBuffer spilling(layout.get(), part.get(), 1200, SpillOptions{dir.path(), "asc"});
    REQUIRE(AddAll(spilling, emissions).ok());
    CHECK(spilling.spilled_runs() >= 4);
    CHECK(SameRuns(spilling.Finish().value(), expected));
  }
}

TEST_CASE("spilled runs are removed when a task fails before finishing", "[shuffle]") {
  auto layout = TestLayout();
  testing::TempDir dir;
  auto part = MakePartitioner(ShuffleMode::kHash, *layout, 2);
  {
    MapOutputBuffer buffer(layout.get(), part.get(), 1200, SpillOptions{dir.path(), "task"});
    REQUIRE(AddAll(buffer, TaskEmissions(*layout, 3)).ok());
    REQUIRE(buffer.spilled_runs() > 1);
    CHECK_FALSE(IsEmptyDir(dir.path()));
  }
  CHECK(IsEmptyDir(dir.path()));
}

TEST_CASE("a damaged spill run fails the task naming the file and offset", "[shuffle]") {
  auto layout = TestLayout();
  testing::TempDir dir;
  auto part = MakePartitioner(ShuffleMode::kSort, *layout, 2);
  MapOutputBuffer buffer(layout.get(), part.get(), 1200, SpillOptions{dir.path(), "task"});
  REQUIRE(AddAll(buffer, TaskEmissions(*layout, 3)).ok());
  const std::string first = dir.File("task-0.run");
  {
    std::fstream f(first, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(24 + 12 + 5);  // a value of record 0
    f.put('\x55');
  }
  auto out = buffer.Finish();
  REQUIRE_FALSE(out.ok());
  CHECK(out.status().code() == StatusCode::kCorruption);
  CHECK(out.status().message() ==
        "spill run " + first + " at offset 24: record 0 checksum mismatch");
  CHECK(IsEmptyDir(dir.path()));
}

TEST_CASE("a spilling buffer refuses a block larger than its whole budget", "[shuffle]") {
  auto layout = TestLayout();
  testing::TempDir dir;
  HashPartitioner one(1);
  MapOutputBuffer buffer(layout.get(), &one, 100, SpillOptions{dir.path(), "task"});
  std::vector<float> block(64, 1.0f);
  Status too_big = buffer.Add(ParamKey(0, 0), block.data());
  CHECK(too_big.code() == StatusCode::kFailedPrecondition);
  CHECK(too_big.message() ==
        "a block of 256 bytes does not fit shuffle.buffer_bytes=100 (adding tensor 0 block 0)");
}

}  // namespace
}  // namespace mrtrain::shuffle
