// What the readers refuse before it costs memory or trains on the wrong thing: inputs past
// max_decoded_mb, labels the model cannot use, non-finite idx values, and a csv width that one
// malformed first row would decide (issue 10, items 4, 5, 6, 10, 11, 14).

#include <cmath>
#include <limits>
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

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

DatasetSpec Spec(const std::string& path, DataFormat format, int64_t partitions = 1) {
  DatasetSpec spec;
  spec.path = path;
  spec.format = format;
  spec.num_partitions = partitions;
  return spec;
}

// The error of loading every partition; the test fails when all load.
Status LoadError(const DatasetSpec& spec) {
  auto dataset = Dataset::Open(spec);
  if (!dataset.ok()) return dataset.status();
  for (int64_t p = 0; p < spec.num_partitions; ++p) {
    Result<PartitionData> part = (*dataset)->LoadPartition(p);
    if (!part.ok()) return part.status();
  }
  FAIL("every partition loaded");
  return Status::Ok();
}

DatasetSpec ClassSpec(DatasetSpec spec, int64_t classes) {
  spec.label_kind = LabelKind::kClass;
  spec.num_classes = classes;
  spec.label_rule = "model.classes is " + std::to_string(classes);
  return spec;
}

TEST_CASE("a libsvm index past the feature limit fails at its line, naming index and limit",
          "[data]") {
  TempDir dir;
  const std::string path = dir.Write("wide.svm", "1 1:0.5\n0 2:0.25 2147483647:1\n");
  const Status s = LoadError(Spec(path, DataFormat::kLibsvm));
  INFO(s.ToString());
  CHECK(s.code() == StatusCode::kCorruption);
  CHECK(s.message() == path +
                           ":2: feature 2: index 2147483647 is over the limit of 268435456 "
                           "features that max_decoded_mb (1024 MiB) allows");

  SECTION("the limit follows max_decoded_mb, and skip drops the record") {
    DatasetSpec spec = Spec(path, DataFormat::kLibsvm);
    spec.max_decoded_mb = 1;  // 262144 features
    spec.on_bad_record = BadRecordPolicy::kSkip;
    dir.Write("wide.svm", "1 1:0.5\n0 262144:1\n1 262145:1\n");
    auto dataset = Dataset::Open(spec);
    REQUIRE(dataset.ok());
    auto part = (*dataset)->LoadPartition(0);
    REQUIRE(part.ok());
    CHECK(part->num_rows == 2);
    CHECK(part->num_cols == 262144);
    CHECK(part->skipped_records == 1);
    REQUIRE(part->skipped_samples.size() == 1);
    CHECK(Contains(part->skipped_samples[0], "wide.svm:3: feature 1: index 262145"));
  }
  SECTION("a features key past the limit is refused when the dataset opens") {
    DatasetSpec spec = Spec(path, DataFormat::kLibsvm);
    spec.num_features = 268435457;
    const Status open = Dataset::Open(spec).status();
    CHECK(open.code() == StatusCode::kInvalidArgument);
    CHECK(Contains(open.message(), "num_features 268435457 is over the limit of 268435456"));
  }
}

TEST_CASE("a gzip csv line longer than a quarter of max_decoded_mb fails naming file, line, limit",
          "[data]") {
  TempDir dir;
  const std::string path = dir.File("long.csv.gz");
  // 2 MiB of "1," on line 2 (compressed to a few KiB), past the 256 KiB a 1 MiB budget allows.
  std::string line;
  for (int i = 0; i < (1 << 20); ++i) line += "1,";
  WriteGzip(path, "1,2\n" + line + "1\n");
  DatasetSpec spec = Spec(path, DataFormat::kCsv);
  spec.max_decoded_mb = 1;
  spec.on_bad_record = BadRecordPolicy::kSkip;  // a line this long is not a skippable record
  const Status s = LoadError(spec);
  INFO(s.ToString());
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message() == path +
                           ":2: a line longer than 262144 bytes, the limit (a quarter of "
                           "max_decoded_mb); is this a text file?");

  SECTION("opening (what validate does) fails the same way when the first line is the long one") {
    WriteGzip(path, line + "1\n");
    const Status open = Dataset::Open(spec).status();
    CHECK(open.code() == StatusCode::kInvalidArgument);
    CHECK(Contains(open.message(), path + ":1: a line longer than 262144 bytes"));
  }
}

