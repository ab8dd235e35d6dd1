#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/data/dataset.h"
#include "test/engine/data/data_files.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::data {
namespace {

using testing::TempDir;

DatasetSpec LibsvmSpec(const std::string& path) {
  DatasetSpec spec;
  spec.path = path;
  spec.format = DataFormat::kLibsvm;
  return spec;
}

Result<PartitionData> LoadOne(const DatasetSpec& spec) {
  MRTRAIN_ASSIGN_OR_RETURN(auto dataset, Dataset::Open(spec));
  return dataset->LoadPartition(0);
}

TEST_CASE("libsvm reads sparse rows with 1-based indices and labels as written", "[data]") {
  TempDir dir;
  DatasetSpec spec = LibsvmSpec(dir.Write("a.libsvm",
                                          "# a comment line\n"
                                          "+1 1:0.5 3:2   # trailing comment\n"
                                          "\n"
                                          "-1\t2:-1e-1\t7:4 \n"
                                          "-1\n"));
  auto part = LoadOne(spec);
  REQUIRE(part.ok());
  CHECK(part->is_sparse);
  CHECK(part->num_rows == 3);
  CHECK(part->num_cols == 7);
  CHECK(part->labels == std::vector<float>{1, -1, -1});
  CHECK(part->row_offsets == std::vector<int64_t>{0, 2, 4, 4});
  CHECK(part->cols == std::vector<uint32_t>{0, 2, 1, 6});
  CHECK(part->values == std::vector<float>{0.5f, 2, -0.1f, 4});
}

TEST_CASE("libsvm honours zero_based, num_features and scale", "[data]") {
  TempDir dir;
  DatasetSpec spec = LibsvmSpec(dir.Write("z.libsvm", "3 0:1 4:2\n"));
  spec.zero_based = true;
  spec.num_features = 10;
  spec.scale = 0.5;
  auto part = LoadOne(spec);
  REQUIRE(part.ok());
  CHECK(part->num_cols == 10);
  CHECK(part->cols == std::vector<uint32_t>{0, 4});
  CHECK(part->values == std::vector<float>{0.5f, 1});
  CHECK(part->labels == std::vector<float>{3});
}

TEST_CASE("libsvm errors name the file, line and feature", "[data]") {
  TempDir dir;
  const std::string good = "1 1:1 2:1\n0 3:1\n";
  struct Case {
    std::string line;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"1 3:1 2:1", "feature 2: indices must be strictly increasing, got 2 after 3"},
      {"1 2:1 2:1", "feature 2: indices must be strictly increasing, got 2 after 2"},
      {"1 0:1", "feature 1: index 0, but indices are 1-based (set zero_based for 0-based files)"},
      {"1 1:x", "feature 1: expected a number after '1:', got 'x'"},
      {"1 abc", "feature 1: expected index:value, got 'abc'"},
      {"1 -2:1", "feature 1: expected index:value, got '-2:1'"},
      {"yes 1:1", "expected a label (a number), got 'yes'"},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.line) {
      DatasetSpec spec = LibsvmSpec(dir.Write("bad.libsvm", good + good + c.line + "\n" + good));
      auto part = LoadOne(spec);
      REQUIRE_FALSE(part.ok());
      CHECK(part.status().code() == StatusCode::kCorruption);
      CHECK(part.status().message() == spec.path + ":5: " + c.message);
    }
  }
  SECTION("an index at or past num_features") {
    DatasetSpec spec = LibsvmSpec(dir.Write("wide.libsvm", "1 4:1\n1 5:1\n"));
    spec.num_features = 4;
    auto part = LoadOne(spec);
    REQUIRE_FALSE(part.ok());
    CHECK(part.status().message() ==
          spec.path + ":2: feature 1: index 5 is out of range for num_features 4");
  }
}

TEST_CASE("libsvm skip policy drops whole bad records and counts them", "[data]") {
  TempDir dir;
  DatasetSpec spec = LibsvmSpec(dir.Write("s.libsvm", "1 1:1 2:2\n0 1:1 9:2 3:3\n1 4:4\n"));
  spec.on_bad_record = BadRecordPolicy::kSkip;
  auto part = LoadOne(spec);
  REQUIRE(part.ok());
  CHECK(part->num_rows == 2);
  CHECK(part->labels == std::vector<float>{1, 1});
  // Nothing of the bad record's first two features remains.
  CHECK(part->row_offsets == std::vector<int64_t>{0, 2, 3});
  CHECK(part->cols == std::vector<uint32_t>{0, 1, 3});
  CHECK(part->num_cols == 4);
  CHECK(part->skipped_records == 1);
  CHECK(part->skipped_samples ==
        std::vector<std::string>{spec.path +
                                 ":2: feature 3: indices must be strictly increasing, got 3 "
                                 "after 9"});
}

TEST_CASE("gzip libsvm files read like plain ones, errors included", "[data]") {
  TempDir dir;
  std::string path = dir.File("a.libsvm.gz");
  WriteGzip(path, "1 1:1\n\n0 2:2 1:1\n");
  DatasetSpec spec = LibsvmSpec(path);
  SECTION("fail") {
    auto part = LoadOne(spec);
    REQUIRE_FALSE(part.ok());
    CHECK(part.status().message() ==
          path + ":3: feature 2: indices must be strictly increasing, got 1 after 2");
  }
  SECTION("skip") {
    spec.on_bad_record = BadRecordPolicy::kSkip;
    auto part = LoadOne(spec);
    REQUIRE(part.ok());
    CHECK(part->labels == std::vector<float>{1});
    CHECK(part->skipped_records == 1);
  }
}

TEST_CASE("a truncated gzip file is corruption, not a short file", "[data]") {
  TempDir dir;
  std::string full = dir.File("full.libsvm.gz");
  std::string rows;
  for (int i = 0; i < 2000; ++i) rows += std::to_string(i % 2) + " 1:" + std::to_string(i) + "\n";
  WriteGzip(full, rows);
  std::string bytes = TempDir::Read(full);
  DatasetSpec spec = LibsvmSpec(dir.Write("cut.libsvm.gz", bytes.substr(0, bytes.size() / 2)));
  auto part = LoadOne(spec);
  REQUIRE_FALSE(part.ok());
  CHECK(part.status().code() == StatusCode::kCorruption);
  CHECK(part.status().message().rfind(spec.path + ": bad gzip data: ", 0) == 0);
}

}  // namespace
}  // namespace mrtrain::data
