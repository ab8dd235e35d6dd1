#include "test/runtime/checkpoint/sample_checkpoint.h"

#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "engine/base/crc32c.h"

namespace mrtrain::testing {
namespace {

using api::TensorSpec;

float PatternFloat(uint32_t seed, uint32_t i) {
  switch ((i + seed) % 97) {
    case 0:
      return -0.0f;
    case 1:
      return std::numeric_limits<float>::infinity();
    case 2:
      return -std::numeric_limits<float>::infinity();
    case 3:
      return std::numeric_limits<float>::denorm_min();
    case 4: {
      uint32_t bits = 0x7fc00000u | ((seed * 131u + i) & 0x3fffffu);  // NaN with a payload
      float f;
      std::memcpy(&f, &bits, sizeof(f));
      return f;
    }
    default:
      return static_cast<float>(static_cast<int32_t>((i * 2654435761u) ^ seed)) * 1e-9f;
  }
}

void Fill(std::vector<float>* v, uint32_t seed) {
  for (size_t i = 0; i < v->size(); ++i) (*v)[i] = PatternFloat(seed, static_cast<uint32_t>(i));
}

bool SameFloats(const std::vector<float>& a, const std::vector<float>& b) {
  // NOLINTNEXTLINE(bugprone-suspicious-memory-comparison): bytes on purpose, NaNs included
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

bool Differ(std::string* why, const std::string& what) {
  *why = what + " differs";
  return false;
}

bool SameSpecs(const ModelLayout& a, const ModelLayout& b, std::string* why) {
  if (a.block_size() != b.block_size()) return Differ(why, "block_size");
  if (a.num_tensors() != b.num_tensors()) return Differ(why, "the tensor count");
  for (int t = 0; t < a.num_tensors(); ++t) {
    const auto& x = a.specs()[t];
    const auto& y = b.specs()[t];
    if (x.name != y.name || x.shape != y.shape || x.role != y.role) {
      return Differ(why, "the spec of tensor " + x.name);
    }
  }
  return true;
}

}  // namespace

runtime::Checkpoint SampleCheckpoint(int64_t epochs_done, uint32_t seed) {
  auto layout = ModelLayout::Create({TensorSpec{"W1", {32, 32}, TensorSpec::Role::kWeight},
                                     TensorSpec{"b1", {32}, TensorSpec::Role::kBias},
                                     TensorSpec{"W2", {32, 3}, TensorSpec::Role::kWeight},
                                     TensorSpec{"b2", {3}, TensorSpec::Role::kBias}},
                                    100);
  runtime::Checkpoint c;
  c.epochs_done = epochs_done;
  c.fingerprint = "job-fingerprint-" + std::to_string(seed);
  c.model_type = "mlp";
  c.model_params.Set("hidden", "32");
  c.model_params.Set("activation", "relu");
  c.model_params.Set("l2", "0.0001");
  c.data_shape.num_features = 32;
  c.data_shape.num_classes = 3;
  c.data_shape.is_sparse = true;
  c.update_rule = "adam";
  c.state = ModelState::Zeros(std::make_shared<const ModelLayout>(std::move(layout).value()), 2);
  c.state.step = 1000 * epochs_done + seed;
  uint32_t stream = seed * 7;
  for (auto& tensor : c.state.tensors) Fill(&tensor, ++stream);
  for (auto& slot : c.state.slots) {
    for (auto& tensor : slot) Fill(&tensor, ++stream);
  }
  return c;
}

bool SameCheckpoint(const runtime::Checkpoint& a, const runtime::Checkpoint& b, std::string* why) {
  if (a.epochs_done != b.epochs_done) return Differ(why, "epochs_done");
  if (a.fingerprint != b.fingerprint) return Differ(why, "fingerprint");
  if (a.model_type != b.model_type) return Differ(why, "model_type");
  if (a.update_rule != b.update_rule) return Differ(why, "update_rule");
  if (a.model_params.values() != b.model_params.values()) return Differ(why, "model_params");
  if (a.data_shape.num_features != b.data_shape.num_features ||
      a.data_shape.num_classes != b.data_shape.num_classes ||
      a.data_shape.is_sparse != b.data_shape.is_sparse) {
    return Differ(why, "data_shape");
  }
  if (a.state.step != b.state.step) return Differ(why, "step");
  if (!SameSpecs(*a.state.layout, *b.state.layout, why)) return false;
  if (a.state.tensors.size() != b.state.tensors.size()) return Differ(why, "the tensor count");
  for (size_t t = 0; t < a.state.tensors.size(); ++t) {
    if (!SameFloats(a.state.tensors[t], b.state.tensors[t])) {
      return Differ(why, "tensor " + std::to_string(t));
    }
  }
  if (a.state.slots.size() != b.state.slots.size()) return Differ(why, "the slot count");
  for (size_t k = 0; k < a.state.slots.size(); ++k) {
    for (size_t t = 0; t < a.state.slots[k].size(); ++t) {
      if (!SameFloats(a.state.slots[k][t], b.state.slots[k][t])) {
        return Differ(why, "slot " + std::to_string(k) + " of tensor " + std::to_string(t));
      }
    }
  }
  return true;
}

void PutLittleEndian(std::string* bytes, size_t at, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) (*bytes)[at + i] = static_cast<char>(v >> (8 * i));
}

void Reseal(std::string* bytes) {
  const size_t size = bytes->size();
  PutLittleEndian(bytes, size - 12, size, 8);
  PutLittleEndian(bytes, size - 4, Crc32c(bytes->data(), size - 4), 4);
}

}  // namespace mrtrain::testing
