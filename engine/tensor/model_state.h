#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/api/views.h"
#include "engine/base/status.h"
#include "engine/tensor/model_layout.h"

namespace mrtrain {

enum class InitScheme { kZeros, kUniform, kXavier, kHe };

// Parses "zeros", "uniform", "xavier", "he"; kInvalidArgument names the allowed values.
Result<InitScheme> ParseInitScheme(const std::string& name);
const char* InitSchemeName(InitScheme scheme);

// All parameters of a model plus the update rule's per-parameter state, as whole tensors.
// This is the form of checkpoints and of the final model; reducer shards hold blocks of it.
// Thread-compatible.
struct ModelState {
  std::shared_ptr<const ModelLayout> layout;
  // tensors[t] holds layout->specs()[t].size() floats.
  std::vector<std::vector<float>> tensors;
  // slots[k][t]: the update rule's state array k for tensor t (same size as tensors[t]).
  std::vector<std::vector<std::vector<float>>> slots;
  // How many updates have been applied (rounds completed since the start of the job).
  int64_t step = 0;

  // Zero tensors and `num_slots` zero slot arrays.
  static ModelState Zeros(std::shared_ptr<const ModelLayout> layout, int num_slots);

  api::ParamsView View() const;

  // Copies block `key` out of / into the tensors (params only, or slot k).
  void ReadBlock(ParamKey key, float* out) const;
  void WriteBlock(ParamKey key, const float* in);
};

// Fills weights by `scheme` and biases with zeros. Deterministic: tensor t uses the random
// stream (seed, "init", t). Uniform draws from [-scale, scale); Xavier from
// [-sqrt(6/(fan_in+fan_out)), +..); He from [-sqrt(6/fan_in), +..), where fan_in is the first
// dimension and fan_out the product of the others.
void InitializeParameters(InitScheme scheme, float uniform_scale, uint64_t seed, ModelState* state);

}  // namespace mrtrain
