// Partitioning of the text formats: every record lands in exactly one partition for any P,
// whatever the file boundaries, and partitions keep file order.
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/data/dataset.h"
#include "test/engine/data/data_files.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::data {
namespace {

using testing::TempDir;

// Records of uneven length, labelled 0, 1, 2, ... in file order.
std::string LibsvmRecords(int first, int count, const std::string& newline = "\n") {
  std::string out;
  for (int i = first; i < first + count; ++i) {
    out += std::to_string(i);
    for (int f = 1; f <= 1 + i % 4; ++f)
      out += " " + std::to_string(f * 3) + ":0." + std::to_string(i);
    out += newline;
  }
  return out;
}

std::vector<float> Iota(int n) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = static_cast<float>(i);
  return v;
}

TEST_CASE("libsvm partitions cover every record once for any partition count", "[data]") {
  TempDir dir;
  dir.Write("a.libsvm", LibsvmRecords(0, 13));
  dir.Write("b.libsvm", "");  // an empty file must not shift anything
  // Blank lines, a comment, CRLF endings, and no newline after the last record.
  std::string c = "\n# comment\r\n" + LibsvmRecords(13, 7, "\r\n") + "\n" + LibsvmRecords(20, 9);
  c.pop_back();
  dir.Write("c.libsvm", c);
  dir.Write("d.libsvm", LibsvmRecords(29, 1));
  for (int64_t p = 1; p <= 7; ++p) {
    DYNAMIC_SECTION("P = " << p) {
      DatasetSpec spec;
      spec.path = dir.File("*.libsvm");
      spec.format = DataFormat::kLibsvm;
      spec.num_partitions = p;
      auto dataset = Dataset::Open(spec);
      REQUIRE(dataset.ok());
      auto parts = LoadAllForTest(**dataset);
      CHECK(AllLabels(parts) == Iota(30));
      for (const PartitionData& part : parts) {
        CHECK(part.row_offsets.size() == static_cast<size_t>(part.num_rows) + 1);
        CHECK(part.skipped_records == 0);
      }
    }
  }
}

TEST_CASE("csv partitions with a header in every file cover every row once", "[data]") {
  TempDir dir;
  auto rows = [](int first, int count) {
    std::string out = "y,x1,x2\n";
    for (int i = first; i < first + count; ++i) {
      out += std::to_string(i) + "," + std::to_string(i * 10) + "," + std::string(i % 5, ' ') +
             "1.5\n";
    }
    return out;
  };
  dir.Write("p0.csv", rows(0, 11));
  dir.Write("p1.csv", rows(11, 4));
  dir.Write("p2.csv", rows(15, 17));
  for (int64_t p = 1; p <= 7; ++p) {
    DYNAMIC_SECTION("P = " << p) {
      DatasetSpec spec;
      spec.path = dir.path();
      spec.num_partitions = p;
      spec.csv_header = true;
      spec.label_column = "y";
      auto dataset = Dataset::Open(spec);
      REQUIRE(dataset.ok());
      auto parts = LoadAllForTest(**dataset);
      CHECK(AllLabels(parts) == Iota(32));
      for (const PartitionData& part : parts) {
        REQUIRE(part.num_cols == 2);
        for (int64_t r = 0; r < part.num_rows; ++r) {
          CHECK(part.dense[r * 2] == part.labels[r] * 10);
          CHECK(part.dense[r * 2 + 1] == 1.5f);
        }
      }
    }
  }
}

TEST_CASE("a record belongs to the partition holding its first byte", "[data]") {
  TempDir dir;
  DatasetSpec spec;
  spec.path = dir.Write("a.libsvm", "1 1:1\n2 1:2\n");  // records at bytes 0 and 6; 12 bytes
  spec.format = DataFormat::kLibsvm;
  SECTION("a boundary exactly at a record start") {
    spec.num_partitions = 2;
    auto dataset = Dataset::Open(spec);
    REQUIRE(dataset.ok());
    auto parts = LoadAllForTest(**dataset);
    CHECK(parts[0].labels == std::vector<float>{1});
    CHECK(parts[1].labels == std::vector<float>{2});
    CHECK((*dataset)->DescribePartition(1) == spec.path + " bytes [6, 12)");
  }
  SECTION("boundaries inside records") {
    spec.num_partitions = 3;  // [0, 4) [4, 8) [8, 12)
    auto dataset = Dataset::Open(spec);
    REQUIRE(dataset.ok());
    auto parts = LoadAllForTest(**dataset);
    CHECK(parts[0].labels == std::vector<float>{1});
    CHECK(parts[1].labels == std::vector<float>{2});
    CHECK(parts[2].labels.empty());
    CHECK(parts[2].num_rows == 0);
    CHECK(parts[2].row_offsets == std::vector<int64_t>{0});
  }
}

TEST_CASE("a partition spans files and says so", "[data]") {
  TempDir dir;
  std::string a = dir.Write("a.libsvm", "1 1:1\n2 1:2\n");
  std::string b = dir.Write("b.libsvm", "3 1:3\n4 1:4\n");
  DatasetSpec spec;
  spec.path = dir.File("*.libsvm");
  spec.format = DataFormat::kLibsvm;
  spec.num_partitions = 3;  // [0, 8) [8, 16) [16, 24)
  auto dataset = Dataset::Open(spec);
  REQUIRE(dataset.ok());
  CHECK((*dataset)->DescribePartition(1) == a + " bytes [8, 12), " + b + " bytes [0, 4)");
  auto parts = LoadAllForTest(**dataset);
  CHECK(parts[0].labels == std::vector<float>{1, 2});
  CHECK(parts[1].labels == std::vector<float>{3});
  CHECK(parts[2].labels == std::vector<float>{4});
}

