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

// The rows a row-sparse tensor holds: the rows updated so far, ascending by id, each with its
// row_dim() parameters and its part of every slot.
struct StoredRows {
  std::vector<int64_t> ids;
  std::vector<float> values;              // ids.size() * dim
  std::vector<std::vector<float>> slots;  // slots[k]: ids.size() * dim
};

// All parameters of a model plus the update rule's per-parameter state, as whole tensors.
// This is the form of checkpoints and of the final model; reducer shards hold blocks of it.
// A row-sparse tensor is never whole: its tensors[t] and slots[k][t] are empty and its touched
// rows are in rows[t]. Thread-compatible.
struct ModelState {
  std::shared_ptr<const ModelLayout> layout;
  // tensors[t] holds layout->specs()[t].size() floats (none for a row-sparse tensor).
  std::vector<std::vector<float>> tensors;
  // slots[k][t]: the update rule's state array k for tensor t (same size as tensors[t]).
  std::vector<std::vector<std::vector<float>>> slots;
  // rows[t]: the stored rows of row-sparse tensor t (empty for dense tensors).
  std::vector<StoredRows> rows;
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
// Row-sparse tensors are skipped: their rows start as InitialRow gives them.
void InitializeParameters(InitScheme scheme, float uniform_scale, uint64_t seed, ModelState* state);

// The initial parameters of the dense blocks `keys` of `layout` (in any order, no repeats),
// written one after the other in that order to `out` (the sum of their lengths): bit for bit
// what InitializeParameters puts at those blocks, so a reducer shard can start without the
// whole model. A tensor's stream has no skip-ahead, so each tensor with a requested block is
// drawn from its start to the end of its last requested block, the draws in between discarded
// unconverted: time is that of those tensors' draws, memory nothing beyond `out` and the keys.
// REQUIRES: every key is a valid block of a dense tensor of `layout`.
void InitializeBlocks(InitScheme scheme, float uniform_scale, uint64_t seed,
                      const ModelLayout& layout, const std::vector<ParamKey>& keys, float* out);

// How rows of row-sparse tensors start. The default: zeros.
struct RowInit {
  InitScheme scheme = InitScheme::kZeros;
  float uniform_scale = 0;
  uint64_t seed = 1;
};

// Writes the initial row_dim() floats of row `row` of row-sparse tensor `tensor` (spec) to out:
// zeros for biases and kZeros, else drawn as InitializeParameters draws weights (fan_in = the
// rows, fan_out = dim) from the random stream (seed, "row init", tensor, row). Depends only on
// those, so every host and every recovery computes the same row.
void InitialRow(const RowInit& init, int tensor, const api::TensorSpec& spec, int64_t row,
                float* out);

}  // namespace mrtrain