TEST_CASE("a text partition whose decoded values pass max_decoded_mb fails at the line", "[data]") {
  TempDir dir;
  // 40000 rows of 8 numbers: 1.28 MB of floats and labels, past a 1 MiB budget in one partition.
  std::string text;
  for (int i = 0; i < 40000; ++i) text += "1,2,3,4,5,6,7,8\n";
  const std::string path = dir.File("many.csv.gz");
  WriteGzip(path, text);
  DatasetSpec spec = Spec(path, DataFormat::kCsv);
  spec.max_decoded_mb = 1;
  const Status s = LoadError(spec);
  INFO(s.ToString());
  CHECK(s.code() == StatusCode::kInvalidArgument);
  // 1 MiB holds 32768 rows of 8 floats; the row after them passes it.
  CHECK(Contains(s.message(), path + ":32769: the partition holding this line passes "
                                     "max_decoded_mb (1 MiB) once decoded"));
}

TEST_CASE("an idx file whose partitions would pass max_decoded_mb fails when it opens", "[data]") {
  TempDir dir;
  // 1000 records of 28x28 bytes: 3.14 MB as floats (with labels), an honest gzip file.
  const std::string images = dir.File("images.gz");
  const std::string labels = dir.File("labels.gz");
  WriteGzip(images, IdxFile(kUbyte, {1000, 28, 28}, std::string(1000 * 784, '\0')));
  WriteGzip(labels, IdxFile(kUbyte, {1000}, std::string(1000, '\1')));
  DatasetSpec spec = Spec(images, DataFormat::kIdx);
  spec.labels_path = labels;
  spec.max_decoded_mb = 1;
  const Status s = Dataset::Open(spec).status();
  INFO(s.ToString());
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message() == images +
                           ": 1000 records of 784 values in 1 partition(s) take 2 MiB per "
                           "partition once decoded, over max_decoded_mb (1 MiB); use more "
                           "partitions or raise max_decoded_mb");
  spec.num_partitions = 4;  // 250 records, 785000 bytes each
  CHECK(Dataset::Open(spec).ok());
}

TEST_CASE("idx float values that are NaN or inf are bad records, named by record index", "[data]") {
  TempDir dir;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  // Four records of two values; records 1 and 2 are bad.
  const std::string images = dir.Write(
      "images", IdxFile(kFloat, {4, 1, 2}, BigEndianFloats({0, 0.5f, nan, 1, 2, -inf, 3, 3.5f})));
  const std::string labels = dir.Write("labels", IdxFile(kUbyte, {4}, std::string("\0\1\0\1", 4)));
  DatasetSpec spec = Spec(images, DataFormat::kIdx);
  spec.labels_path = labels;

  const Status s = LoadError(spec);
  CHECK(s.code() == StatusCode::kCorruption);
  CHECK(s.message() == images + " record index 1: value 0 is not a finite number");

  spec.on_bad_record = BadRecordPolicy::kSkip;
  spec.num_partitions = 2;
  auto dataset = Dataset::Open(spec);
  REQUIRE(dataset.ok());
  const std::vector<PartitionData> parts = LoadAllForTest(**dataset);
  CHECK(parts[0].num_rows == 1);
  CHECK(parts[1].num_rows == 1);
  CHECK(parts[0].skipped_records + parts[1].skipped_records == 2);
  CHECK(parts[0].dense == std::vector<float>{0, 0.5f});
  CHECK(parts[1].dense == std::vector<float>{3, 3.5f});
  CHECK(AllLabels(parts) == std::vector<float>{0, 1});
  // The kept row of partition 1 is record 3, not the partition's first record.
  CHECK(DescribeRow(parts[1], 0) == images + " record index 3");
  REQUIRE(parts[1].skipped_samples.size() == 1);
  CHECK(parts[1].skipped_samples[0] == images + " record index 2: value 1 is not a finite number");
}

