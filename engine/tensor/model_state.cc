#include "engine/tensor/model_state.h"

#include <algorithm>
#include <cmath>
#include <cstring>

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
  for (const auto& spec : layout->specs()) s.tensors.emplace_back(spec.size(), 0.0f);
  s.slots.assign(num_slots, s.tensors);
  s.layout = std::move(layout);
  return s;
}

api::ParamsView ModelState::View() const {
  api::ParamsView view;
  view.specs = &layout->specs();
  for (const auto& t : tensors) view.tensors.push_back(t.data());
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

void InitializeParameters(InitScheme scheme, float uniform_scale, uint64_t seed,
                          ModelState* state) {
  constexpr uint64_t kInitStream = 0x1417;  // keeps init draws apart from data shuffles
  const auto& specs = state->layout->specs();
  for (size_t t = 0; t < specs.size(); ++t) {
    auto& data = state->tensors[t];
    if (specs[t].role == api::TensorSpec::Role::kBias || scheme == InitScheme::kZeros) {
      std::fill(data.begin(), data.end(), 0.0f);
      continue;
    }
    const double fan_in = static_cast<double>(specs[t].shape[0]);
    const double fan_out = static_cast<double>(specs[t].size()) / fan_in;
    double limit = uniform_scale;
    if (scheme == InitScheme::kXavier) limit = std::sqrt(6.0 / (fan_in + fan_out));
    if (scheme == InitScheme::kHe) limit = std::sqrt(6.0 / fan_in);
    api::RandomStream random(seed, kInitStream, t);
    const float lo = static_cast<float>(-limit), hi = static_cast<float>(limit);
    for (float& v : data) v = random.Uniform(lo, hi);
  }
}

}  // namespace mrtrain
