#include "runtime/job/job_setup.h"

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/data/dataset.h"
#include "engine/models/registry.h"
#include "jobs/spec/job_spec.h"

namespace mrtrain::runtime {
namespace {

PartitionSummary Part(int64_t rows, int64_t skipped, std::string first_reason = "") {
  PartitionSummary p;
  p.rows = rows;
  p.skipped_records = skipped;
  if (!first_reason.empty()) p.skipped_samples.push_back(std::move(first_reason));
  return p;
}

TEST_CASE("skipping more than max_skipped_fraction of a data set fails the job with the counts",
          "[runtime]") {
  data::DatasetSpec ds;  // max_skipped_fraction 0.01 by default
  // Issue 10 item 11: 199 of 200 rows skipped, and the job trained on the one left.
  const Status most =
      CheckSkipped({Part(1, 199, "a.csv:2: expected 2 columns, got 3")}, ds, "train");
  CHECK(most.code() == StatusCode::kInvalidArgument);
  CHECK(most.message() ==
        "data.train: 199 of 200 records were bad and skipped, more than max_skipped_fraction "
        "0.01 allows (the first: a.csv:2: expected 2 columns, got 3)");
  // Counted over all partitions: 2 of 200 is within 0.01, 3 of 200 is not.
  CHECK(CheckSkipped({Part(99, 1), Part(99, 1)}, ds, "train").ok());
  CHECK_FALSE(CheckSkipped({Part(97, 0), Part(100, 3, "b.csv:7: x")}, ds, "test").ok());
  CHECK(CheckSkipped({Part(0, 0)}, ds, "train").ok());
  ds.max_skipped_fraction = 1;
  CHECK(CheckSkipped({Part(0, 50, "all bad")}, ds, "train").ok());
  ds.max_skipped_fraction = 0;
  CHECK_FALSE(CheckSkipped({Part(1000, 1, "one")}, ds, "validation").ok());
}

TEST_CASE("a model with row-sparse tensors refuses the modes that need whole tensors",
          "[runtime]") {
  auto mapper = models::CreateBuiltinMapper("logistic", {});
  REQUIRE(mapper.ok());
  api::DataShape wide;
  wide.num_features = int64_t{1} << 25;  // wide sparse input: row-sparse weights
  wide.num_classes = 2;
  wide.is_sparse = true;
  jobs::JobSpec spec;
  auto layout = LayoutFor(**mapper, wide, spec);
  REQUIRE(layout.ok());
  CHECK(layout->has_row_sparse());

  spec.staleness = 2;
  auto stale = LayoutFor(**mapper, wide, spec);
  REQUIRE_FALSE(stale.ok());
  CHECK(stale.status().message() ==
        "training.staleness: 2 needs whole tensors, and this model has row-sparse ones (wide "
        "sparse input): use 0");
  spec.staleness = 0;
  spec.mode = jobs::JobSpec::Mode::kModelAveraging;
  CHECK_FALSE(LayoutFor(**mapper, wide, spec).ok());

  // Narrow input keeps dense tensors, which both modes take.
  api::DataShape narrow = wide;
  narrow.num_features = 1000;
  spec.staleness = 2;
  spec.mode = jobs::JobSpec::Mode::kMinibatch;
  auto dense = LayoutFor(**mapper, narrow, spec);
  REQUIRE(dense.ok());
  CHECK_FALSE(dense->has_row_sparse());
}

}  // namespace
}  // namespace mrtrain::runtime
