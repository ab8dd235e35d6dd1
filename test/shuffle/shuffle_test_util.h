#pragma once

#include <memory>

#include "engine/tensor/model_layout.h"

namespace mrtrain::shuffle {

// A model of three tensors (W 40x30, b 30, V 7) cut into blocks of 64 floats: 19 + 1 + 1 keys
// with short last blocks.
inline std::shared_ptr<ModelLayout> TestLayout() {
  using api::TensorSpec;
  return std::make_shared<ModelLayout>(
      ModelLayout::Create({TensorSpec{"W", {40, 30}},
                           TensorSpec{"b", {30}, TensorSpec::Role::kBias}, TensorSpec{"V", {7}}},
                          64)
          .value());
}

}  // namespace mrtrain::shuffle
