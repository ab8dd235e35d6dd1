// InitializeBlocks: a reducer shard's blocks of the initial parameters, computed without the
// whole model, must be bit for bit the blocks of InitializeParameters' whole state.
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/api/random.h"
#include "engine/tensor/model_layout.h"
#include "engine/tensor/model_state.h"

namespace mrtrain {
namespace {

using api::TensorSpec;

// The blocks `keys` of `state`, one after the other in the order given.
std::vector<float> BlocksOf(const ModelState& state, const std::vector<ParamKey>& keys) {
  std::vector<float> out;
  for (ParamKey key : keys) {
    const BlockRange r = state.layout->Range(key);
    out.resize(out.size() + r.length);
    state.ReadBlock(key, out.data() + out.size() - r.length);
  }
  return out;
}

// Compared by their bytes: -0.0 and 0.0 differ, as they would in a model file.
bool SameBytes(const std::vector<float>& a, const std::vector<float>& b) {
  // memcmp must not see the null data() of an empty vector.
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

TEST_CASE("a shard's initial blocks are the whole model's, for any cut of the keys", "[engine]") {
  const std::vector<TensorSpec> specs = {
      TensorSpec{"W1", {37, 23}},
      TensorSpec{"b1", {23}, TensorSpec::Role::kBias},
      TensorSpec{"emb", {1000, 4}, TensorSpec::Role::kWeight, true},  // rows: no blocks
      TensorSpec{"W2", {23, 5, 3}},
      TensorSpec{"b2", {15}, TensorSpec::Role::kBias},
      TensorSpec{"v", {1}},
  };
  for (int64_t block_size : {1, 7, 64, 100000}) {
    auto layout =
        std::make_shared<const ModelLayout>(ModelLayout::Create(specs, block_size).value());
    for (InitScheme scheme :
         {InitScheme::kZeros, InitScheme::kUniform, InitScheme::kXavier, InitScheme::kHe}) {
      for (uint64_t seed : {uint64_t{1}, uint64_t{77}}) {
        ModelState whole = ModelState::Zeros(layout, 0);
        InitializeParameters(scheme, 0.3f, seed, &whole);
        INFO("block_size " << block_size << ", " << InitSchemeName(scheme) << ", seed " << seed);
        const std::vector<ParamKey>& all = layout->keys();
        std::vector<std::vector<ParamKey>> cuts;
        cuts.push_back(all);
        for (int shard = 0; shard < 3; ++shard) {  // dealt round-robin: gaps in every tensor
          std::vector<ParamKey> keys;
          for (size_t i = shard; i < all.size(); i += 3) keys.push_back(all[i]);
          cuts.push_back(keys);
        }
        cuts.push_back(std::vector<ParamKey>(all.rbegin(), all.rend()));  // descending
        cuts.push_back({all.back()});                                     // only the last
        api::RandomStream pick(seed, 5);
        std::vector<ParamKey> shuffled;
        for (ParamKey key : all) {
          if (pick.Below(2) == 0) shuffled.push_back(key);
        }
        for (size_t i = shuffled.size(); i > 1; --i)
          std::swap(shuffled[i - 1], shuffled[pick.Below(i)]);
        cuts.push_back(shuffled);
        for (const std::vector<ParamKey>& keys : cuts) {
          std::vector<float> expected = BlocksOf(whole, keys);
          // Poisoned: every float must be written.
          std::vector<float> got(expected.size(), -12345.0f);
          InitializeBlocks(scheme, 0.3f, seed, *layout, keys, got.data());
          CHECK(SameBytes(got, expected));
        }
        if (scheme != InitScheme::kZeros) {  // the comparison is not of zeros with zeros
          CHECK(std::any_of(whole.tensors[0].begin(), whole.tensors[0].end(),
                            [](float v) { return v != 0.0f; }));
        }
      }
    }
  }
}

TEST_CASE("no keys write nothing", "[engine]") {
  auto layout = std::make_shared<const ModelLayout>(
      ModelLayout::Create({TensorSpec{"W", {4, 4}}}, 4).value());
  float sentinel = 3.0f;
  InitializeBlocks(InitScheme::kXavier, 0, 1, *layout, {}, &sentinel);
  CHECK(sentinel == 3.0f);
}

}  // namespace
}  // namespace mrtrain
