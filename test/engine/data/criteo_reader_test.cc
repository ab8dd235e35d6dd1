// The criteo format (FORMAT.md) and feature hashing (hash_bits) for criteo and libsvm. The
// expected ids were computed outside this code base (64-bit FNV-1a of the documented key bytes):
// a change of hash, key layout or integer transform breaks these tests, as it would break every
// model trained on hashed data.
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/data/dataset.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::data {
namespace {

using testing::TempDir;

// A criteo line: `label`, then the 39 fields, empty except those in `present` (1-based column:
// 1-13 integers I1-I13, 14-39 categories C1-C26).
std::string Line(const std::string& label, const std::map<int, std::string>& present) {
  std::string line = label;
  for (int column = 1; column <= 39; ++column) {
    line += '\t';
    auto it = present.find(column);
    if (it != present.end()) line += it->second;
  }
  return line + "\n";
}

DatasetSpec CriteoSpec(const std::string& path, int hash_bits) {
  DatasetSpec spec;
  spec.path = path;
  spec.format = DataFormat::kCriteo;
  spec.hash_bits = hash_bits;
  return spec;
}

Result<PartitionData> LoadOne(const DatasetSpec& spec) {
  MRTRAIN_ASSIGN_OR_RETURN(auto dataset, Dataset::Open(spec));
  return dataset->LoadPartition(0);
}

// I1=5 -> "L2" (floor(ln(5)^2) = 2), I3=0 -> "S0", I4=-1 -> "S-1", I6=1000 -> "L47", C1, C26.
const std::map<int, std::string> kFields = {{1, "5"},    {3, "0"},         {4, "-1"},
                                            {6, "1000"}, {14, "68fd1e64"}, {39, "abc"}};

TEST_CASE("criteo hashes present fields to fixed ids and skips missing ones", "[data]") {
  TempDir dir;
  // The second record has every field missing; the blank line is no record.
  DatasetSpec spec = CriteoSpec(dir.Write("a.tsv", Line("1", kFields) + Line("0", {}) + "\n"), 20);
  auto part = LoadOne(spec);
  INFO((part.ok() ? "" : part.status().message()));
  REQUIRE(part.ok());
  CHECK(part->is_sparse);
  CHECK(part->num_rows == 2);
  CHECK(part->num_cols == 1 << 20);
  CHECK(part->labels == std::vector<float>{1, 0});
  CHECK(part->row_offsets == std::vector<int64_t>{0, 6, 6});
  // I1 925502, I3 210413, I4 707680, I6 391972, C1 970591, C26 169798, sorted.
  CHECK(part->cols == std::vector<uint32_t>{169798, 210413, 391972, 707680, 925502, 970591});
  CHECK(part->values == std::vector<float>(6, 1.0f));
}

TEST_CASE("criteo sums the features that share a bucket", "[data]") {
  TempDir dir;
  // With 2 bits: I1 -> 2, I3 -> 1, I4 -> 0, I6 -> 0, C1 -> 3, C26 -> 2.
  auto part = LoadOne(CriteoSpec(dir.Write("b.tsv", Line("0", kFields)), 2));
  REQUIRE(part.ok());
  CHECK(part->num_cols == 4);
  CHECK(part->cols == std::vector<uint32_t>{0, 1, 2, 3});
  CHECK(part->values == std::vector<float>{2, 1, 2, 1});
}

TEST_CASE("criteo bad records name the file and line and follow on_bad_record", "[data]") {
  TempDir dir;
  const std::string good = Line("1", kFields);
  std::string short_line = Line("0", {});
  short_line.erase(short_line.size() - 2, 1);  // one tab fewer: 39 fields
  struct Case {
    std::string line;
    std::string message;
  };
  const std::vector<Case> cases = {
      {short_line, "expected 40 tab-separated fields (label, 13 integers, 26 categories), got 39"},
      {"1\t2\t3\n", "expected 40 tab-separated fields (label, 13 integers, 26 categories), got 3"},
      {Line("1", {{2, "x7"}}), "column I2 (field 3): expected an integer, got 'x7'"},
      {Line("1", {{13, "1.5"}}), "column I13 (field 14): expected an integer, got '1.5'"},
      {Line("2", {}), "label: expected 0 or 1, got '2'"},
      {Line("", {}), "label: expected 0 or 1, got ''"},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.message) {
      DatasetSpec spec = CriteoSpec(dir.Write("bad.tsv", good + good + c.line + good), 20);
      auto part = LoadOne(spec);
      REQUIRE_FALSE(part.ok());
      CHECK(part.status().code() == StatusCode::kCorruption);
      CHECK(part.status().message() == spec.path + ":3: " + c.message);

      spec.on_bad_record = BadRecordPolicy::kSkip;
      part = LoadOne(spec);
      REQUIRE(part.ok());
      CHECK(part->num_rows == 3);
      CHECK(part->row_offsets == std::vector<int64_t>{0, 6, 12, 18});
      CHECK(part->skipped_records == 1);
      CHECK(part->skipped_samples == std::vector<std::string>{spec.path + ":3: " + c.message});
    }
  }
}

TEST_CASE("criteo needs hash_bits within the limits", "[data]") {
  TempDir dir;
  const std::string path = dir.Write("c.tsv", Line("1", kFields));
  auto missing = Dataset::Open(CriteoSpec(path, 0));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message() ==
        path + ": hash_bits must be in [1, 31], got 0 (criteo needs it)");
  DatasetSpec small = CriteoSpec(path, 24);
  small.max_decoded_mb = 32;  // 2^23 floats
  auto wide = Dataset::Open(small);
  REQUIRE_FALSE(wide.ok());
  CHECK(wide.status().message() ==
        path +
            ": hash_bits 24 gives 2^24 features, over the limit of 8388608 that max_decoded_mb "
            "(32 MiB) allows");
}

