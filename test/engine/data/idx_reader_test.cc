#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/data/dataset.h"
#include "test/engine/data/data_files.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::data {
namespace {

using testing::TempDir;

constexpr uint8_t kUbyte = 0x08;
constexpr uint8_t kFloat = 0x0D;

// Five 2x3 images whose pixel j of record i is 10 * i + j, labelled 9 - i.
std::string Pixels() {
  std::string data;
  for (int i = 0; i < 5; ++i) {
    for (int j = 0; j < 6; ++j) data.push_back(static_cast<char>(10 * i + j));
  }
  return data;
}

std::string Labels(int n) {
  std::string data;
  for (int i = 0; i < n; ++i) data.push_back(static_cast<char>(9 - i));
  return data;
}

DatasetSpec IdxSpec(const std::string& images, const std::string& labels, int64_t parts) {
  DatasetSpec spec;
  spec.path = images;
  spec.labels_path = labels;
  spec.format = DataFormat::kIdx;
  spec.num_partitions = parts;
  return spec;
}

void CheckPixels(const std::vector<PartitionData>& parts, float scale) {
  int64_t record = 0;
  for (const PartitionData& part : parts) {
    REQUIRE(part.num_cols == 6);
    for (int64_t r = 0; r < part.num_rows; ++r, ++record) {
      CHECK(part.labels[r] == 9 - record);
      for (int j = 0; j < 6; ++j) {
        CHECK(part.dense[r * 6 + j] == Approx((10 * record + j) * scale));
      }
    }
  }
  CHECK(record == 5);
}

TEST_CASE("idx splits records into equal contiguous ranges, scaled to [0, 1]", "[data]") {
  TempDir dir;
  std::string images = dir.Write("img.idx3", IdxFile(kUbyte, {5, 2, 3}, Pixels()));
  std::string labels = dir.Write("lab.idx1", IdxFile(kUbyte, {5}, Labels(5)));
  auto dataset = Dataset::Open(IdxSpec(images, labels, 2));
  REQUIRE(dataset.ok());
  CHECK((*dataset)->DescribePartition(1) == images + " records [2, 5)");
  auto parts = LoadAllForTest(**dataset);
  CHECK(parts[0].num_rows == 2);
  CHECK(parts[1].num_rows == 3);
  CHECK_FALSE(parts[0].is_sparse);
  CheckPixels(parts, 1.0f / 255);
}

TEST_CASE("idx rows name their record index in the images file", "[data]") {
  TempDir dir;
  std::string images = dir.Write("img.idx3", IdxFile(kUbyte, {5, 2, 3}, Pixels()));
  std::string labels = dir.Write("lab.idx1", IdxFile(kUbyte, {5}, Labels(5)));
  auto dataset = Dataset::Open(IdxSpec(images, labels, 2));
  REQUIRE(dataset.ok());
  auto parts = LoadAllForTest(**dataset);
  CHECK(DescribeRow(parts[0], 1) == images + " record index 1");
  CHECK(DescribeRow(parts[1], 0) == images + " record index 2");
  CHECK(DescribeRow(parts[1], 2) == images + " record index 4");
}

TEST_CASE("idx reads gzip files and float32 data", "[data]") {
  TempDir dir;
  SECTION("gzip") {
    WriteGzip(dir.File("img.gz"), IdxFile(kUbyte, {5, 6}, Pixels()));
    WriteGzip(dir.File("lab.gz"), IdxFile(kUbyte, {5}, Labels(5)));
    auto spec = IdxSpec(dir.File("img.gz"), dir.File("lab.gz"), 3);
    spec.scale = 1;
    auto dataset = Dataset::Open(spec);
    REQUIRE(dataset.ok());
    CheckPixels(LoadAllForTest(**dataset), 1.0f);
  }
  SECTION("float32") {
    std::vector<float> pixels, labels;
    for (int i = 0; i < 5; ++i) {
      labels.push_back(9.0f - i);
      for (int j = 0; j < 6; ++j) pixels.push_back(10.0f * i + j);
    }
    std::string images = dir.Write("img", IdxFile(kFloat, {5, 3, 2}, BigEndianFloats(pixels)));
    std::string labs = dir.Write("lab", IdxFile(kFloat, {5}, BigEndianFloats(labels)));
    auto dataset = Dataset::Open(IdxSpec(images, labs, 4));
    REQUIRE(dataset.ok());
    CheckPixels(LoadAllForTest(**dataset), 1.0f);
  }
}

TEST_CASE("gzip idx partitions read the same in any order", "[data]") {
  // Later partitions resume from streams earlier ones parked; any order must give the same rows.
  TempDir dir;
  WriteGzip(dir.File("img.gz"), IdxFile(kUbyte, {5, 6}, Pixels()));
  WriteGzip(dir.File("lab.gz"), IdxFile(kUbyte, {5}, Labels(5)));
  auto dataset = Dataset::Open(IdxSpec(dir.File("img.gz"), dir.File("lab.gz"), 5));
  REQUIRE(dataset.ok());
  std::vector<PartitionData> parts(5);
  for (int64_t p : {3, 4, 0, 2, 1, 1, 4, 3}) {
    auto part = (*dataset)->LoadPartition(p);
    REQUIRE(part.ok());
    parts[p] = std::move(part).value();
  }
  CheckPixels(parts, 1.0f / 255);
  CheckPixels(LoadAllForTest(**dataset), 1.0f / 255);
}

TEST_CASE("idx rejects bad headers and mismatched files", "[data]") {
  TempDir dir;
  std::string images = dir.Write("img.idx3", IdxFile(kUbyte, {5, 2, 3}, Pixels()));
  std::string labels = dir.Write("lab.idx1", IdxFile(kUbyte, {5}, Labels(5)));
  SECTION("labels file with an images magic") {
    auto dataset = Dataset::Open(IdxSpec(images, images, 1));
    REQUIRE_FALSE(dataset.ok());
    CHECK(dataset.status().code() == StatusCode::kCorruption);
    CHECK(dataset.status().message() ==
          images + ": expected magic 0x00000801 (or 0x00000D01 for float32), got 0x00000803");
  }
  SECTION("images file with a text magic") {
    std::string text = dir.Write("img.csv", "1,2,3\n");
    auto dataset = Dataset::Open(IdxSpec(text, labels, 1));
    REQUIRE_FALSE(dataset.ok());
    CHECK(dataset.status().code() == StatusCode::kCorruption);
    CHECK(dataset.status().message() == text +
                                            ": expected magic 0x00000803 (type 0x08 or 0x0D, at "
                                            "least 2 dimensions), got 0x312C322C");
  }
  SECTION("label count mismatch") {
    std::string four = dir.Write("four.idx1", IdxFile(kUbyte, {4}, Labels(4)));
    auto dataset = Dataset::Open(IdxSpec(images, four, 1));
    REQUIRE_FALSE(dataset.ok());
    CHECK(dataset.status().code() == StatusCode::kInvalidArgument);
    CHECK(dataset.status().message() == four + " has 4 labels but " + images + " has 5 records");
  }
  SECTION("truncated plain file") {
    std::string cut = dir.Write("cut.idx3", IdxFile(kUbyte, {5, 2, 3}, Pixels().substr(0, 20)));
    auto dataset = Dataset::Open(IdxSpec(cut, labels, 1));
    REQUIRE_FALSE(dataset.ok());
    CHECK(dataset.status().code() == StatusCode::kCorruption);
    CHECK(dataset.status().message() == cut +
                                            ": expected 46 bytes for 5 records of 6 bytes, got "
                                            "36: truncated at record index 3");
  }
  SECTION("missing labels file") {
    auto dataset = Dataset::Open(IdxSpec(images, dir.File("nope.idx1"), 1));
    REQUIRE_FALSE(dataset.ok());
    CHECK(dataset.status().code() == StatusCode::kNotFound);
  }
  SECTION("no labels path") {
    auto dataset = Dataset::Open(IdxSpec(images, "", 1));
    REQUIRE_FALSE(dataset.ok());
    CHECK(dataset.status().code() == StatusCode::kInvalidArgument);
  }
  SECTION("more partitions than records") {
    auto dataset = Dataset::Open(IdxSpec(images, labels, 6));
    REQUIRE_FALSE(dataset.ok());
    CHECK(dataset.status().code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("a truncated gzip idx file fails only the partitions it cuts, naming the record",
          "[data]") {
  TempDir dir;
  WriteGzip(dir.File("img.gz"), IdxFile(kUbyte, {5, 2, 3}, Pixels().substr(0, 20)));
  WriteGzip(dir.File("lab.gz"), IdxFile(kUbyte, {5}, Labels(5)));
  auto dataset = Dataset::Open(IdxSpec(dir.File("img.gz"), dir.File("lab.gz"), 2));
  REQUIRE(dataset.ok());
  CHECK((*dataset)->LoadPartition(0).ok());
  auto part = (*dataset)->LoadPartition(1);
  REQUIRE_FALSE(part.ok());
  CHECK(part.status().code() == StatusCode::kCorruption);
  CHECK(part.status().message() == dir.File("img.gz") +
                                       ": truncated at record index 3 of 5: expected 6 bytes "
                                       "per record");
}

TEST_CASE("an idx header claiming more data than its file can hold fails at open", "[data]") {
  // Found by test/fuzz:idx_fuzz: a partition's floats are allocated from the header's counts
  // before they are read, so the claim must be checked first.
  TempDir dir;
  SECTION("a gzip file claiming more than deflate can expand to") {
    // 5 records of 2^30 bytes from a few dozen compressed bytes.
    WriteGzip(dir.File("img.gz"), IdxFile(kUbyte, {5, 1u << 15, 1u << 15}, Pixels()));
    WriteGzip(dir.File("lab.gz"), IdxFile(kUbyte, {5}, Labels(5)));
    auto dataset = Dataset::Open(IdxSpec(dir.File("img.gz"), dir.File("lab.gz"), 1));
    REQUIRE_FALSE(dataset.ok());
    CHECK(dataset.status().code() == StatusCode::kCorruption);
    CHECK(dataset.status().message().rfind(
              dir.File("img.gz") + ": the header gives 5 records of 1073741824 bytes, more than "
                                   "a gzip file of ",
              0) == 0);
  }
  SECTION("dimensions whose data would pass 2^62 bytes") {
    std::string images = dir.Write("img", IdxFile(kFloat, {0xFFFFFFFFu, 1u << 31}, ""));
    std::string labels = dir.Write("lab", IdxFile(kFloat, {0xFFFFFFFFu}, ""));
    auto dataset = Dataset::Open(IdxSpec(images, labels, 1));
    REQUIRE_FALSE(dataset.ok());
    CHECK(dataset.status().code() == StatusCode::kCorruption);
    CHECK(dataset.status().message() ==
          images + ": 4294967295 records of 8589934592 bytes are more than 2^62 bytes");
  }
}

TEST_CASE("gzip idx data after the last record is corruption", "[data]") {
  TempDir dir;
  WriteGzip(dir.File("img.gz"), IdxFile(kUbyte, {5, 2, 3}, Pixels() + "extra"));
  WriteGzip(dir.File("lab.gz"), IdxFile(kUbyte, {5}, Labels(5)));
  auto dataset = Dataset::Open(IdxSpec(dir.File("img.gz"), dir.File("lab.gz"), 1));
  REQUIRE(dataset.ok());
  auto part = (*dataset)->LoadPartition(0);
  REQUIRE_FALSE(part.ok());
  CHECK(part.status().message() ==
        dir.File("img.gz") + ": data after the last record (record index 5)");
}

const char kFashion[] = "/usr/share/datasets/fashion-mnist/";

bool FashionExists(const std::string& name) {
  if (access((std::string(kFashion) + name).c_str(), R_OK) == 0) return true;
  WARN("skipped: " << kFashion << name << " is not installed");
  return false;
}

TEST_CASE("the real Fashion-MNIST test set loads as 10000 rows of 784 pixels", "[data]") {
  if (!FashionExists("t10k-images-idx3-ubyte.gz")) return;
  auto spec = IdxSpec(std::string(kFashion) + "t10k-images-idx3-ubyte.gz",
                      std::string(kFashion) + "t10k-labels-idx1-ubyte.gz", 3);
  auto dataset = Dataset::Open(spec);
  REQUIRE(dataset.ok());
  auto parts = LoadAllForTest(**dataset);
  int64_t rows = 0;
  std::vector<int64_t> per_class(10);
  for (const PartitionData& part : parts) {
    rows += part.num_rows;
    REQUIRE(part.num_cols == 784);
    REQUIRE(part.dense.size() == static_cast<size_t>(part.num_rows) * 784);
    auto [lo, hi] = std::minmax_element(part.dense.begin(), part.dense.end());
    CHECK(*lo == 0.0f);
    CHECK(*hi == 1.0f);
    for (float label : part.labels) {
      const bool is_class = label >= 0 && label <= 9 && label == static_cast<int>(label);
      if (!is_class) FAIL("label " << label << " is not a class in 0..9");
      ++per_class[static_cast<int>(label)];
    }
  }
  CHECK(rows == 10000);
  CHECK(per_class == std::vector<int64_t>(10, 1000));  // Fashion-MNIST test is balanced
}

TEST_CASE("the real Fashion-MNIST train set loads as 60000 rows", "[data][fashion_train]") {
  if (!FashionExists("train-images-idx3-ubyte.gz")) return;
  auto spec = IdxSpec(std::string(kFashion) + "train-images-idx3-ubyte.gz",
                      std::string(kFashion) + "train-labels-idx1-ubyte.gz", 1);
  auto dataset = Dataset::Open(spec);
  REQUIRE(dataset.ok());
  auto part = (*dataset)->LoadPartition(0);
  REQUIRE(part.ok());
  CHECK(part->num_rows == 60000);
  CHECK(part->num_cols == 784);
}

}  // namespace
}  // namespace mrtrain::data
