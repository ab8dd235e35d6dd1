#include "engine/tensor/model_state.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

#include "engine/api/random.h"

namespace mrtrain {

Result<InitScheme> ParseInitScheme(const std::string& name) {
  if (name == "zeros") return InitScheme::kZeros;
  if (name == "uniform") return InitScheme::kUniform;
  if (name == "xavier") return InitScheme::kXavier;
  if (name == "he") return InitScheme::kHe;
  return InvalidArgumentError("unknown init scheme '" + name +
                              "'; allowed: zeros, uniform, xavier, he");
}

const char* InitSchemeName(InitScheme scheme) {
  switch (scheme) {
    case InitScheme::kZeros:
      return "zeros";
    case InitScheme::kUniform:
      return "uniform";
    case InitScheme::kXavier:
      return "xavier";
    case InitScheme::kHe:
      return "he";
  }
  return "?";
}

ModelState ModelState::Zeros(std::shared_ptr<const ModelLayout> layout, int num_slots) {
  ModelState s;
  for (const auto& spec : layout->specs()) {
    s.tensors.emplace_back(spec.row_sparse ? 0 : spec.size(), 0.0f);
  }
  s.slots.assign(num_slots, s.tensors);
  s.rows.resize(layout->specs().size());
  for (size_t t = 0; t < s.rows.size(); ++t) {
    if (layout->specs()[t].row_sparse) s.rows[t].slots.resize(num_slots);
  }
  s.layout = std::move(layout);
  return s;
}

api::ParamsView ModelState::View() const {
  api::ParamsView view;
  view.specs = &layout->specs();
  for (size_t t = 0; t < tensors.size(); ++t) {
    view.tensors.push_back(layout->specs()[t].row_sparse ? nullptr : tensors[t].data());
  }
  return view;
}

void ModelState::ReadBlock(ParamKey key, float* out) const {
  BlockRange r = layout->Range(key);
  std::memcpy(out, tensors[r.tensor].data() + r.offset, r.length * sizeof(float));
}

void ModelState::WriteBlock(ParamKey key, const float* in) {
  BlockRange r = layout->Range(key);
  std::memcpy(tensors[r.tensor].data() + r.offset, in, r.length * sizeof(float));
}

namespace {

// The bound of the uniform draw for a weight of shape [fan_in, ...] holding `size` floats.
double InitLimit(InitScheme scheme, float uniform_scale, double fan_in, double size) {
  const double fan_out = size / fan_in;
  if (scheme == InitScheme::kXavier) return std::sqrt(6.0 / (fan_in + fan_out));
  if (scheme == InitScheme::kHe) return std::sqrt(6.0 / fan_in);
  return uniform_scale;
}

}  // namespace

void InitialRow(const RowInit& init, int tensor, const api::TensorSpec& spec, int64_t row,
                float* out) {
  constexpr uint64_t kRowInitStream = 0x2E0A;  // apart from the dense tensors' stream
  const int64_t dim = spec.row_dim();
  if (spec.role == api::TensorSpec::Role::kBias || init.scheme == InitScheme::kZeros) {
    std::fill(out, out + dim, 0.0f);
    return;
  }
  const double rows = static_cast<double>(spec.shape[0]);
  const double limit = InitLimit(init.scheme, init.uniform_scale, rows, rows * dim);
  api::RandomStream random(init.seed, kRowInitStream, static_cast<uint64_t>(tensor),
                           static_cast<uint64_t>(row));
  const float lo = static_cast<float>(-limit), hi = static_cast<float>(limit);
  for (int64_t i = 0; i < dim; ++i) out[i] = random.Uniform(lo, hi);
}

namespace {

constexpr uint64_t kInitStream = 0x1417;  // keeps init draws apart from data shuffles

// How the elements of dense tensor `spec` start: zeros, or uniform draws from [lo, hi), one
// draw of the stream (seed, kInitStream, t) per element in order.
struct DenseInit {
  bool zeros = true;
  float lo = 0, hi = 0;
};

DenseInit DenseInitOf(InitScheme scheme, float uniform_scale, const api::TensorSpec& spec) {
  DenseInit init;
  if (spec.role == api::TensorSpec::Role::kBias || scheme == InitScheme::kZeros) return init;
  const double limit = InitLimit(scheme, uniform_scale, static_cast<double>(spec.shape[0]),
                                 static_cast<double>(spec.size()));
  init.zeros = false;
  init.lo = static_cast<float>(-limit);
  init.hi = static_cast<float>(limit);
  return init;
}

}  // namespace

void InitializeParameters(InitScheme scheme, float uniform_scale, uint64_t seed,
                          ModelState* state) {
  const auto& specs = state->layout->specs();
  for (size_t t = 0; t < specs.size(); ++t) {
    if (specs[t].row_sparse) continue;
    auto& data = state->tensors[t];
    const DenseInit init = DenseInitOf(scheme, uniform_scale, specs[t]);
    if (init.zeros) {
      std::fill(data.begin(), data.end(), 0.0f);
      continue;
    }
    api::RandomStream random(seed, kInitStream, t);
    for (float& v : data) v = random.Uniform(init.lo, init.hi);
  }
}

void InitializeBlocks(InitScheme scheme, float uniform_scale, uint64_t seed,
                      const ModelLayout& layout, const std::vector<ParamKey>& keys, float* out) {
  // Where each key's values go in `out`, then the keys visited ascending, so each tensor's
  // stream is drawn once, forward.
  std::vector<int64_t> at(keys.size());
  int64_t total = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    at[i] = total;
    total += layout.Range(keys[i]).length;
  }
  std::vector<size_t> order(keys.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return keys[a] < keys[b]; });

  std::optional<api::RandomStream> random;
  int tensor = -1;
  int64_t drawn = 0;  // elements of `tensor` drawn so far
  DenseInit init;
  for (size_t i : order) {
    const BlockRange r = layout.Range(keys[i]);
    float* block = out + at[i];
    if (r.tensor != tensor) {
      tensor = r.tensor;
      init = DenseInitOf(scheme, uniform_scale, layout.specs()[tensor]);
      random.emplace(seed, kInitStream, static_cast<uint64_t>(tensor));
      drawn = 0;
    }
    if (init.zeros) {
      std::fill(block, block + r.length, 0.0f);
      continue;
    }
    // Uniform() takes exactly one Next() per element: skipping is drawing without converting.
    for (; drawn < r.offset; ++drawn) random->Next();
    for (int64_t j = 0; j < r.length; ++j) block[j] = random->Uniform(init.lo, init.hi);
    drawn += r.length;
  }
}

}  // namespace mrtrain
