#include "tools/data/sparse_synthetic.h"

#include <cmath>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/data/dataset.h"
#include "engine/data/feature_hash.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::tools {
namespace {

data::PartitionData Load(const data::DatasetSpec& spec) {
  auto dataset = data::Dataset::Open(spec);
  INFO(dataset.status().ToString());
  REQUIRE(dataset.ok());
  auto part = (*dataset)->LoadPartition(0);
  INFO(part.status().ToString());
  REQUIRE(part.ok());
  return std::move(*part);
}

// What a file's labels say about the truth: the click rate among rows the truth scores low and
// high, and how far the mean label is from the mean predicted probability (calibration).
struct LabelCheck {
  double low_rate = 0;
  double high_rate = 0;
  double calibration_gap = 0;
};

template <typename ScoreOfRow>
LabelCheck CheckLabels(const data::PartitionData& part, ScoreOfRow score_of_row) {
  double low_clicks = 0, low_rows = 0, high_clicks = 0, high_rows = 0, predicted = 0, actual = 0;
  for (int64_t r = 0; r < part.num_rows; ++r) {
    const double score = score_of_row(r);
    const double label = part.labels[r];
    predicted += 1 / (1 + std::exp(-score));
    actual += label;
    if (score < -1) low_clicks += label, ++low_rows;
    if (score > 1) high_clicks += label, ++high_rows;
  }
  REQUIRE(low_rows > 100);
  REQUIRE(high_rows > 100);
  return {low_clicks / low_rows, high_clicks / high_rows,
          std::abs(actual - predicted) / static_cast<double>(part.num_rows)};
}

TEST_CASE("hashed libsvm rows parse, have about `active` features and follow the truth",
          "[tools]") {
  testing::TempDir dir;
  HashedBinarySpec spec;
  spec.rows = 20000;
  spec.bits = 12;
  spec.active = 40;
  spec.factors = 2;
  spec.seed = 3;
  const std::string path = dir.File("train.svm");
  REQUIRE(WriteHashedBinaryLibsvm(path, spec).ok());

  data::DatasetSpec ds;
  ds.path = path;
  ds.format = data::DataFormat::kLibsvm;
  ds.num_features = int64_t{1} << spec.bits;
  const data::PartitionData part = Load(ds);
  REQUIRE(part.num_rows == 20000);
  CHECK(part.num_cols == 4096);
  for (int64_t r = 0; r < part.num_rows; ++r) {
    const int64_t nnz = part.row_offsets[r + 1] - part.row_offsets[r];
    REQUIRE(nnz >= 30);
    REQUIRE(nnz <= 50);
  }
  CHECK(static_cast<double>(part.cols.size()) / part.num_rows == Approx(40).margin(0.5));
  for (float v : part.values) REQUIRE(v == 1.0f);

  // Column c holds id c (1-based in the file); the score is the truth's, pairs included.
  const LabelCheck check = CheckLabels(part, [&](int64_t r) {
    double score = 0;
    std::vector<double> sums(spec.factors, 0.0), squares(spec.factors, 0.0);
    for (int64_t p = part.row_offsets[r]; p < part.row_offsets[r + 1]; ++p) {
      score += HashedTrueWeight(spec, part.cols[p]);
      for (int f = 0; f < spec.factors; ++f) {
        const double u = HashedTrueFactor(spec, part.cols[p], f);
        sums[f] += u;
        squares[f] += u * u;
      }
    }
    for (int f = 0; f < spec.factors; ++f) score += 0.5 * (sums[f] * sums[f] - squares[f]);
    return score;
  });
  CHECK(check.low_rate < 0.25);
  CHECK(check.high_rate > 0.75);
  CHECK(check.calibration_gap < 0.015);
}

TEST_CASE("generators are deterministic in (seed, stream), and a stream keeps the truth",
          "[tools]") {
  testing::TempDir dir;
  HashedBinarySpec spec;
  spec.rows = 200;
  REQUIRE(WriteHashedBinaryLibsvm(dir.File("a"), spec).ok());
  REQUIRE(WriteHashedBinaryLibsvm(dir.File("b"), spec).ok());
  CHECK(testing::TempDir::Read(dir.File("a")) == testing::TempDir::Read(dir.File("b")));
  HashedBinarySpec test_set = spec;
  test_set.stream = 1;
  REQUIRE(WriteHashedBinaryLibsvm(dir.File("c"), test_set).ok());
  CHECK(testing::TempDir::Read(dir.File("c")) != testing::TempDir::Read(dir.File("a")));
  CHECK(HashedTrueWeight(test_set, 77) == HashedTrueWeight(spec, 77));
  HashedBinarySpec other = spec;
  other.seed = 2;
  CHECK(HashedTrueWeight(other, 77) != HashedTrueWeight(spec, 77));

  CriteoSyntheticSpec criteo;
  criteo.rows = 100;
  REQUIRE(WriteCriteoSynthetic(dir.File("d"), criteo).ok());
  REQUIRE(WriteCriteoSynthetic(dir.File("e"), criteo).ok());
  CHECK(testing::TempDir::Read(dir.File("d")) == testing::TempDir::Read(dir.File("e")));
}

TEST_CASE("criteo rows parse with format: criteo, miss some fields and follow the truth",
          "[tools]") {
  testing::TempDir dir;
  CriteoSyntheticSpec spec;
  spec.rows = 20000;
  spec.hash_bits = 18;
  spec.seed = 5;
  const std::string path = dir.File("train.tsv");
  REQUIRE(WriteCriteoSynthetic(path, spec).ok());

  data::DatasetSpec ds;
  ds.path = path;
  ds.format = data::DataFormat::kCriteo;
  ds.hash_bits = spec.hash_bits;
  const data::PartitionData part = Load(ds);
  REQUIRE(part.num_rows == 20000);
  CHECK(part.num_cols == int64_t{1} << 18);
  // 39 fields, each missing 2% to 42% of the time: some missing, most present.
  const double fields_per_row = static_cast<double>(part.cols.size()) / part.num_rows;
  CHECK(fields_per_row > 25);
  CHECK(fields_per_row < 38);
  double clicks = 0;
  for (float y : part.labels) clicks += y;
  CHECK(clicks / part.num_rows > 0.1);
  CHECK(clicks / part.num_rows < 0.35);

  // The truth is over the reader's hashed features: two fields in one bucket read as value 2,
  // which counts that bucket's weight twice, as the generator did.
  const LabelCheck check = CheckLabels(part, [&](int64_t r) {
    double score = spec.bias;
    for (int64_t p = part.row_offsets[r]; p < part.row_offsets[r + 1]; ++p) {
      score += part.values[p] * CriteoTrueWeight(spec, part.cols[p]);
    }
    return score;
  });
  CHECK(check.low_rate < 0.25);
  CHECK(check.high_rate > 0.75);
  CHECK(check.calibration_gap < 0.015);
}

TEST_CASE("generators refuse specs out of range, naming the setting", "[tools]") {
  testing::TempDir dir;
  HashedBinarySpec bits;
  bits.bits = 32;
  CHECK(WriteHashedBinaryLibsvm(dir.File("x"), bits).message() ==
        "bits must be in [1, 31], got 32");
  HashedBinarySpec active;
  active.bits = 4;
  active.active = 9;
  CHECK(WriteHashedBinaryLibsvm(dir.File("x"), active).message() ==
        "active must be in [1, 2^bits / 2], got 9");
  CriteoSyntheticSpec criteo;
  criteo.hash_bits = 0;
  CHECK(WriteCriteoSynthetic(dir.File("x"), criteo).message() ==
        "hash_bits must be in [1, 31], got 0");
  CHECK(WriteCriteoSynthetic(dir.File("no/such/dir/x"), CriteoSyntheticSpec{}).code() ==
        StatusCode::kIOError);
}

}  // namespace
}  // namespace mrtrain::tools
