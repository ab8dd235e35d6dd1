#include "tools/data/synthetic.h"

#include <cstdio>
#include <memory>

#include "engine/api/random.h"

namespace mrtrain::tools {
namespace {

SyntheticTruth MakeTruth(const SyntheticSpec& spec, api::RandomStream& random) {
  SyntheticTruth truth;
  truth.outputs = spec.task == SyntheticSpec::Task::kMulticlass ? spec.classes : 1;
  truth.weights.resize(spec.features * truth.outputs);
  for (float& w : truth.weights) w = random.Uniform(-1.0f, 1.0f);
  truth.bias.resize(truth.outputs);
  for (float& b : truth.bias) b = random.Uniform(-0.5f, 0.5f);
  return truth;
}

// One row: its non-zero features (index, value) and its label under the truth.
struct Row {
  std::vector<std::pair<int64_t, float>> features;
  float label = 0;
};

Row MakeRow(const SyntheticSpec& spec, const SyntheticTruth& truth, api::RandomStream& random) {
  Row row;
  std::vector<double> score(truth.bias.begin(), truth.bias.end());
  for (int64_t j = 0; j < spec.features; ++j) {
    if (spec.density < 1.0 && random.Uniform() >= spec.density) continue;
    const float x = random.Uniform(-1.0f, 1.0f);
    row.features.emplace_back(j, x);
    for (int64_t k = 0; k < truth.outputs; ++k)
      score[k] += x * truth.weights[j * truth.outputs + k];
  }
  for (double& s : score) s += spec.noise * random.Uniform(-1.7f, 1.7f);
  switch (spec.task) {
    case SyntheticSpec::Task::kRegression:
      row.label = static_cast<float>(score[0]);
      break;
    case SyntheticSpec::Task::kBinary:
      row.label = score[0] > 0 ? 1.0f : 0.0f;
      break;
    case SyntheticSpec::Task::kMulticlass: {
      int64_t best = 0;
      for (int64_t k = 1; k < truth.outputs; ++k) {
        if (score[k] > score[best]) best = k;
      }
      row.label = static_cast<float>(best);
    }
  }
  return row;
}

template <typename WriteRow>
Result<SyntheticTruth> WriteRows(const std::string& path, const SyntheticSpec& spec,
                                 WriteRow write_row) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> out(std::fopen(path.c_str(), "w"), &std::fclose);
  if (!out) return IOError("cannot write " + path);
  api::RandomStream random(spec.seed, 0x5717);
  SyntheticTruth truth = MakeTruth(spec, random);
  for (int64_t i = 0; i < spec.rows; ++i) write_row(out.get(), MakeRow(spec, truth, random));
  if (std::ferror(out.get())) return IOError("write failed: " + path);
  return truth;
}

}  // namespace

Result<SyntheticTruth> WriteSyntheticCsv(const std::string& path, const SyntheticSpec& spec) {
  return WriteRows(path, spec, [&](std::FILE* f, const Row& row) {
    std::fprintf(f, "%.9g", row.label);
    size_t next = 0;
    for (int64_t j = 0; j < spec.features; ++j) {
      float v = 0;
      if (next < row.features.size() && row.features[next].first == j)
        v = row.features[next++].second;
      std::fprintf(f, ",%.9g", v);
    }
    std::fputc('\n', f);
  });
}

Result<SyntheticTruth> WriteSyntheticLibsvm(const std::string& path, const SyntheticSpec& spec) {
  return WriteRows(path, spec, [](std::FILE* f, const Row& row) {
    std::fprintf(f, "%.9g", row.label);
    for (const auto& [j, v] : row.features)
      std::fprintf(f, " %lld:%.9g", static_cast<long long>(j + 1), v);
    std::fputc('\n', f);
  });
}

}  // namespace mrtrain::tools
