#include "engine/data/shard_dataset.h"

#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/data/dataset.h"
#include "engine/data/shard_format.h"
#include "test/engine/data/data_files.h"
#include "test/engine/data/shard_test_files.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::data {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

void RequireSameDataset(const DatasetSpec& text, const DatasetSpec& shards) {
  auto a = Dataset::Open(text);
  auto b = Dataset::Open(shards);
  REQUIRE(a.ok());
  INFO((b.ok() ? "" : b.status().message()));
  REQUIRE(b.ok());
  REQUIRE((*b)->num_partitions() == (*a)->num_partitions());
  const std::vector<PartitionData> from_text = LoadAllForTest(**a);
  const std::vector<PartitionData> from_shards = LoadAllForTest(**b);
  for (size_t p = 0; p < from_text.size(); ++p) {
    INFO("partition " << p);
    RequireSamePartition(from_text[p], from_shards[p]);
    // Served in place (cache: disk): the same rows, none copied.
    auto borrowed = (*b)->BorrowPartition(static_cast<int64_t>(p));
    REQUIRE(borrowed.ok());
    REQUIRE(borrowed->borrowed.has_value());
    CHECK(borrowed->labels.empty());
    CHECK(borrowed->dense.empty());
    CHECK(borrowed->values.empty());
    RequireSamePartition(from_text[p], *borrowed);
  }
}

// The first error loading (or, with `borrow`, borrowing) every partition, or "ok".
std::string Message(const DatasetSpec& spec, bool borrow = false) {
  auto dataset = Dataset::Open(spec);
  if (!dataset.ok()) return dataset.status().message();
  for (int64_t p = 0; p < (*dataset)->num_partitions(); ++p) {
    auto part = borrow ? (*dataset)->BorrowPartition(p) : (*dataset)->LoadPartition(p);
    if (!part.ok()) return part.status().message();
  }
  return "ok";
}

TEST_CASE("shards give the libsvm reader's partitions bit for bit, skipped records included",
          "[data]") {
  TempDir dir;
  const DatasetSpec text = SmallLibsvmForTest(dir.path(), 40, 3);
  const DatasetSpec shards = ConvertForTest(text, dir.File("shards"));
  RequireSameDataset(text, shards);
  CHECK(fs::exists(dir.File("shards/part-00002.mrs")));
  // A row's source is still named as in the text: shards keep the byte offsets of their runs.
  auto dataset = Dataset::Open(shards);
  REQUIRE(dataset.ok());
  auto part = (*dataset)->LoadPartition(0);
  REQUIRE(part.ok());
  CHECK(DescribeRow(*part, 1) == text.path + " line 3");
}

TEST_CASE("shards give the csv reader's dense partitions bit for bit", "[data]") {
  TempDir dir;
  std::string csv = "y,a,b\n";
  for (int r = 0; r < 25; ++r) {
    csv += std::to_string(r % 2) + "," + std::to_string(r * 0.1) + "," + std::to_string(-r) + "\n";
  }
  DatasetSpec text;
  text.path = dir.Write("t.csv", csv);
  text.format = DataFormat::kCsv;
  text.csv_header = true;
  text.label_column = "y";
  text.num_partitions = 4;
  RequireSameDataset(text, ConvertForTest(text, dir.File("out")));
}

TEST_CASE("shards give the idx reader's partitions from gzip files bit for bit", "[data]") {
  TempDir dir;
  std::string pixels, labels;
  for (int i = 0; i < 9; ++i) {
    labels.push_back(static_cast<char>(i % 3));
    for (int j = 0; j < 4; ++j) pixels.push_back(static_cast<char>(7 * i + j));
  }
  DatasetSpec text;
  text.path = dir.File("images.idx.gz");
  text.labels_path = dir.File("labels.idx.gz");
  WriteGzip(text.path, IdxFile(0x08, {9, 2, 2}, pixels));
  WriteGzip(text.labels_path, IdxFile(0x08, {9}, labels));
  text.format = DataFormat::kIdx;
  text.num_partitions = 2;
  RequireSameDataset(text, ConvertForTest(text, dir.File("out")));
}

TEST_CASE("a shard set mixing two conversions is refused naming both files and specs", "[data]") {
  TempDir dir;
  DatasetSpec a = SmallLibsvmForTest(dir.path(), 30, 2);
  DatasetSpec b = a;
  b.num_features = 64;
  DatasetSpec shards = ConvertForTest(a, dir.File("a"));
  ConvertForTest(b, dir.File("b"));
  fs::copy_file(dir.File("b/part-00001.mrs"), dir.File("a/part-00001.mrs"),
                fs::copy_options::overwrite_existing);
  const std::string message = Message(shards);
  CHECK_THAT(message, Catch::Contains(dir.File("a/part-00001.mrs") + " was converted from {") &&
                          Catch::Contains("features=64") &&
                          Catch::Contains("but " + dir.File("a/part-00000.mrs") + " from {") &&
                          Catch::Contains("features=0") &&
                          Catch::Contains("a shard set holds the files of one conversion"));
}

TEST_CASE("a shard set with a missing partition or another partition count is refused", "[data]") {
  TempDir dir;
  DatasetSpec shards = ConvertForTest(SmallLibsvmForTest(dir.path(), 30, 3), dir.File("s"));
  SECTION("partition count") {
    shards.num_partitions = 2;
    CHECK_THAT(Message(shards),
               Catch::StartsWith(dir.File("s") + ": the spec asks for 2 partitions, but the "
                                                 "shards were converted from {format=libsvm") &&
                   Catch::Contains("} in 3 partitions: set partitions to 3 or convert again"));
  }
  SECTION("missing file") {
    fs::remove(dir.File("s/part-00001.mrs"));
    CHECK_THAT(Message(shards), Catch::Contains(" holds 2 of the 3 shards of {") &&
                                    Catch::EndsWith(": partition 1 (part-00001.mrs) is missing"));
  }
}

TEST_CASE("shard labels are checked against the job's label rule, naming the source line",
          "[data]") {
  TempDir dir;
  DatasetSpec text;
  text.path = dir.Write("l.svm", "1 1:1\n2 1:1\n");
  text.format = DataFormat::kLibsvm;
  DatasetSpec shards = ConvertForTest(text, dir.File("s"));
  shards.label_kind = LabelKind::kBinary;
  shards.label_rule = "model.type is logistic";
  CHECK(Message(shards, /*borrow=*/true) == Message(shards));
  CHECK(Message(shards) == text.path +
                               " line 2 (convert the source again with this job's spec "
                               "to skip or fail such records there): label 2: expected 0 "
                               "or 1 (-1 reads as 0) (model.type is logistic)");
}

TEST_CASE("a shard partition over max_decoded_mb fails naming the file and the limit", "[data]") {
  TempDir dir;
  DatasetSpec text;
  std::string csv;
  for (int r = 0; r < 300; ++r) {
    csv += "1";
    for (int c = 0; c < 1000; ++c) csv += ",2";
    csv += "\n";
  }
  text.path = dir.Write("w.csv", csv);
  text.format = DataFormat::kCsv;
  DatasetSpec shards = ConvertForTest(text, dir.File("s"));
  shards.max_decoded_mb = 1;  // 300 rows of 1000 floats: 1.2 MB
  CHECK(Message(shards, /*borrow=*/true) == Message(shards));
  CHECK(Message(shards) == dir.File("s/part-00000.mrs") +
                               ": the partition's 1201200 decoded bytes pass max_decoded_mb (1 "
                               "MiB); raise max_decoded_mb or convert into more partitions");
}

}  // namespace
}  // namespace mrtrain::data