TEST_CASE("labels a classifier cannot use are bad records with file and line", "[data]") {
  TempDir dir;
  const std::string csv = dir.Write("c.csv", "0,1\n9,1\n10,1\n-1,1\n1.5,1\n");
  DatasetSpec spec = ClassSpec(Spec(csv, DataFormat::kCsv), 10);
  Status s = LoadError(spec);
  CHECK(s.code() == StatusCode::kCorruption);
  CHECK(s.message() ==
        csv + ":3: label 10: expected a whole number in [0, 10) (model.classes is 10)");

  spec.on_bad_record = BadRecordPolicy::kSkip;
  spec.max_skipped_fraction = 1;
  auto dataset = Dataset::Open(spec);
  REQUIRE(dataset.ok());
  auto part = (*dataset)->LoadPartition(0);
  REQUIRE(part.ok());
  CHECK(part->labels == std::vector<float>{0, 9});
  CHECK(part->skipped_records == 3);
  REQUIRE(part->skipped_samples.size() == 3);
  CHECK(Contains(part->skipped_samples[1], "c.csv:4: label -1: expected a whole number"));
  CHECK(Contains(part->skipped_samples[2], "c.csv:5: label 1.5: expected a whole number"));

  SECTION("libsvm and binary labels") {
    const std::string svm = dir.Write("b.svm", "+1 1:1\n-1 1:1\n0 1:1\n2 1:1\n");
    DatasetSpec binary = Spec(svm, DataFormat::kLibsvm);
    binary.label_kind = LabelKind::kBinary;
    binary.label_rule = "model.type is logistic";
    s = LoadError(binary);
    CHECK(s.message() ==
          svm + ":4: label 2: expected 0 or 1 (-1 reads as 0) (model.type is logistic)");
  }
  SECTION("idx labels name the labels file and record index") {
    const std::string images = dir.Write("i", IdxFile(kUbyte, {2, 1, 1}, std::string(2, '\0')));
    const std::string labels = dir.Write("l", IdxFile(kUbyte, {2}, std::string("\x03\x0b", 2)));
    DatasetSpec idx = ClassSpec(Spec(images, DataFormat::kIdx), 10);
    idx.labels_path = labels;
    s = LoadError(idx);
    CHECK(s.message() ==
          labels +
              " record index 1: label 11: expected a whole number in [0, 10) (model.classes "
              "is 10)");
  }
  SECTION("a huge label without model.classes fails at its line instead of sizing the model") {
    DatasetSpec inferred = Spec(dir.Write("h.csv", "1,1\n1e9,1\n"), DataFormat::kCsv);
    inferred.label_kind = LabelKind::kClass;
    inferred.num_classes = 65536;
    s = LoadError(inferred);
    CHECK(Contains(s.message(), "h.csv:2: label 1e+09: expected a whole number in [0, 65536)"));
  }
}

TEST_CASE("a csv width is what most early rows have, not what a malformed first row has",
          "[data]") {
  TempDir dir;
  std::string text = "1,2\n";  // malformed: a column short
  for (int i = 0; i < 199; ++i) text += "1,2,3\n";
  const std::string path = dir.Write("w.csv", text);
  DatasetSpec spec = Spec(path, DataFormat::kCsv);
  const Status s = LoadError(spec);
  CHECK(s.message() == path + ":1: expected 3 columns, got 2");

  spec.on_bad_record = BadRecordPolicy::kSkip;
  auto dataset = Dataset::Open(spec);
  REQUIRE(dataset.ok());
  auto part = (*dataset)->LoadPartition(0);
  REQUIRE(part.ok());
  CHECK(part->num_rows == 199);  // was 1, with 199 skipped
  CHECK(part->num_cols == 2);
  CHECK(part->skipped_records == 1);
}

}  // namespace
}  // namespace mrtrain::data
