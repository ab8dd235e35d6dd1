#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/data/dataset.h"
#include "test/engine/data/data_files.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::data {
namespace {

using testing::TempDir;

DatasetSpec CsvSpec(const std::string& path) {
  DatasetSpec spec;
  spec.path = path;
  spec.format = DataFormat::kCsv;
  return spec;
}

Result<PartitionData> LoadOne(const DatasetSpec& spec) {
  MRTRAIN_ASSIGN_OR_RETURN(auto dataset, Dataset::Open(spec));
  return dataset->LoadPartition(0);
}

TEST_CASE("csv reads dense rows with the label taken out", "[data]") {
  TempDir dir;
  DatasetSpec spec = CsvSpec(dir.Write("train.csv", "1,0.5,2\n0,-1.5e1,+3\n"));
  SECTION("label column by index") {
    auto part = LoadOne(spec);
    REQUIRE(part.ok());
    CHECK_FALSE(part->is_sparse);
    CHECK(part->num_rows == 2);
    CHECK(part->num_cols == 2);
    CHECK(part->labels == std::vector<float>{1, 0});
    CHECK(part->dense == std::vector<float>{0.5f, 2, -15, 3});
  }
  SECTION("label column counted from the end") {
    spec.label_column = "-1";
    auto part = LoadOne(spec);
    REQUIRE(part.ok());
    CHECK(part->labels == std::vector<float>{2, 3});
    CHECK(part->dense == std::vector<float>{1, 0.5f, 0, -15});
  }
  SECTION("features scaled") {
    spec.scale = 2;
    auto part = LoadOne(spec);
    REQUIRE(part.ok());
    CHECK(part->labels == std::vector<float>{1, 0});
    CHECK(part->dense == std::vector<float>{1, 4, -30, 6});
  }
}

TEST_CASE("csv finds the label by header name, with quotes, spaces and a BOM", "[data]") {
  TempDir dir;
  DatasetSpec spec =
      CsvSpec(dir.Write("h.csv", "\xEF\xBB\xBF\"x1\"; label ;x2\r\n1;\"7\"; 2\r\n\r\n3;8;4\r\n"));
  spec.csv_header = true;
  spec.label_column = "label";
  spec.delimiter = ';';
  auto part = LoadOne(spec);
  REQUIRE(part.ok());
  CHECK(part->labels == std::vector<float>{7, 8});
  CHECK(part->dense == std::vector<float>{1, 2, 3, 4});
}

TEST_CASE("csv rejects label columns it cannot find", "[data]") {
  TempDir dir;
  DatasetSpec spec = CsvSpec(dir.Write("a.csv", "a,b\n1,2\n"));
  SECTION("a name without a header") {
    spec.label_column = "b";
    auto dataset = Dataset::Open(spec);
    REQUIRE_FALSE(dataset.ok());
    CHECK(dataset.status().code() == StatusCode::kInvalidArgument);
    CHECK(dataset.status().message() ==
          "label_column 'b' is a column name, which needs csv_header: true");
  }
  SECTION("a name not in the header") {
    spec.csv_header = true;
    spec.label_column = "y";
    auto dataset = Dataset::Open(spec);
    REQUIRE_FALSE(dataset.ok());
    CHECK(dataset.status().code() == StatusCode::kInvalidArgument);
    CHECK(dataset.status().message() ==
          "label_column 'y' is not in the header of " + spec.path + " (a, b)");
  }
  SECTION("an index out of range") {
    spec.label_column = "-3";
    auto dataset = Dataset::Open(spec);
    REQUIRE_FALSE(dataset.ok());
    CHECK(dataset.status().code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("csv errors name the file, line and column", "[data]") {
  TempDir dir;
  std::string good;
  for (int i = 0; i < 40; ++i) good += std::to_string(i) + ",1,2\n";
  SECTION("a bad number") {
    // Line 43 of the second file, read by the last of four partitions.
    dir.Write("a.csv", good);
    std::string path = dir.Write("b.csv", good + "\n1,2,3\n1,abc,3\n" + good);
    DatasetSpec spec = CsvSpec(dir.File("*.csv"));
    spec.num_partitions = 4;
    auto dataset = Dataset::Open(spec);
    REQUIRE(dataset.ok());
    Status first_error;
    for (int64_t p = 0; p < 4 && first_error.ok(); ++p) {
      first_error = (*dataset)->LoadPartition(p).status();
    }
    CHECK(first_error.code() == StatusCode::kCorruption);
    CHECK(first_error.message() == path + ":43: column 2: expected a number, got 'abc'");
  }
  SECTION("a wrong column count") {
    DatasetSpec spec = CsvSpec(dir.Write("c.csv", "1,2,3\n4,5\n"));
    auto part = LoadOne(spec);
    REQUIRE_FALSE(part.ok());
    CHECK(part.status().code() == StatusCode::kCorruption);
    CHECK(part.status().message() == spec.path + ":2: expected 3 columns, got 2");
  }
  SECTION("an empty field") {
    DatasetSpec spec = CsvSpec(dir.Write("c.csv", "1,2,3\n4,5,\n"));
    auto part = LoadOne(spec);
    REQUIRE_FALSE(part.ok());
    CHECK(part.status().message() == spec.path + ":2: column 3: expected a number, got ''");
  }
  SECTION("a non-finite value") {
    DatasetSpec spec = CsvSpec(dir.Write("c.csv", "1,nan,3\n"));
    auto part = LoadOne(spec);
    REQUIRE_FALSE(part.ok());
    CHECK(part.status().message() == spec.path + ":1: column 2: expected a number, got 'nan'");
  }
  SECTION("a header that differs between files") {
    dir.Write("a.csv", "y,x\n1,2\n");
    std::string b = dir.Write("b.csv", "x,y\n3,4\n");
    DatasetSpec spec = CsvSpec(dir.File("*.csv"));
    spec.csv_header = true;
    spec.on_bad_record = BadRecordPolicy::kSkip;  // a header is not a record to skip
    auto part = LoadOne(spec);
    REQUIRE_FALSE(part.ok());
    CHECK(part.status().code() == StatusCode::kInvalidArgument);
    CHECK(part.status().message() ==
          b + ":1: header differs from the header of " + dir.File("a.csv") + " (y, x)");
  }
  SECTION("no rows at all") {
    DatasetSpec spec = CsvSpec(dir.Write("empty.csv", "\n\n"));
    auto dataset = Dataset::Open(spec);
    REQUIRE_FALSE(dataset.ok());
    CHECK(dataset.status().code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("csv skip policy counts every bad row and keeps the first five reasons", "[data]") {
  TempDir dir;
  std::string text = "0,1\n";
  for (int i = 1; i <= 8; ++i) text += std::to_string(i) + ",x\n" + std::to_string(i) + ",1\n";
  text += "9,1,2\n";
  DatasetSpec spec = CsvSpec(dir.Write("s.csv", text));
  spec.on_bad_record = BadRecordPolicy::kSkip;
  auto part = LoadOne(spec);
  REQUIRE(part.ok());
  CHECK(part->num_rows == 9);
  CHECK(part->labels == std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(part->dense == std::vector<float>(9, 1.0f));
  CHECK(part->skipped_records == 9);
  REQUIRE(part->skipped_samples.size() == 5);
  CHECK(part->skipped_samples[0] == spec.path + ":2: column 2: expected a number, got 'x'");
  CHECK(part->skipped_samples[4] == spec.path + ":10: column 2: expected a number, got 'x'");
}

TEST_CASE("gzip csv files read like plain ones", "[data]") {
  TempDir dir;
  // a.csv.gz is much bigger than b.csv.gz, so with two partitions each owns one file.
  std::string a = "y,x\n";
  for (int i = 0; i < 300; ++i) a += std::to_string(i) + "," + std::to_string(i * 7 % 101) + "\n";
  WriteGzip(dir.File("a.csv.gz"), a);
  WriteGzip(dir.File("b.csv.gz"), "y,x\n5,6\n5,oops\n");
  DatasetSpec spec = CsvSpec(dir.File("*.csv.gz"));
  spec.csv_header = true;
  spec.num_partitions = 2;
  auto dataset = Dataset::Open(spec);
  REQUIRE(dataset.ok());
  CHECK((*dataset)->DescribePartition(1) == dir.File("b.csv.gz") + " (whole)");
  auto first = (*dataset)->LoadPartition(0);
  REQUIRE(first.ok());
  REQUIRE(first->num_rows == 300);
  CHECK(first->labels[299] == 299);
  CHECK(first->dense[299] == 299 * 7 % 101);
  auto second = (*dataset)->LoadPartition(1);
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().message() ==
        dir.File("b.csv.gz") + ":3: column 2: expected a number, got 'oops'");
}

}  // namespace
}  // namespace mrtrain::data
