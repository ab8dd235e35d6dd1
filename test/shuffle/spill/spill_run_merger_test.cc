#include "shuffle/spill/spill_run_merger.h"

#include <filesystem>
#include <fstream>
#include <vector>

#include <catch2/catch.hpp>

#include "shuffle/spill/spill_run_file.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::shuffle {
namespace {

using testing::TempDir;

// Writes a run of one-float records (key block, value), keys ascending.
std::string WriteRun(const TempDir& dir, const std::string& name,
                     const std::vector<std::pair<uint64_t, float>>& records) {
  const std::string path = dir.File(name);
  auto writer = SpillRunWriter::Create(path, records.size());
  REQUIRE(writer.ok());
  for (const auto& [block, value] : records) {
    REQUIRE((*writer)->Add(ParamKey(0, block), &value, 1).ok());
  }
  REQUIRE((*writer)->Close().ok());
  return path;
}

struct Merged {
  std::vector<uint64_t> blocks;
  std::vector<float> sums;
};

Result<Merged> Merge(const std::vector<std::string>& paths) {
  Merged m;
  Status s = MergeSpillRuns(paths, 1, [&](ParamKey key, const float* sum, int64_t n) {
    CHECK(n == 1);
    m.blocks.push_back(key.block());
    m.sums.push_back(*sum);
  });
  if (!s.ok()) return s;
  return m;
}

TEST_CASE("merger emits keys ascending, folding records in run then file order", "[shuffle]") {
  TempDir dir;
  // Float sums are observably ordered (1e8 + 1 == 1e8): key 3 folds to ((1e8 + 1) - 1e8) + 1 == 1
  // only in run order with run 1's two records in file order; either swap gives another sum.
  const std::string r0 = WriteRun(dir, "0.run", {{1, 10.0f}, {3, 1e8f}});
  const std::string r1 = WriteRun(dir, "1.run", {{0, 5.0f}, {3, 1.0f}, {3, -1e8f}});
  const std::string r2 = WriteRun(dir, "2.run", {{3, 1.0f}, {4, 2.0f}});
  auto merged = Merge({r0, r1, r2});
  REQUIRE(merged.ok());
  CHECK(merged->blocks == std::vector<uint64_t>{0, 1, 3, 4});
  CHECK(merged->sums == std::vector<float>{5.0f, 10.0f, 1.0f, 2.0f});
  // The same records in another run order fold in another order: the order is what is kept.
  auto swapped = Merge({r2, r1, r0});
  REQUIRE(swapped.ok());
  CHECK(swapped->sums[2] == 0.0f);  // ((1 + 1) - 1e8) + 1e8
  const std::string r1_reversed = WriteRun(dir, "1r.run", {{0, 5.0f}, {3, -1e8f}, {3, 1.0f}});
  auto reversed = Merge({r0, r1_reversed, r2});
  REQUIRE(reversed.ok());
  CHECK(reversed->sums[2] == 2.0f);  // ((1e8 - 1e8) + 1) + 1
}

TEST_CASE("merger fails on a damaged run, naming it and the offset", "[shuffle]") {
  TempDir dir;
  const std::string r0 = WriteRun(dir, "0.run", {{1, 1.0f}, {2, 2.0f}});
  const std::string r1 = WriteRun(dir, "1.run", {{1, 3.0f}, {2, 4.0f}});
  {
    std::fstream f(r1, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(24 + 20 + 12);  // the value of record 1
    f.put('\x7f');
  }
  auto merged = Merge({r0, r1});
  REQUIRE_FALSE(merged.ok());
  CHECK(merged.status().code() == StatusCode::kCorruption);
  CHECK(merged.status().message() ==
        "spill run " + r1 + " at offset 44: record 1 checksum mismatch");
  SECTION("a missing run") {
    std::filesystem::remove(r0);
    auto gone = Merge({r0, r1});
    REQUIRE_FALSE(gone.ok());
    CHECK(gone.status().message().find("cannot open spill run " + r0) == 0);
  }
}

}  // namespace
}  // namespace mrtrain::shuffle
