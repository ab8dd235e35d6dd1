#pragma once

#include <cstdint>
#include <string>

#include "engine/base/status.h"

// Sparse synthetic data sets with known true weights, the shapes of issue 11's benchmarks:
// hashed binary features in libsvm, and a Criteo-style click log. Every value is a function of
// (seed, stream), never of the machine, so a file can be regenerated instead of shipped. The true
// weights depend on the seed only: a test set is the same seed with another stream.
namespace mrtrain::tools {

// Rows of about `active` distinct binary features drawn uniformly from 2^bits ids (the issue's
// set: 2^20 ids, 40 a row, so 1,000 rows touch about 40,000 weights), labelled 1 with
// probability sigmoid(score), where
//
//   score = sum_i w_i + sum_{i<j} <u_i, u_j>        over the row's features i, j
//
// with true weights w_i uniform in [-weight_scale, weight_scale) and, when factors > 0, true
// factor vectors u_i of that length with entries uniform in [-factor_scale, factor_scale): data
// only a factorization machine fits fully. factors = 0 gives a plain logistic truth.
struct HashedBinarySpec {
  int64_t rows = 1000;
  int bits = 20;    // 1 to 31: ids in [0, 2^bits), written 1-based
  int active = 40;  // >= 1: each row has uniformly 3/4 to 5/4 of this many (at least 1)
  double weight_scale = 0.5;
  int factors = 0;  // 0 to 64
  double factor_scale = 0.3;
  uint64_t seed = 1;    // decides the truth
  uint64_t stream = 0;  // decides the rows
};

// The true weight of feature `id` (0-based), and entry f of its true factor vector.
float HashedTrueWeight(const HashedBinarySpec& spec, uint64_t id);
float HashedTrueFactor(const HashedBinarySpec& spec, uint64_t id, int f);

// Writes spec.rows lines "label i:1 j:1 ..." (label 0 or 1, indices 1-based and increasing): read
// it with `format: libsvm` and `features: 2^bits`. kInvalidArgument for a spec out of the ranges
// above, kIOError when the file cannot be written.
Status WriteHashedBinaryLibsvm(const std::string& path, const HashedBinarySpec& spec);

// A Criteo-style TSV (engine/data/FORMAT.md, "criteo"): label, 13 integer columns, 26
// categorical columns of 8 hex digits, each column missing at its own rate (2% to 42%). Integer
// columns are skewed like counts (floor(e^(U * L)) - 1, L per column in [1, 10]); categorical
// columns draw from their own vocabulary (10 to 100,000 values) with a heavy head. The label is 1
// with probability sigmoid(bias + the sum of the true weights of the row's features), the
// features being exactly those `format: criteo` with this hash_bits reads from the line (each
// present field's column and token hashed), so the truth is over the hashed features.
struct CriteoSyntheticSpec {
  int64_t rows = 1000;
  int hash_bits = 24;  // 1 to 31: what the job's data.*.hash_bits must be
  double weight_scale = 0.5;
  double bias = -1.5;  // about one row in five is a click with the defaults
  uint64_t seed = 1;
  uint64_t stream = 0;
};

// The true weight of hashed feature `bucket`.
float CriteoTrueWeight(const CriteoSyntheticSpec& spec, uint32_t bucket);

// Writes spec.rows criteo lines. kInvalidArgument for hash_bits out of range, kIOError when
// the file cannot be written.
Status WriteCriteoSynthetic(const std::string& path, const CriteoSyntheticSpec& spec);

}  // namespace mrtrain::tools