TEST_CASE("lines longer than the read buffer are read whole", "[data]") {
  TempDir dir;
  std::string wide = "1";
  for (int f = 1; f <= 300000; ++f) wide += " " + std::to_string(f) + ":1";  // about 3 MB
  DatasetSpec spec;
  spec.path = dir.Write("wide.libsvm", "0 5:1\n" + wide + "\n2 7:1\n");
  spec.format = DataFormat::kLibsvm;
  for (int64_t p = 1; p <= 3; ++p) {
    DYNAMIC_SECTION("P = " << p) {
      spec.num_partitions = p;
      auto dataset = Dataset::Open(spec);
      REQUIRE(dataset.ok());
      auto parts = LoadAllForTest(**dataset);
      CHECK(AllLabels(parts) == std::vector<float>{0, 1, 2});
      int64_t features = 0;
      for (const PartitionData& part : parts) features += static_cast<int64_t>(part.cols.size());
      CHECK(features == 300002);
    }
  }
}

TEST_CASE("gzip files are whole units owned by the partition holding their first byte", "[data]") {
  TempDir dir;
  dir.Write("a.libsvm", LibsvmRecords(0, 10));
  WriteGzip(dir.File("b.libsvm.gz"), LibsvmRecords(10, 25));
  WriteGzip(dir.File("c.libsvm.gz"), "");
  dir.Write("d.libsvm", LibsvmRecords(35, 6));
  for (int64_t p = 1; p <= 7; ++p) {
    DYNAMIC_SECTION("P = " << p) {
      DatasetSpec spec;
      spec.path = dir.path();
      spec.format = DataFormat::kLibsvm;
      spec.num_partitions = p;
      auto dataset = Dataset::Open(spec);
      REQUIRE(dataset.ok());
      auto parts = LoadAllForTest(**dataset);
      CHECK(AllLabels(parts) == Iota(41));
      int owners = 0;
      for (int64_t q = 0; q < p; ++q) {
        const std::string where = (*dataset)->DescribePartition(q);
        if (where.find("b.libsvm.gz (whole)") != std::string::npos) ++owners;
      }
      CHECK(owners == 1);
    }
  }
}

// "path line N" for every record of `text` (a line starting with a digit), in file order.
std::vector<std::string> RecordLines(const std::string& path, const std::string& text) {
  std::vector<std::string> out;
  int64_t line = 1;
  for (size_t at = 0; at < text.size(); ++line) {
    if (text[at] >= '0' && text[at] <= '9') out.push_back(path + " line " + std::to_string(line));
    const size_t nl = text.find('\n', at);
    if (nl == std::string::npos) break;
    at = nl + 1;
  }
  return out;
}

TEST_CASE("every row names the file and line it came from, for any partition count", "[data]") {
  TempDir dir;
  // Blank lines, a comment, CRLF endings, an empty file, a gzip file and no final newline.
  std::string c = "\n# comment\r\n" + LibsvmRecords(13, 7, "\r\n") + "\n" + LibsvmRecords(20, 9);
  c.pop_back();
  const std::vector<std::pair<std::string, std::string>> files = {
      {"a.libsvm", LibsvmRecords(0, 13)},
      {"b.libsvm", ""},
      {"c.libsvm", c},
      {"d.libsvm.gz", "\n" + LibsvmRecords(29, 4)},
      {"e.libsvm", "# two\n# comments\n" + LibsvmRecords(33, 5)}};
  std::vector<std::string> expected;  // by label
  for (const auto& [name, text] : files) {
    if (name.size() > 3 && name.substr(name.size() - 3) == ".gz") {
      WriteGzip(dir.File(name), text);
    } else {
      dir.Write(name, text);
    }
    for (std::string& line : RecordLines(dir.File(name), text)) expected.push_back(line);
  }
  REQUIRE(expected.size() == 38);
  for (int64_t p = 1; p <= 7; ++p) {
    DYNAMIC_SECTION("P = " << p) {
      DatasetSpec spec;
      spec.path = dir.path();
      spec.format = DataFormat::kLibsvm;
      spec.num_partitions = p;
      auto dataset = Dataset::Open(spec);
      REQUIRE(dataset.ok());
      auto parts = LoadAllForTest(**dataset);
      CHECK(AllLabels(parts) == Iota(38));
      for (const PartitionData& part : parts) {
        for (int64_t r = 0; r < part.num_rows; ++r) {
          INFO("label " << part.labels[r]);
          CHECK(DescribeRow(part, r) == expected[static_cast<size_t>(part.labels[r])]);
        }
      }
    }
  }
}

TEST_CASE("csv rows count the header and skipped records in their line numbers", "[data]") {
  TempDir dir;
  DatasetSpec spec;
  spec.path = dir.Write("a.csv", "y,x\n0,1\n1,oops\n\n2,3\n3,4\n");
  spec.csv_header = true;
  spec.on_bad_record = BadRecordPolicy::kSkip;
  auto dataset = Dataset::Open(spec);
  REQUIRE(dataset.ok());
  auto part = (*dataset)->LoadPartition(0);
  REQUIRE(part.ok());
  REQUIRE(part->labels == std::vector<float>{0, 2, 3});
  CHECK(DescribeRow(*part, 0) == spec.path + " line 2");
  CHECK(DescribeRow(*part, 1) == spec.path + " line 5");
  CHECK(DescribeRow(*part, 2) == spec.path + " line 6");
  CHECK(part->sources.runs.size() == 2);  // a run breaks only where lines give no row

  PartitionData copy;
  const int64_t rows[] = {2, 0};
  part->Gather(rows, 2, &copy);
  CHECK_FALSE(DescribeRow(copy, 0).has_value());  // a copy maps back through its indices
}

}  // namespace
}  // namespace mrtrain::data
