#include "tools/data/sparse_synthetic.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string_view>
#include <vector>

#include "engine/api/random.h"
#include "engine/data/feature_hash.h"

namespace mrtrain::tools {
namespace {

using api::RandomStream;

// Salts that keep the streams of one seed apart.
constexpr uint64_t kWeightSalt = 0x77E1;
constexpr uint64_t kFactorSalt = 0xFAC7;
constexpr uint64_t kColumnSalt = 0xC011;
constexpr uint64_t kTokenSalt = 0x70CE;
constexpr uint64_t kRowSalt = 0x5EED;

// Uniform in [0, 1) from a hash of (seed, salt, id): a true weight costs no table, so a truth
// over 2^31 ids takes no memory.
double HashUniform(uint64_t seed, uint64_t salt, uint64_t id) {
  const uint64_t h = RandomStream::Mix(seed ^ RandomStream::Mix(salt ^ RandomStream::Mix(id)));
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

float Symmetric(double u, double scale) { return static_cast<float>(scale * (2 * u - 1)); }

double Sigmoid(double z) { return 1 / (1 + std::exp(-z)); }

using File = std::unique_ptr<std::FILE, int (*)(std::FILE*)>;

Result<File> OpenForWriting(const std::string& path) {
  File out(std::fopen(path.c_str(), "w"), &std::fclose);
  if (!out) return IOError("cannot write " + path);
  return out;
}

Status Finish(File out, const std::string& path) {
  const bool failed = std::ferror(out.get()) != 0;
  if (std::fclose(out.release()) != 0 || failed) return IOError("write failed: " + path);
  return Status::Ok();
}

void Put(std::FILE* out, const std::string& line) { std::fwrite(line.data(), 1, line.size(), out); }

Status CheckHashedSpec(const HashedBinarySpec& s) {
  if (s.bits < 1 || s.bits > 31) {
    return InvalidArgumentError("bits must be in [1, 31], got " + std::to_string(s.bits));
  }
  if (s.active < 1 || s.active > (int64_t{1} << s.bits) / 2) {
    return InvalidArgumentError("active must be in [1, 2^bits / 2], got " +
                                std::to_string(s.active));
  }
  if (s.factors < 0 || s.factors > 64) {
    return InvalidArgumentError("factors must be in [0, 64], got " + std::to_string(s.factors));
  }
  if (s.rows < 0) return InvalidArgumentError("rows must be >= 0");
  return Status::Ok();
}

// The row's distinct ids, sorted: count uniform in [3/4, 5/4] of active, redrawing repeats.
void DrawIds(const HashedBinarySpec& s, RandomStream& random, std::vector<uint64_t>* ids) {
  const int low = std::max(1, s.active - s.active / 4);
  const int count = low + static_cast<int>(random.Below(2 * (s.active / 4) + 1));
  ids->clear();
  while (static_cast<int>(ids->size()) < count) {
    const uint64_t id = random.Below(uint64_t{1} << s.bits);
    if (std::find(ids->begin(), ids->end(), id) == ids->end()) ids->push_back(id);
  }
  std::sort(ids->begin(), ids->end());
}

// sum w_i + 1/2 sum_f ((sum_i u_if)^2 - sum_i u_if^2): the pairwise sum by Rendle's identity.
double HashedScore(const HashedBinarySpec& s, const std::vector<uint64_t>& ids) {
  double score = 0;
  for (uint64_t id : ids) score += HashedTrueWeight(s, id);
  for (int f = 0; f < s.factors; ++f) {
    double sum = 0;
    double squares = 0;
    for (uint64_t id : ids) {
      const double u = HashedTrueFactor(s, id, f);
      sum += u;
      squares += u * u;
    }
    score += 0.5 * (sum * sum - squares);
  }
  return score;
}

// How one criteo column's values are drawn; fixed by the seed.
struct CriteoColumn {
  double missing = 0;     // the chance a field is empty
  double log_range = 0;   // integers: values floor(e^(U * log_range)) - 1
  double vocabulary = 0;  // categories: indices floor(vocabulary^U) - 1
};

std::vector<CriteoColumn> CriteoColumns(uint64_t seed) {
  RandomStream random(seed, kColumnSalt);
  std::vector<CriteoColumn> columns(1 + data::kCriteoIntColumns + data::kCriteoCatColumns);
  for (size_t c = 1; c < columns.size(); ++c) {
    columns[c].missing = 0.02 + 0.4 * random.Uniform();
    columns[c].log_range = 1 + 9 * random.Uniform();
    columns[c].vocabulary = std::floor(std::pow(10.0, 1 + 4 * random.Uniform()));
  }
  return columns;
}

// A categorical value: 8 hex digits naming (column, index), as the real data's hashed strings.
std::string CategoryToken(uint64_t seed, int column, uint64_t index) {
  const uint64_t h =
      RandomStream::Mix(seed ^ RandomStream::Mix(kTokenSalt + column) ^ RandomStream::Mix(index));
  char token[9];
  std::snprintf(token, sizeof(token), "%08x", static_cast<unsigned>(h & 0xFFFFFFFFu));
  return token;
}

// One field's text, empty when missing.
std::string CriteoField(uint64_t seed, int column, const CriteoColumn& how, RandomStream& random) {
  if (random.Uniform() < how.missing) return "";
  if (column <= data::kCriteoIntColumns) {
    const double v = std::floor(std::exp(random.Uniform() * how.log_range)) - 1;
    return std::to_string(static_cast<int64_t>(v));
  }
  const double index = std::floor(std::pow(how.vocabulary, random.Uniform())) - 1;
  return CategoryToken(seed, column, static_cast<uint64_t>(std::min(index, how.vocabulary - 1)));
}

// The bucket `format: criteo` gives a present field (engine/data/FORMAT.md).
uint32_t CriteoBucket(int column, const std::string& field, int hash_bits) {
  const std::string token =
      column <= data::kCriteoIntColumns ? data::CriteoIntToken(std::stoll(field)) : field;
  return data::HashBucket(data::HashCriteoToken(static_cast<uint32_t>(column), token), hash_bits);
}

}  // namespace

float HashedTrueWeight(const HashedBinarySpec& spec, uint64_t id) {
  return Symmetric(HashUniform(spec.seed, kWeightSalt, id), spec.weight_scale);
}

float HashedTrueFactor(const HashedBinarySpec& spec, uint64_t id, int f) {
  return Symmetric(HashUniform(spec.seed, kFactorSalt + static_cast<uint64_t>(f), id),
                   spec.factor_scale);
}

Status WriteHashedBinaryLibsvm(const std::string& path, const HashedBinarySpec& spec) {
  MRTRAIN_RETURN_IF_ERROR(CheckHashedSpec(spec));
  MRTRAIN_ASSIGN_OR_RETURN(File out, OpenForWriting(path));
  RandomStream random(spec.seed, kRowSalt, spec.stream);
  std::vector<uint64_t> ids;
  std::string line;
  for (int64_t r = 0; r < spec.rows; ++r) {
    DrawIds(spec, random, &ids);
    const bool click = random.Uniform() < Sigmoid(HashedScore(spec, ids));
    line = click ? "1" : "0";
    for (uint64_t id : ids) line += " " + std::to_string(id + 1) + ":1";
    line += '\n';
    Put(out.get(), line);
  }
  return Finish(std::move(out), path);
}

float CriteoTrueWeight(const CriteoSyntheticSpec& spec, uint32_t bucket) {
  return Symmetric(HashUniform(spec.seed, kWeightSalt, bucket), spec.weight_scale);
}

Status WriteCriteoSynthetic(const std::string& path, const CriteoSyntheticSpec& spec) {
  if (spec.hash_bits < 1 || spec.hash_bits > 31) {
    return InvalidArgumentError("hash_bits must be in [1, 31], got " +
                                std::to_string(spec.hash_bits));
  }
  if (spec.rows < 0) return InvalidArgumentError("rows must be >= 0");
  MRTRAIN_ASSIGN_OR_RETURN(File out, OpenForWriting(path));
  const std::vector<CriteoColumn> columns = CriteoColumns(spec.seed);
  RandomStream random(spec.seed, kRowSalt, spec.stream);
  std::string fields;
  for (int64_t r = 0; r < spec.rows; ++r) {
    fields.clear();
    double score = spec.bias;
    for (int c = 1; c < static_cast<int>(columns.size()); ++c) {
      const std::string field = CriteoField(spec.seed, c, columns[c], random);
      fields += '\t';
      fields += field;
      if (!field.empty()) score += CriteoTrueWeight(spec, CriteoBucket(c, field, spec.hash_bits));
    }
    const bool click = random.Uniform() < Sigmoid(score);
    Put(out.get(), (click ? "1" : "0") + fields + "\n");
  }
  return Finish(std::move(out), path);
}

}  // namespace mrtrain::tools