TEST_CASE("libsvm with hash_bits hashes indices as written to fixed ids", "[data]") {
  TempDir dir;
  DatasetSpec spec;
  spec.format = DataFormat::kLibsvm;
  spec.hash_bits = 12;
  // A 64-bit index is fine once hashed.
  spec.path = dir.Write("h.svm", "1 1:0.5 7:2 9223372036854775813:3\n0\n");
  auto part = LoadOne(spec);
  INFO((part.ok() ? "" : part.status().message()));
  REQUIRE(part.ok());
  CHECK(part->num_cols == 4096);
  CHECK(part->row_offsets == std::vector<int64_t>{0, 3, 3});
  CHECK(part->cols == std::vector<uint32_t>{160, 2914, 4004});
  CHECK(part->values == std::vector<float>{3, 2, 0.5f});

  SECTION("colliding indices sum") {
    spec.hash_bits = 1;
    spec.path = dir.Write("one.svm", "1 1:1 2:2 3:4\n");
    part = LoadOne(spec);
    REQUIRE(part.ok());
    CHECK(part->num_cols == 2);
    CHECK(part->cols == std::vector<uint32_t>{0, 1});
    CHECK(part->values == std::vector<float>{5, 2});
  }
  SECTION("indices must still increase, as written") {
    spec.path = dir.Write("dec.svm", "1 7:1 3:1\n");
    part = LoadOne(spec);
    REQUIRE_FALSE(part.ok());
    CHECK(part.status().message() ==
          spec.path + ":1: feature 2: indices must be strictly increasing, got 3 after 7");
  }
  SECTION("and not together with num_features") {
    spec.num_features = 10;
    auto opened = Dataset::Open(spec);
    REQUIRE_FALSE(opened.ok());
    CHECK(opened.status().message() ==
          spec.path +
              ": give num_features or hash_bits, not both (hashing makes the width 2^hash_bits)");
  }
}

}  // namespace
}  // namespace mrtrain::data
